// The OpenAPI 3.1 description of the API (docs/openapi.json), compiled into the library at build
// time (cmake/embed_file.cmake) and served as GET /api/v1/openapi.json.
#pragma once

#include <string_view>

namespace cyclecast::http {

// The bytes of docs/openapi.json as they were when the library was built.
std::string_view openapi_document();

}  // namespace cyclecast::http
