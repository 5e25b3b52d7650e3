// Route -> backend call -> what to send, without any I/O of the connection: the server runs
// these on its backend threads and writes the Reply on the connection's executor.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/file_body.hpp>

#include "cyclecast/http/backend.h"
#include "cyclecast/result.h"
#include "router.h"

namespace cyclecast::http {

struct Reply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;                                               // when `file` is empty
  std::optional<boost::beast::http::file_body::value_type> file;  // opened, ready to stream
  std::vector<std::pair<std::string, std::string>> headers;       // extra header fields
};

// {"error": message} with `status`.
Reply error_reply(unsigned status, const std::string& message);
// The HTTP status for an ErrorCode (docs/api.md).
unsigned status_for(ErrorCode code);

// The Caller from a mutating request's body: empty, or {"who": string, "why": string} (both
// optional, printable, who at most 128 bytes and why at most 1024). kInvalidArgument otherwise,
// and for any field but these and `extra_fields` (a typo such as "whyy" would otherwise lose the
// reason silently); the message names the field.
Result<Caller> parse_caller(const std::string& body,
                            std::initializer_list<std::string_view> extra_fields = {});

// The rig a cell move names: the body's "rig", a valid id (is_valid_name). kInvalidArgument
// otherwise.
Result<std::string> parse_move_rig(const std::string& body);

// Calls the backend for `route` and makes the reply. Exceptions from the backend become 500.
Reply handle(ApiBackend& backend, const Route& route, const Caller& caller);

}  // namespace cyclecast::http
