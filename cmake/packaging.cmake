# The Debian package of cyclecast (docs/packaging.md): `cmake --build build --target package` or
# `cd build && cpack -G DEB` makes build/cyclecast_<version>_<arch>.deb of everything install()
# rules name: the four binaries, the units, sysusers/tmpfiles snippets, the default configuration,
# and the documentation below. tests/packaging checks its layout.
include(GNUInstallDirs)

# The units' Documentation= point at /usr/share/doc/cyclecast.
file(GLOB CYCLECAST_DOCS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/*.md)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CYCLECAST_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The broker's users and ACL (docs/security.md), for the operator to copy into /etc/mosquitto.
install(FILES ${CMAKE_SOURCE_DIR}/packaging/mosquitto/cyclecast.conf
              ${CMAKE_SOURCE_DIR}/packaging/mosquitto/cyclecast.acl
              ${CMAKE_SOURCE_DIR}/packaging/mosquitto/gateway-acl.in
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/mosquitto)

set(CYCLECAST_PACKAGE_MAINTAINER
  "cyclecast maintainers <maintainers@users.noreply.h-seed-60f6be16.example>"
  CACHE STRING "Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cyclecast)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${CYCLECAST_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "streaming battery-health service for test labs and fleets")
# One line each in the control file's Description (CPack indents them as Debian wants).
string(JOIN "\n" CPACK_PACKAGE_DESCRIPTION
  "cyclecastd takes per-cycle battery telemetry over MQTT into SQLite, forecasts"
  "each cell's state of health, retrains its models and publishes signed int8"
  "model bundles for edge nodes. Includes the operator CLI (cyclecast), the"
  "serial-to-MQTT gateway (cyclecast-gateway), the virtual node (cyclecast-node)"
  "and hardened systemd units.")

# The package installs under /usr whatever CMAKE_INSTALL_PREFIX says; the configuration goes to
# the absolute /etc/cyclecast. CPack installs with DESTDIR into its staging directory and
# CMAKE_INSTALL_PREFIX=/usr, so the units generated at install time (systemd/CMakeLists.txt) name
# /usr/sbin/cyclecastd.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # cyclecast_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CYCLECAST_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Runtime library dependencies (libmosquitto, SQLite, libsodium, libsystemd, ...) as dpkg-shlibdeps
# finds them in the binaries (dpkg-dev, scripts/setup).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The broker may run on another machine (mqtt.host), so a local mosquitto is only recommended.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS mosquitto)
# With the cross compiler and QEMU, retraining measures each student's footprint on the Cortex-M4
# (retrain.measure = "auto"); without them it keeps the pipeline's estimate.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "mosquitto-clients, gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm")
# Maintainer scripts (user, state directory, enable without start; stop and disable on removal;
# state deleted on purge) and the configuration kept across upgrades as a conffile.
set(CYCLECAST_DEBIAN_DIR ${CMAKE_SOURCE_DIR}/packaging/debian)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CYCLECAST_DEBIAN_DIR}/postinst ${CYCLECAST_DEBIAN_DIR}/prerm ${CYCLECAST_DEBIAN_DIR}/postrm
  ${CYCLECAST_DEBIAN_DIR}/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

include(CPack)
