# Runs clang-format in dry-run mode over the project's C and C++ sources.
# Every C and C++ source of the repository but build trees (build*/ at the top) and npm packages
# installed by scripts/setup (node_modules/).
file(GLOB_RECURSE sources "${SOURCE_DIR}/*.h" "${SOURCE_DIR}/*.c" "${SOURCE_DIR}/*.cc")
list(FILTER sources EXCLUDE REGEX "^${SOURCE_DIR}/(build[^/]*|\\.git)/|/node_modules/")
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
