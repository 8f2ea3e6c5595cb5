# EdgepruneDeps.cmake — find every library the build needs and gather them in the
# interface target ep_deps. Missing pieces fail with the package that provides them.

find_package(MPI REQUIRED COMPONENTS C)

# Parallel HDF5 is required: collective checkpoint and circuit I/O.
set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR
    "edgeprune needs a parallel (MPI) build of HDF5, but the HDF5 found "
    "(${HDF5_C_INCLUDE_DIRS}) is serial. On Debian: apt-get install libhdf5-openmpi-dev "
    "(or set HDF5_ROOT to a parallel HDF5 installation).")
endif()

# libyaml and cJSON: plain header + library lookups (no pkg-config needed on GPU nodes).
find_path(YAML_INCLUDE_DIR yaml.h)
find_library(YAML_LIBRARY NAMES yaml)
if(NOT YAML_INCLUDE_DIR OR NOT YAML_LIBRARY)
  message(FATAL_ERROR "libyaml not found. On Debian: apt-get install libyaml-dev")
endif()
find_path(CJSON_INCLUDE_DIR cjson/cJSON.h)
find_library(CJSON_LIBRARY NAMES cjson)
if(NOT CJSON_INCLUDE_DIR OR NOT CJSON_LIBRARY)
  message(FATAL_ERROR "cJSON not found. On Debian: apt-get install libcjson-dev")
endif()

# BLAS (OpenBLAS preferred) and LAPACK, then ScaLAPACK on top of MPI.
set(BLA_VENDOR OpenBLAS)
find_package(BLAS)
if(NOT BLAS_FOUND)
  unset(BLA_VENDOR)
  find_package(BLAS REQUIRED)
endif()
find_package(LAPACK REQUIRED)
find_library(SCALAPACK_LIBRARY NAMES scalapack-openmpi scalapack
             HINTS ${CMAKE_PREFIX_PATH} PATH_SUFFIXES lib lib/x86_64-linux-gnu)
if(NOT SCALAPACK_LIBRARY)
  message(FATAL_ERROR "ScaLAPACK not found. On Debian: apt-get install libscalapack-openmpi-dev")
endif()
find_path(CBLAS_INCLUDE_DIR NAMES cblas.h PATH_SUFFIXES openblas openblas-pthread)
if(NOT CBLAS_INCLUDE_DIR)
  message(FATAL_ERROR "cblas.h not found. On Debian: apt-get install libopenblas-dev")
endif()

# Graphviz is optional: without it `circuit --format svg` is unavailable (dot still works).
find_package(PkgConfig)
if(PkgConfig_FOUND)
  pkg_check_modules(GVC IMPORTED_TARGET libgvc)
endif()

add_library(ep_deps INTERFACE)
target_link_libraries(ep_deps INTERFACE MPI::MPI_C ${HDF5_C_LIBRARIES} ${YAML_LIBRARY}
                      ${CJSON_LIBRARY} ${SCALAPACK_LIBRARY} ${LAPACK_LIBRARIES} ${BLAS_LIBRARIES} m)
target_include_directories(ep_deps INTERFACE ${HDF5_C_INCLUDE_DIRS} ${CBLAS_INCLUDE_DIR} ${YAML_INCLUDE_DIR}
                           ${CJSON_INCLUDE_DIR})
target_compile_definitions(ep_deps INTERFACE ${HDF5_C_DEFINITIONS})
if(GVC_FOUND)
  target_link_libraries(ep_deps INTERFACE PkgConfig::GVC)
  target_compile_definitions(ep_deps INTERFACE EP_HAVE_GRAPHVIZ=1)
  # libgvc calls its own internal graph_init() through the PLT; without this the
  # linker exports our graph_init() from the executable and Graphviz calls ours.
  # Keep every symbol of our static library out of the dynamic symbol table.
  target_link_options(ep_deps INTERFACE "LINKER:--exclude-libs,ALL")
  message(STATUS "Graphviz found: SVG export enabled")
else()
  message(STATUS "Graphviz (libgvc) not found: SVG export disabled")
endif()

# CUDA: AUTO builds it when nvcc is found.
set(EP_HAVE_CUDA OFF)
if(NOT EP_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(EP_HAVE_CUDA ON)
    message(STATUS "CUDA backend: ON (${CMAKE_CUDA_COMPILER}, sm_${CMAKE_CUDA_ARCHITECTURES})")
  elseif(EP_CUDA STREQUAL "ON")
    message(FATAL_ERROR "EP_CUDA=ON but no CUDA compiler (nvcc) was found")
  else()
    message(STATUS "CUDA backend: OFF (nvcc not found)")
  endif()
endif()
