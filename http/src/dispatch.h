// A request whose header and body are read -> the reply refusing it, or the route and caller for
// the backend. No I/O: the server's connections call it, and so does the HTTP fuzz target
// (tests/fuzz/http_request_fuzz.cc), so both see the same routing and authentication.
#pragma once

#include <optional>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "cyclecast/http/backend.h"
#include "handlers.h"
#include "router.h"
#include "token.h"

namespace cyclecast::http {

struct Dispatch {
  std::optional<Reply> refusal;  // set: send this and call nothing
  std::optional<Reply> page;     // set: a dashboard file (dashboard.h); send it and call nothing
  Route route{};
  Caller caller;
};

// Serves the dashboard's files (dashboard.h: `page`, or a `refusal` for a wrong method or an
// unknown file). Otherwise matches the target (400/404), checks the method (405 with Allow), and
// for mutating routes the bearer token (403 without a configured `token`, 401 without a presented
// one, 403 when wrong) and the caller body (400).
Dispatch dispatch(const boost::beast::http::request<boost::beast::http::string_body>& request,
                  const std::optional<TokenDigest>& token);

}  // namespace cyclecast::http
