# What keeps the CI's builds cheap (docs/reliability.md, "CI build cost"; figures in
# docs/benchmarks.md). Included at the end of the top-level CMakeLists.txt, once every target
# exists, so that the module and test CMakeLists.txt need no lines of their own.
#
# The test executables (tests/<module>/, each <module>_test) build as one unity unit each: every
# test unit instantiates and emits the same GoogleTest, nlohmann/json and standard library code
# again, and at -O0 under the sanitizers most of a unit's time is that code generation; one unit
# emits it once. One unit per target (not batches) so that adding a file never regroups others.
# A test file's helpers live in an anonymous namespace, so two files of one test executable must
# not define helpers of the same name: the compiler says so, and the fix is a distinct name (or,
# for a file that must stay apart, the list below).
option(CYCLECAST_UNITY_TESTS "Build each test executable as one unity unit" ON)
set(CYCLECAST_UNITY_APART  # each with the names it shares with another file of its executable
  bundle/manifest_test.cc               # Json (ordered_json here)
  daemon/ingest_test.cc                 # kRigTimeout
  daemon/lifecycle_daemon_test.cc       # kToken
  daemon/status_spoof_test.cc           # kRigTimeout
  daemon/storage_faults_daemon_test.cc  # kCells, kCycles
  daemon/tls_test.cc                    # shell()
  firmware/virtual_node_test.cc         # frame()
  models/model_file_test.cc             # testing::write_file
  pipeline/report_test.cc               # kNaN, metrics(), make_report()
  pipeline/run_output_test.cc           # kNaN, metrics(), make_report()
  pipeline/windows_test.cc              # kNaN
  wire/protocol_fast_test.cc            # rated_cell()
  wire/protocol_test.cc)                # rated_cell()
if(CYCLECAST_UNITY_TESTS)
  list(TRANSFORM CYCLECAST_UNITY_APART PREPEND ${CMAKE_SOURCE_DIR}/tests/)
  set_source_files_properties(${CYCLECAST_UNITY_APART} DIRECTORY ${CMAKE_SOURCE_DIR}/tests
                              PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
  get_property(targets DIRECTORY ${CMAKE_SOURCE_DIR}/tests PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target ${targets})
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "EXECUTABLE" AND target MATCHES "_test$")
      set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE BATCH
                                                 UNITY_BUILD_BATCH_SIZE 0)
    endif()
  endforeach()
endif()

# The libraries and programs (every target outside tests/) build in unity batches of
# CYCLECAST_UNITY_BATCH sources: most of a library unit's time is the standard library, Eigen,
# nlohmann/json or Boost code that its neighbours parse and emit again. Batches rather than one
# unit per target, so that both cores stay busy on the big libraries and an edit recompiles a
# batch, not the module. Sources with COMPILE_OPTIONS or COMPILE_DEFINITIONS of their own (the
# daemon's Asio sources) stay apart: CMake never puts them in a batch. As in the tests, two
# sources of one target must not define file-local names that clash.
option(CYCLECAST_UNITY_LIBRARIES "Build the libraries and programs in unity batches" ON)
set(CYCLECAST_UNITY_BATCH 8 CACHE STRING "Sources per unity batch of a library or program")
set(CYCLECAST_UNITY_APART_TARGETS  # compiled a unit per source, with the names that clash
  cyclecast              # daemon/cli: fail() in several commands, a global `json`
  cyclecast_node_update) # firmware/node: each C file has its own static le32(), take(), ...
function(cyclecast_unity_batches dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target ${targets})
    get_target_property(type ${target} TYPE)
    get_target_property(sources ${target} SOURCES)
    list(LENGTH sources count)
    if(type MATCHES "^(STATIC_LIBRARY|EXECUTABLE)$" AND count GREATER 1
       AND NOT target IN_LIST CYCLECAST_UNITY_APART_TARGETS)
      set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE BATCH
                                                 UNITY_BUILD_BATCH_SIZE ${CYCLECAST_UNITY_BATCH})
      # Generated sources (embedded files, each with the same kFile0... names) are data, not
      # code worth batching.
      set(generated ${sources})
      list(FILTER generated INCLUDE REGEX "^${CMAKE_BINARY_DIR}/")
      if(generated)
        set_source_files_properties(${generated} DIRECTORY ${dir}
                                    PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
      endif()
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(subdir ${subdirs})
    cyclecast_unity_batches(${subdir})
  endforeach()
endfunction()
if(CYCLECAST_UNITY_LIBRARIES)
  get_property(module_dirs DIRECTORY ${CMAKE_SOURCE_DIR} PROPERTY SUBDIRECTORIES)
  list(REMOVE_ITEM module_dirs ${CMAKE_SOURCE_DIR}/tests)
  foreach(dir ${module_dirs})
    cyclecast_unity_batches(${dir})
  endforeach()
endif()

# Precompiled headers were measured and are not used: with GCC 12 loading a PCH of the heavy
# third-party headers (about 170 MB) cost a unit about as much CPU time as parsing them saved, so
# light units got slower and heavy ones gained a few percent; at -O3 the PCH also changed GCC's
# inlining enough to raise -Wstringop-overflow false positives under -Werror.

# The benchmarks (bench/) run from the release build only (docs/benchmarks.md) and no test uses
# them, so the sanitizer builds leave them out of `all`; they still build when named.
if(CYCLECAST_SANITIZE)
  get_property(bench_dirs DIRECTORY ${CMAKE_SOURCE_DIR}/bench PROPERTY SUBDIRECTORIES)
  foreach(dir ${bench_dirs})
    set_property(DIRECTORY ${dir} PROPERTY EXCLUDE_FROM_ALL ON)
  endforeach()
endif()
