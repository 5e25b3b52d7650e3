# What keeps a clean build cheap (docs/reliability.md, "CI build cost"; figures in
# docs/benchmarks.md). Included at the end of the top-level CMakeLists.txt, once every target
# exists, so that the module and test CMakeLists.txt need no lines of their own.

# Precompiled headers. Most of a unit's compile time at -O0 went to parsing the same third-party
# headers again (Eigen, nlohmann/json, GoogleTest, Boost.Asio/Beast, CLI11, spdlog): precompiling
# them once per target halved a test unit's CPU time under asan. GCC only (the release, asan and
# tsan presets): clang (fuzz) refuses a PCH on any macro mismatch, and that preset builds few
# units of each library. Off by default under ccache, which cannot cache units that use a PCH
# without extra sloppiness settings and would then recompile everything.
set(cyclecast_pch_default ON)
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU" OR CMAKE_CXX_COMPILER_LAUNCHER MATCHES "ccache")
  set(cyclecast_pch_default OFF)
endif()
option(CYCLECAST_PCH "Precompile the heavy third-party headers (GCC)" ${cyclecast_pch_default})

# The standard headers most of our sources include, then one list per third-party library.
set(CYCLECAST_PCH_STD <algorithm> <chrono> <cmath> <cstdint> <filesystem> <fstream> <functional>
    <map> <memory> <optional> <sstream> <string> <string_view> <vector>)
set(CYCLECAST_PCH_EIGEN <Eigen/Core>)
set(CYCLECAST_PCH_JSON <nlohmann/json.hpp>)
set(CYCLECAST_PCH_GTEST <gtest/gtest.h>)
set(CYCLECAST_PCH_ASIO <boost/asio/io_context.hpp> <boost/asio/ip/tcp.hpp>
    <boost/asio/post.hpp> <boost/asio/steady_timer.hpp> <boost/asio/thread_pool.hpp>)
set(CYCLECAST_PCH_BEAST <boost/beast/core.hpp> <boost/beast/http.hpp>)
set(CYCLECAST_PCH_CLI11 <CLI/CLI.hpp>)
set(CYCLECAST_PCH_SPDLOG <spdlog/spdlog.h>)

# cyclecast_precompile(<target> <library>...): precompiles the standard list and those of the
# named libraries (EIGEN, JSON, GTEST, ASIO, BEAST, CLI11, SPDLOG) for the C++ units of <target>.
# A target worth it has several units that include those headers; each PCH costs about one
# unit's parse. -Winvalid-pch says when GCC has to ignore the PCH (flags or macros that differ),
# without failing a -Werror build: the unit still compiles, only slower.
function(cyclecast_precompile target)
  if(NOT CYCLECAST_PCH OR NOT TARGET ${target})
    return()
  endif()
  set(headers ${CYCLECAST_PCH_STD})
  foreach(library ${ARGN})
    list(APPEND headers ${CYCLECAST_PCH_${library}})
  endforeach()
  foreach(header ${headers})
    target_precompile_headers(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:${header}>")
  endforeach()
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Winvalid-pch -Wno-error=invalid-pch>)
endfunction()

# The test executables (tests/<module>/, each <module>_test) share one PCH, built once by the
# test support library: their flags differ only in macros the PCH does not use.
function(cyclecast_precompile_tests)
  if(NOT CYCLECAST_PCH OR NOT TARGET cyclecast_test_support)
    return()
  endif()
  # The PCH's headers must also be reachable as text, for a unit that GCC refuses the PCH.
  target_link_libraries(cyclecast_test_support PUBLIC Eigen3::Eigen nlohmann_json::nlohmann_json)
  cyclecast_precompile(cyclecast_test_support EIGEN JSON GTEST)
  get_property(targets DIRECTORY ${CMAKE_SOURCE_DIR}/tests PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target ${targets})
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "EXECUTABLE" AND target MATCHES "_test$")
      target_precompile_headers(${target} REUSE_FROM cyclecast_test_support)
      target_compile_options(${target} PRIVATE -Winvalid-pch -Wno-error=invalid-pch)
    endif()
  endforeach()
endfunction()

# The libraries and programs with many units on the heavy headers; the small ones (one or two
# units) would pay for a PCH about what it saves them.
cyclecast_precompile(cyclecast_models EIGEN)
cyclecast_precompile(cyclecast_pipeline EIGEN JSON)
cyclecast_precompile(cyclecast_lifecycle EIGEN JSON)
cyclecast_precompile(cyclecast_wire JSON)
cyclecast_precompile(cyclecast_http JSON ASIO BEAST)
cyclecast_precompile(cyclecastd_core EIGEN JSON ASIO SPDLOG)
cyclecast_precompile(cyclecast EIGEN JSON CLI11)
cyclecast_precompile_tests()

# The benchmarks (bench/) run from the release build only (docs/benchmarks.md); no test uses
# them, so the sanitizer builds leave them out of `all` (they still build on request).
if(CYCLECAST_SANITIZE)
  get_property(bench_dirs DIRECTORY ${CMAKE_SOURCE_DIR}/bench PROPERTY SUBDIRECTORIES)
  foreach(dir ${bench_dirs})
    set_property(DIRECTORY ${dir} PROPERTY EXCLUDE_FROM_ALL ON)
  endforeach()
endif()
