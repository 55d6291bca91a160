# cmake -DFILE=PATH -P CheckCoreDump.cmake: PATH must exist and be a wasm module (a core
# dump is one); it is removed afterwards, so that each run of the test needs a new dump.
if(NOT EXISTS "${FILE}")
  message(FATAL_ERROR "no core dump at ${FILE}")
endif()
file(READ "${FILE}" head LIMIT 4 HEX)
file(REMOVE "${FILE}")
if(NOT head STREQUAL "0061736d")
  message(FATAL_ERROR "${FILE} is not a wasm core dump (it starts with ${head})")
endif()
