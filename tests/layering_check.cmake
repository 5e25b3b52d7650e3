# Fails when a library module (firmware, models, storage, pipeline, base) includes a header
# that only the daemon may use, or a module it must not depend on (DESIGN.md, "Pieces").
set(forbidden_everywhere "boost/asio" "boost/beast" "mosquitto" "spdlog" "systemd/" "CLI/")
set(rules
  "firmware|cyclecast/(storage|pipeline|models|result)"
  "storage|cyclecast/(pipeline|models|firmware)"
  "models|cyclecast/(storage|pipeline)"
  "base|cyclecast/(storage|pipeline|models|firmware)")
set(failures "")
foreach(module firmware models storage pipeline base)
  file(GLOB_RECURSE files "${SOURCE_DIR}/${module}/*.h" "${SOURCE_DIR}/${module}/*.c"
       "${SOURCE_DIR}/${module}/*.cc")
  foreach(file ${files})
    file(STRINGS "${file}" includes REGEX "^[ \t]*#[ \t]*include")
    foreach(line ${includes})
      foreach(bad ${forbidden_everywhere})
        string(FIND "${line}" "${bad}" pos)
        if(NOT pos EQUAL -1)
          list(APPEND failures "${file}: ${line}")
        endif()
      endforeach()
      foreach(rule ${rules})
        string(REPLACE "|" ";" parts "${rule}")
        list(GET parts 0 rule_module)
        if(rule_module STREQUAL module)
          string(REGEX MATCH "^[^|]*\\|(.*)$" unused "${rule}")
          if(line MATCHES "${CMAKE_MATCH_1}")
            list(APPEND failures "${file}: ${line}")
          endif()
        endif()
      endforeach()
    endforeach()
  endforeach()
endforeach()
if(failures)
  list(JOIN failures "\n  " text)
  message(FATAL_ERROR "forbidden includes:\n  ${text}")
endif()
message(STATUS "layering ok")
