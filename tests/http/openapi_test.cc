// The API's OpenAPI description (docs/openapi.json): compiled in and served as is at
// /api/v1/openapi.json without a token, and held to the router both ways: every route the router
// knows is documented with its one method, and every documented operation is a route. The live
// answers are checked against its schemas in tests/daemon/openapi_daemon_test.cc, and the file is
// linted by Redocly CLI (tests/openapi/lint).
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "http_fixture.h"
#include "openapi.h"
#include "router.h"

namespace cyclecast::http::testing {
namespace {

using cyclecast::testing::read_file;

const std::string kOpenApiSource = CYCLECAST_SOURCE_DIR "/docs/openapi.json";

// A documented path with its parameters filled in with valid ids.
std::string openapi_sample_target(std::string path) {
  const std::map<std::string, std::string> samples = {
      {"{cell}", "c-1"}, {"{version}", "m-1"}, {"{id}", "7"}};
  for (const auto& [parameter, value] : samples) {
    for (auto at = path.find(parameter); at != std::string::npos; at = path.find(parameter))
      path.replace(at, parameter.size(), value);
  }
  return path;
}

std::string openapi_method_name(Method method) {
  return method == Method::kGet ? "get" : "post";
}

// Every RouteId the router has: they are numbered from 0 without gaps, and route_path() names
// each (a switch over all of them), so the first value without a path ends the list.
std::map<std::string, RouteId> openapi_routes_of_the_router() {
  std::map<std::string, RouteId> routes;
  for (int value = 0; route_path(static_cast<RouteId>(value)) != nullptr; ++value)
    routes.emplace(route_path(static_cast<RouteId>(value)), static_cast<RouteId>(value));
  return routes;
}

const std::set<std::string> kOperationKeys = {"get",     "put",  "post",  "delete",
                                              "options", "head", "patch", "trace"};

TEST(OpenApi, TheCompiledInDescriptionIsTheSourceFile) {
  EXPECT_TRUE(openapi_document() == read_file(kOpenApiSource))
      << "rebuild: the library holds another docs/openapi.json";
  const json document = json::parse(openapi_document());
  EXPECT_EQ(document.at("openapi").get<std::string>().rfind("3.1.", 0), 0u);
}

TEST(OpenApi, EveryRouteOfTheRouterIsDocumentedWithItsMethod) {
  const json paths = json::parse(openapi_document()).at("paths");
  const auto routes = openapi_routes_of_the_router();
  ASSERT_GE(routes.size(), 15u);
  for (const auto& [path, id] : routes) {
    SCOPED_TRACE(path);
    const RouteMatch match = match_route(openapi_sample_target(path));
    ASSERT_TRUE(match.route.has_value()) << match.status << " " << match.error;
    EXPECT_EQ(match.route->id, id) << "route_path() names another route's path";
    ASSERT_TRUE(paths.contains(path)) << "not in docs/openapi.json";
    // The route answers one method (405 for any other): the path documents that one only.
    std::set<std::string> documented;
    for (const auto& [key, value] : paths.at(path).items()) {
      if (kOperationKeys.count(key) > 0) documented.insert(key);
    }
    EXPECT_EQ(documented, std::set<std::string>{openapi_method_name(match.route->method)});
  }
}

TEST(OpenApi, EveryDocumentedOperationIsARoute) {
  const json paths = json::parse(openapi_document()).at("paths");
  const auto routes = openapi_routes_of_the_router();
  for (const auto& [path, item] : paths.items()) {
    SCOPED_TRACE(path);
    const RouteMatch match = match_route(openapi_sample_target(path));
    ASSERT_TRUE(match.route.has_value()) << match.status << " " << match.error;
    EXPECT_STREQ(route_path(match.route->id), path.c_str());
    for (const auto& [key, value] : item.items()) {
      if (kOperationKeys.count(key) > 0) {
        EXPECT_EQ(key, openapi_method_name(match.route->method));
      }
    }
  }
  EXPECT_EQ(paths.size(), routes.size());
}

class OpenApiServed : public HttpTest {};

TEST_F(OpenApiServed, AsJsonWithoutAToken) {
  start({}, "the-token");
  RawConnection connection(port());
  const RawResponse response = connection.exchange(request_text("GET", "/api/v1/openapi.json"));
  EXPECT_EQ(response.status, 200u) << response.body;
  EXPECT_EQ(response.header("Content-Type"), "application/json");
  EXPECT_TRUE(response.body == read_file(kOpenApiSource));
  EXPECT_TRUE(backend_.calls().empty()) << "the description is the server's, not the backend's";
  const RawResponse post = connection.exchange(request_text("POST", "/api/v1/openapi.json"));
  EXPECT_EQ(post.status, 405u);
  EXPECT_EQ(post.header("Allow"), "GET");
}

}  // namespace
}  // namespace cyclecast::http::testing
