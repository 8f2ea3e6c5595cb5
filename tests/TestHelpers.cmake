# ep_add_test_exe(NAME SOURCES...) — a C test program linked against the library.
function(ep_add_test_exe name)
  add_executable(${name} ${ARGN} ${CMAKE_SOURCE_DIR}/tests/test_util.c)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/src)
  target_compile_options(${name} PRIVATE ${EP_C_WARNINGS})
  target_link_libraries(${name} PRIVATE edgeprune_lib)
  if(EP_CUDA_LINKED)
    set_target_properties(${name} PROPERTIES LINKER_LANGUAGE CUDA)
  endif()
endfunction()

# ep_add_mpi_test(NAME NPROCS COMMAND...) — run under mpirun with NPROCS ranks.
function(ep_add_mpi_test name nprocs)
  add_test(NAME ${name}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${nprocs} --oversubscribe
                   ${MPIEXEC_PREFLAGS} ${ARGN} ${MPIEXEC_POSTFLAGS})
  set_tests_properties(${name} PROPERTIES PROCESSORS ${nprocs}
                       ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
endfunction()

# Data shipped with the repository and written by tests.
set(EP_TEST_DATA ${CMAKE_SOURCE_DIR}/tests/data CACHE INTERNAL "")
set(EP_INPUTS ${CMAKE_SOURCE_DIR}/inputs CACHE INTERNAL "")
set(EP_BIN $<TARGET_FILE:edgeprune> CACHE INTERNAL "")
