# cyclecast_module(<name> [PUBLIC <libs>...] [PRIVATE <libs>...] [SOURCES <extra sources>...]):
# the library of the module folder that calls it (docs/architecture.md): every src/*.cc, public
# headers under include/, built as cyclecast_<name> with the project's warnings and known to the
# rest of the build as cyclecast::<name>.
function(cyclecast_module name)
  cmake_parse_arguments(ARG "" "" "PUBLIC;PRIVATE;SOURCES" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/*.cc)
  add_library(cyclecast_${name} STATIC ${sources} ${ARG_SOURCES})
  add_library(cyclecast::${name} ALIAS cyclecast_${name})
  target_include_directories(cyclecast_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(cyclecast_${name} PUBLIC ${ARG_PUBLIC} PRIVATE ${ARG_PRIVATE})
  cyclecast_warnings(cyclecast_${name})
endfunction()
