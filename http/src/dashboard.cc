#include "dashboard.h"

#include <string>
#include <string_view>

#include "dashboard_assets.h"

namespace cyclecast::http {
namespace {

namespace bhttp = boost::beast::http;

constexpr std::string_view kAssetPrefix = "/dashboard/";

bool is_dashboard_path(std::string_view path) {
  return path == "/" || path.rfind(kAssetPrefix, 0) == 0;
}

const DashboardAsset* find_asset(std::string_view path) {
  for (const DashboardAsset& asset : dashboard_assets()) {
    if (asset.path == path) return &asset;
  }
  return nullptr;
}

// If-None-Match holds `etag` (a list of entity tags, or "*"). Weak tags compare by their opaque
// part, as RFC 9110 13.1.2 has it for If-None-Match.
bool not_modified(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    const std::size_t comma = if_none_match.find(',');
    std::string_view tag = if_none_match.substr(0, comma);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t'))
      tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t'))
      tag.remove_suffix(1);
    if (tag.rfind("W/", 0) == 0) tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

// Every answer for a dashboard file: revalidated on each use (the ETag makes that a 304 when
// unchanged), so that a new cyclecastd never runs with an old page's scripts.
void add_asset_headers(Reply& reply, const DashboardAsset& asset) {
  reply.headers.emplace_back("Cache-Control", "no-cache");
  reply.headers.emplace_back("ETag", std::string(asset.etag));
  reply.headers.emplace_back("Content-Security-Policy", kDashboardPolicy);
  reply.headers.emplace_back("Referrer-Policy", "no-referrer");
}

}  // namespace

std::optional<Reply> dashboard_reply(const bhttp::request<bhttp::string_body>& request) {
  const std::string_view target(request.target().data(), request.target().size());
  const std::string_view path = target.substr(0, target.find('?'));
  if (!is_dashboard_path(path)) return std::nullopt;
  const DashboardAsset* asset = find_asset(path);
  if (asset == nullptr) return error_reply(404, "no such file of the dashboard");
  if (request.method() != bhttp::verb::get) {
    Reply reply = error_reply(405, "method not allowed; use GET");
    reply.headers.emplace_back("Allow", "GET");
    return reply;
  }
  Reply reply;
  reply.content_type = std::string(asset->content_type);
  add_asset_headers(reply, *asset);
  const auto if_none_match = request[bhttp::field::if_none_match];
  if (not_modified(std::string_view(if_none_match.data(), if_none_match.size()), asset->etag)) {
    reply.status = 304;
    return reply;
  }
  reply.body = std::string(asset->body);
  return reply;
}

}  // namespace cyclecast::http
