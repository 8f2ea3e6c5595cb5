# Run `edgeprune tokenize` on a small stdin (CRLF and LF lines, an empty line) and
# compare its output with ids from the reference tokenizer; then check that a missing
# --tokenizer is a usage error (status 2).
set(in ${CMAKE_CURRENT_BINARY_DIR}/tokenize_cli_in.txt)
file(WRITE ${in} "Hello world\n\n Mary and John\r\nit's 1589!\n<|endoftext|>\na\tb  c\n")
execute_process(COMMAND ${BIN} tokenize --tokenizer ${TOKDIR} INPUT_FILE ${in}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
set(want "15496 995\n\n5335 290 1757\n270 338 1315 4531 0\n50256\n64 197 65 220 269\n")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "edgeprune tokenize exited with ${rc}: ${err}")
endif()
if(NOT out STREQUAL want)
  message(FATAL_ERROR "edgeprune tokenize output:\n${out}\nexpected:\n${want}")
endif()
execute_process(COMMAND ${BIN} tokenize INPUT_FILE ${in} OUTPUT_VARIABLE out ERROR_VARIABLE err
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 2 OR NOT err MATCHES "--tokenizer")
  message(FATAL_ERROR "missing --tokenizer: status ${rc}, stderr '${err}'")
endif()
message(STATUS "tokenize CLI ok")
