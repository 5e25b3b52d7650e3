# Runs clang-format in dry-run mode over the project's C and C++ sources.
file(GLOB_RECURSE sources
  "${SOURCE_DIR}/base/*.h" "${SOURCE_DIR}/storage/*.h" "${SOURCE_DIR}/storage/*.cc"
  "${SOURCE_DIR}/pipeline/*.h" "${SOURCE_DIR}/pipeline/*.cc" "${SOURCE_DIR}/models/*.h"
  "${SOURCE_DIR}/models/*.cc" "${SOURCE_DIR}/daemon/*.h" "${SOURCE_DIR}/daemon/*.cc"
  "${SOURCE_DIR}/firmware/*.h" "${SOURCE_DIR}/firmware/*.c" "${SOURCE_DIR}/tests/*.h"
  "${SOURCE_DIR}/tests/*.cc" "${SOURCE_DIR}/bench/*.h" "${SOURCE_DIR}/bench/*.cc")
execute_process(COMMAND ${CLANG_FORMAT} --dry-run --Werror ${sources}
  RESULT_VARIABLE rc ERROR_VARIABLE errors)
if(NOT rc EQUAL 0)
  string(REGEX MATCHALL "[^\n]*error:[^\n]*" lines "${errors}")
  set(files "")
  foreach(line ${lines})
    string(REGEX REPLACE ":[0-9]+:[0-9]+: error:.*" "" file "${line}")
    list(APPEND files "${file}")
  endforeach()
  list(REMOVE_DUPLICATES files)
  list(JOIN files "\n  " text)
  message(FATAL_ERROR "run clang-format -i on:\n  ${text}")
endif()
