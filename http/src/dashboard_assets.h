// The dashboard's static files (dashboard/, docs/dashboard.md), compiled into the binary by
// cmake/embed_dashboard.cmake: each with the URL path it is served at, its Content-Type and an
// ETag derived from its content.
#pragma once

#include <span>
#include <string_view>

namespace cyclecast::http {

struct DashboardAsset {
  std::string_view path;          // "/", "/dashboard/app.js", ...
  std::string_view content_type;  // with charset for text
  std::string_view body;
  std::string_view etag;  // quoted, as sent: "\"0123...\""
};

// Every embedded file; defined in the generated dashboard_assets.cc.
std::span<const DashboardAsset> dashboard_assets();

}  // namespace cyclecast::http
