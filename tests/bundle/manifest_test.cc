// manifest.json: what the writer writes reads back exactly, and the strict reader refuses every
// malformed manifest with a message naming the field (the same cases seed the fuzz corpus).
#include "cyclecast/lifecycle/manifest.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace cyclecast::bundle {
namespace {

using Json = nlohmann::ordered_json;

Manifest sample_manifest() {
  Manifest m;
  m.model_version = "2026.11.30-1";
  m.created_at = "2026-11-30T17:00:00Z";
  m.signing_key_id = "0123456789abcdef";
  m.training_run = {"20261130T160000Z", "heldout", "w16-p0.50"};
  m.data_snapshot = {"severson-soh", "sha256:" + std::string(64, 'a'), "directory severson-soh"};
  m.window = 100;
  m.horizon = 100;
  m.feature_spec = {{"pipeline.input_len", "100"}, {"pipeline.features", ""}};
  m.heldout.mae = 0.0042;
  m.heldout.mae_10 = 0.001;
  m.heldout.mae_100 = 0.009;
  m.heldout.rmse = 0.006;
  m.heldout.eol_error_cycles = std::nullopt;  // no window crossed 80 %
  m.heldout.windows = 1234;
  m.footprint.kind = "estimate";
  m.footprint.method = "cost model";
  m.footprint.flash_bytes = 9000;
  m.footprint.ram_bytes = 1500;
  m.footprint.cycles = 40000;
  m.runtime_abi_version = 1;
  m.files = {{"model/model.bin", std::string(64, 'b'), 4000},
             {"firmware/src/cc_tanh.c", std::string(64, 'c'), 1200}};
  return m;
}

// The sample's JSON with one edit applied, as text for the parser.
std::string edited(const std::function<void(Json&)>& edit) {
  Json j = Json::parse(manifest_json(sample_manifest()));
  edit(j);
  return j.dump();
}

std::string refusal(const std::string& text) {
  auto parsed = parse_manifest(text);
  EXPECT_FALSE(parsed.ok()) << text;
  return parsed.ok() ? std::string("(accepted)") : parsed.error().message;
}

TEST(Manifest, RoundTripsEveryField) {
  const Manifest m = sample_manifest();
  const std::string text = manifest_json(m);
  auto parsed = parse_manifest(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(manifest_json(*parsed), text);
  EXPECT_EQ(parsed->model_version, m.model_version);
  EXPECT_EQ(parsed->training_run.candidate, "w16-p0.50");
  EXPECT_EQ(parsed->data_snapshot.digest, m.data_snapshot.digest);
  EXPECT_EQ(parsed->feature_spec, m.feature_spec);
  EXPECT_DOUBLE_EQ(parsed->heldout.mae.value(), 0.0042);
  EXPECT_FALSE(parsed->heldout.eol_error_cycles.has_value());
  EXPECT_EQ(parsed->footprint.flash_bytes, 9000);
  EXPECT_FALSE(parsed->footprint.instructions.has_value());
  ASSERT_EQ(parsed->files.size(), 2u);
  EXPECT_EQ(parsed->files[1].size, 1200u);
  EXPECT_EQ(text.back(), '\n');
}

TEST(Manifest, RefusesAnUnknownFormatVersionAsUnsupported) {
  for (const Json& version : {Json(2), Json(0), Json("1"), Json(1.5)}) {
    auto parsed = parse_manifest(edited([&](Json& j) { j["format_version"] = version; }));
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(parsed.error().message.find("unknown bundle format version " + version.dump()),
              std::string::npos)
        << parsed.error().message;
  }
}

TEST(Manifest, RefusesWhatIsNotAManifest) {
  EXPECT_NE(refusal("").find("invalid JSON"), std::string::npos);
  // The bounded parser's limits (docs/protocol.md, "Limits"), for manifests from anywhere.
  EXPECT_NE(refusal(std::string(100000, '[')).find("nested deeper than 64 levels"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"format": "cyclecast-bundle", "format": "tar"})").find("duplicate key"),
            std::string::npos);
  EXPECT_NE(refusal("[1, 2]").find("is not an object"), std::string::npos);
  EXPECT_NE(
      refusal(edited([](Json& j) { j["format"] = "tar"; })).find("expected 'cyclecast-bundle'"),
      std::string::npos);
  EXPECT_NE(refusal(edited([](Json& j) {
              j.erase("format_version");
            })).find("missing field 'format_version'"),
            std::string::npos);
  EXPECT_NE(refusal(std::string(kMaxManifestBytes + 1, ' ')).find("larger than"),
            std::string::npos);
}

TEST(Manifest, RefusesUnknownMissingAndMistypedFieldsNamingThem) {
  EXPECT_NE(refusal(edited([](Json& j) { j["extra"] = 1; })).find("unknown field 'extra'"),
            std::string::npos);
  EXPECT_NE(refusal(edited([](Json& j) {
              j["footprint"]["rom"] = 1;
            })).find("unknown field 'footprint.rom'"),
            std::string::npos);
  EXPECT_NE(refusal(edited([](Json& j) { j.erase("horizon"); })).find("missing field 'horizon'"),
            std::string::npos);
  EXPECT_NE(
      refusal(edited([](Json& j) { j["window"] = "100"; })).find("'window' is not an integer"),
      std::string::npos);
  EXPECT_NE(refusal(edited([](Json& j) { j["window"] = 0; })).find("'window' is out of range"),
            std::string::npos);
  EXPECT_NE(refusal(edited([](Json& j) {
              j["heldout_metrics"]["mae"] = "low";
            })).find("'heldout_metrics.mae' is not a number"),
            std::string::npos);
  EXPECT_NE(refusal(edited([](Json& j) {
              j["footprint"]["kind"] = "guessed";
            })).find("expected 'measured' or 'estimate'"),
            std::string::npos);
  EXPECT_NE(refusal(edited([](Json& j) {
              j["feature_spec"]["pipeline.horizon"] = 100;
            })).find("'feature_spec.pipeline.horizon' is not a string"),
            std::string::npos);
  EXPECT_NE(refusal(edited([](Json& j) { j["model_version"] = "../v1"; })).find("model version"),
            std::string::npos);
}

TEST(Manifest, RefusesBadFileEntries) {
  EXPECT_NE(refusal(edited([](Json& j) {
              j["files"][0]["path"] = "../../etc/passwd";
            })).find("unsafe member name '../../etc/passwd'"),
            std::string::npos);
  EXPECT_NE(refusal(edited([](Json& j) {
              j["files"][1]["path"] = "model/model.bin";
            })).find("'model/model.bin' is listed twice"),
            std::string::npos);
  EXPECT_NE(
      refusal(edited([](Json& j) { j["files"][0]["path"] = "manifest.sig"; })).find("listed twice"),
      std::string::npos);
  EXPECT_NE(refusal(edited([](Json& j) {
              j["files"][0]["sha256"] = std::string(64, 'B');
            })).find("not 64 lower-case hex digits"),
            std::string::npos);
  EXPECT_NE(refusal(edited([](Json& j) {
              j["files"][0]["size"] = -1;
            })).find("'files[0].size' is out of range"),
            std::string::npos);
  EXPECT_NE(refusal(edited([](Json& j) { j["files"] = Json::object(); })).find("not an array"),
            std::string::npos);
}

TEST(Manifest, PeeksTheSigningKeyIdOfAnyObject) {
  EXPECT_EQ(peek_signing_key_id(manifest_json(sample_manifest())), "0123456789abcdef");
  EXPECT_EQ(peek_signing_key_id("{\"signing_key_id\": \"x\"}"), "x");
  EXPECT_FALSE(peek_signing_key_id("{]").has_value());
  EXPECT_FALSE(peek_signing_key_id("{\"signing_key_id\": 3}").has_value());
}

TEST(ModelVersion, FollowsTheNodeProtocolRule) {
  for (const std::string& good :
       {std::string("v1"), std::string("2026.11.30-1"), std::string("a_b"), std::string(32, 'x')})
    EXPECT_TRUE(check_model_version(good).ok()) << good;
  for (const std::string& bad : {std::string(""), std::string(".hidden"), std::string(33, 'x'),
                                 std::string("a/b"), std::string("a b")}) {
    EXPECT_FALSE(check_model_version(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace cyclecast::bundle
