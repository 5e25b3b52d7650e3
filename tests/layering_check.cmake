cmake_minimum_required(VERSION 3.25)  # IN_LIST and the other policies of the project
# Checks every module and process against the dependency table of docs/architecture.md ("Modules
# and their boundaries"), which is read from the page itself so that the two cannot disagree.
# Fails when a source includes a project module or a third-party library its row does not name,
# when a folder holding sources has no row, or when a row names a folder that does not exist; and
# when README.md's layout table misses a top-level folder or names one that does not exist.
# Run with -DSOURCE_DIR=<repository root>.

# Third-party libraries the table may name, with the include prefix that reveals each. C and C++
# standard and POSIX headers are not listed: every module may use them.
set(library_names Asio Beast libmosquitto spdlog libsystemd CLI11 Eigen SQLite nlohmann-json
                  toml++ libsodium libpq)
set(library_Asio "boost/asio")
set(library_Beast "boost/beast")
set(library_libmosquitto "mosquitto.h")
set(library_spdlog "spdlog/")
set(library_libsystemd "systemd/")
set(library_CLI11 "CLI/")
set(library_Eigen "Eigen/")
set(library_SQLite "sqlite3.h")
set(library_nlohmann-json "nlohmann/")
set(library_toml++ "toml++/")
set(library_libsodium "sodium.h")
set(library_libpq "libpq-fe.h")

# Folders that hold sources but are no module: the processes' parent, tests, benchmarks, builds.
set(not_modules daemon tests bench docs cmake packaging scripts systemd)

set(failures "")

# The table: one row per module or process, "| `folder` | `a`, `b` | Lib, Lib | what |".
file(STRINGS "${SOURCE_DIR}/docs/architecture.md" rows ENCODING UTF-8 REGEX "^\\| `[a-z_/]+` \\|")
if(NOT rows)
  message(FATAL_ERROR "docs/architecture.md has no module table")
endif()
set(folders "")
foreach(row ${rows})
  string(REPLACE ";" "," row "${row}")  # a ';' in the prose column must not split the list
  string(REGEX MATCH "^\\| `([a-z_/]+)` \\|([^|]*)\\|([^|]*)\\|" unused "${row}")
  set(folder "${CMAKE_MATCH_1}")
  set(uses_column "${CMAKE_MATCH_2}")  # the next regex resets CMAKE_MATCH_*
  set(libraries_column "${CMAKE_MATCH_3}")
  string(REGEX MATCHALL "`[a-z_]+`" uses "${uses_column}")
  string(REPLACE "`" "" uses "${uses}")
  string(REGEX MATCHALL "[A-Za-z0-9+-]+" libraries "${libraries_column}")
  list(APPEND folders "${folder}")
  set(uses_${folder} "${uses}")
  set(libraries_${folder} "${libraries}")
  foreach(library ${libraries})
    if(NOT library IN_LIST library_names)
      list(APPEND failures "docs/architecture.md: row ${folder} names unknown library ${library}")
    endif()
  endforeach()
  if(NOT IS_DIRECTORY "${SOURCE_DIR}/${folder}")
    list(APPEND failures "docs/architecture.md: row ${folder} names a folder that does not exist")
  endif()
endforeach()

# Every folder with sources has a row: the top-level modules and the processes under daemon/.
file(GLOB top RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/*")
file(GLOB processes RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/daemon/*")
foreach(folder ${top} ${processes})
  if(NOT IS_DIRECTORY "${SOURCE_DIR}/${folder}" OR folder IN_LIST not_modules
     OR folder MATCHES "^(build|\\.)")
    continue()
  endif()
  file(GLOB_RECURSE sources "${SOURCE_DIR}/${folder}/*.h" "${SOURCE_DIR}/${folder}/*.c"
       "${SOURCE_DIR}/${folder}/*.cc")
  if(sources AND NOT folder IN_LIST folders)
    list(APPEND failures "${folder}/: has sources but no row in docs/architecture.md")
  endif()
endforeach()

# The README's layout table names every top-level folder (builds and hidden ones aside), and
# only folders that exist.
file(STRINGS "${SOURCE_DIR}/README.md" readme_rows ENCODING UTF-8 REGEX "^\\| `[a-z_]+/` \\|")
set(readme_folders "")
foreach(row ${readme_rows})
  string(REGEX MATCH "^\\| `([a-z_]+)/`" unused "${row}")
  list(APPEND readme_folders "${CMAKE_MATCH_1}")
  if(NOT IS_DIRECTORY "${SOURCE_DIR}/${CMAKE_MATCH_1}")
    list(APPEND failures "README.md: the layout names ${CMAKE_MATCH_1}/, which does not exist")
  endif()
endforeach()
foreach(folder ${top})
  if(IS_DIRECTORY "${SOURCE_DIR}/${folder}" AND NOT folder MATCHES "^(build|\\.)"
     AND NOT folder IN_LIST readme_folders)
    list(APPEND failures "README.md: the layout table has no row for ${folder}/")
  endif()
endforeach()

# The module an include names, or "" for the folder's own private headers and system headers.
# Public headers are cyclecast/<module>/...; base's and the firmware's sit directly in cyclecast/.
function(include_module line out)
  set(module "")
  if(line MATCHES "[\"<]cyclecast/([a-z_]+)/")
    set(module "${CMAKE_MATCH_1}")
  elseif(line MATCHES "[\"<](cyclecast/)?cc_[a-z_0-9]+\\.h[\">]")
    set(module firmware)
  elseif(line MATCHES "[\"<]cyclecast/([a-z_]+)\\.h[\">]")
    set(module base)
  endif()
  set(${out} "${module}" PARENT_SCOPE)
endfunction()

foreach(folder ${folders})
  string(REGEX REPLACE "/.*" "" own "${folder}")  # daemon/cli may use daemon/cli's own headers
  file(GLOB_RECURSE files "${SOURCE_DIR}/${folder}/*.h" "${SOURCE_DIR}/${folder}/*.c"
       "${SOURCE_DIR}/${folder}/*.cc")
  foreach(file ${files})
    file(RELATIVE_PATH shown "${SOURCE_DIR}" "${file}")
    file(STRINGS "${file}" includes REGEX "^[ \t]*#[ \t]*include")
    foreach(line ${includes})
      include_module("${line}" module)
      if(module AND NOT module STREQUAL own AND NOT module IN_LIST uses_${folder})
        list(APPEND failures "${shown}: ${line} (${folder} does not use ${module})")
      endif()
      foreach(library ${library_names})
        string(FIND "${line}" "${library_${library}}" pos)
        if(NOT pos EQUAL -1 AND NOT library IN_LIST libraries_${folder})
          list(APPEND failures "${shown}: ${line} (${folder} does not use ${library})")
        endif()
      endforeach()
    endforeach()
  endforeach()
endforeach()

if(failures)
  list(JOIN failures "\n  " text)
  message(FATAL_ERROR "layering (docs/architecture.md):\n  ${text}")
endif()
list(LENGTH folders count)
message(STATUS "layering ok: ${count} modules and processes")
