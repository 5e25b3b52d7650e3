# One place for the warning set, so every module is held to the same bar.
set(CYCLECAST_C_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
    -Wstrict-prototypes -Wmissing-prototypes -Wcast-align -Wdouble-promotion)
set(CYCLECAST_CXX_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough -Wnull-dereference)
# GCC 12 at -O3 reports impossible overlaps inside std::string concatenation (GCC bug 105651,
# fixed in 13): a false positive in library code, so it is silenced for that compiler only.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND CYCLECAST_CXX_WARNINGS -Wno-restrict)
endif()
if(CYCLECAST_WERROR)
  list(APPEND CYCLECAST_C_WARNINGS -Werror)
  list(APPEND CYCLECAST_CXX_WARNINGS -Werror)
endif()

# Applies the project's warnings to a target of ours (never to third-party code).
function(cyclecast_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:C>:${CYCLECAST_C_WARNINGS}>
    $<$<COMPILE_LANGUAGE:CXX>:${CYCLECAST_CXX_WARNINGS}>)
endfunction()

# For sources that include Boost.Asio: GCC 12's -Wnull-dereference fires inside Asio's scheduler
# once inlined (boost/asio/detail/impl/scheduler.ipp), and GCC refuses (-Wtsan) the
# atomic_thread_fence Asio uses, which ThreadSanitizer cannot model. Both are about Boost's code.
set(CYCLECAST_ASIO_OPTIONS -Wno-null-dereference)
if(CYCLECAST_SANITIZE MATCHES "thread")
  list(APPEND CYCLECAST_ASIO_OPTIONS -Wno-tsan)
endif()
