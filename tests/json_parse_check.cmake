cmake_minimum_required(VERSION 3.25)
# Every JSON parser of outside bytes goes through parse_bounded_json (base/include/cyclecast/
# bounded_json.h; docs/protocol.md, "Limits"): fails naming each module or process source that
# calls one of nlohmann's parsers directly, which would accept nesting deep enough to overflow the
# stack, duplicate keys and NUL. Tests and benchmarks parse their own output and are not checked.
# Run with -DSOURCE_DIR=<repository root>.
set(folders base storage models pipeline wire mqtt rig edge lifecycle http daemon firmware)
set(pattern "(json|Json)::(parse|accept|sax_parse|from_cbor|from_msgpack|from_ubjson|from_bjdata|from_bson)\\(")
set(failures "")
foreach(folder ${folders})
  file(GLOB_RECURSE sources "${SOURCE_DIR}/${folder}/*.h" "${SOURCE_DIR}/${folder}/*.cc")
  foreach(source ${sources})
    if(source MATCHES "/base/include/cyclecast/bounded_json\\.h$")
      continue()
    endif()
    file(STRINGS "${source}" hits REGEX "${pattern}")
    foreach(hit ${hits})
      file(RELATIVE_PATH relative "${SOURCE_DIR}" "${source}")
      string(STRIP "${hit}" hit)
      list(APPEND failures "${relative}: ${hit}")
    endforeach()
  endforeach()
endforeach()
if(failures)
  list(JOIN failures "\n  " text)
  message(FATAL_ERROR "JSON parsed without parse_bounded_json (cyclecast/bounded_json.h):\n  ${text}")
endif()
