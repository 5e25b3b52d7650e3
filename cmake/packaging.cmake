# What the install step adds besides the programs and systemd/'s files: the documentation and the
# broker's example files. The Debian package (debian/, docs/packaging.md) is made of this install
# (`cmake --install` into its staging directory) by scripts/package or dpkg-buildpackage.
include(GNUInstallDirs)

# The units' Documentation= point at /usr/share/doc/cyclecast.
file(GLOB CYCLECAST_DOCS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/*.md)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CYCLECAST_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The broker's users and ACL (docs/security.md), for the operator to copy into /etc/mosquitto.
install(FILES ${CMAKE_SOURCE_DIR}/packaging/mosquitto/cyclecast.conf
              ${CMAKE_SOURCE_DIR}/packaging/mosquitto/cyclecast.acl
              ${CMAKE_SOURCE_DIR}/packaging/mosquitto/gateway-acl.in
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/mosquitto)
