// The dashboard's static files (docs/dashboard.md), served from the binary without a backend call:
// "/" is the page, "/dashboard/..." its scripts, styles and the charting library.
#pragma once

#include <optional>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "handlers.h"

namespace cyclecast::http {

// The Content-Security-Policy every dashboard file is sent with: scripts, styles and requests from
// the server itself only, no inline script or style; frames only
// of its own (a run's report), and it is framed by nothing.
inline constexpr const char* kDashboardPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors "
    "'none'";

// The reply for a dashboard path: the file (200), 304 when If-None-Match names its ETag, 404 for
// an unknown file under /dashboard/, 405 for any method but GET. nullopt for every other path,
// which the API's router decides.
std::optional<Reply> dashboard_reply(
    const boost::beast::http::request<boost::beast::http::string_body>& request);

}  // namespace cyclecast::http
