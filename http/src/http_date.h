// The Date header field of every response (RFC 9110, section 5.6.7: IMF-fixdate).
#pragma once

#include <chrono>
#include <string>

namespace cyclecast::http {

// "Sun, 06 Nov 1994 08:49:37 GMT": always in English and UTC, whatever the process's locale
// and time zone (strftime's %a and %b follow LC_TIME).
std::string imf_fixdate(std::chrono::system_clock::time_point when);

}  // namespace cyclecast::http
