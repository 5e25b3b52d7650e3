// cyclecastd's configuration under hostile text (docs/configuration.md, "Limits"): toml++ bounds
// nested values itself, but a dotted key or table header 100,000 levels deep made its tables'
// destructors overflow the stack; such files and files over 1 MiB are refused before parsing.
#include <string>

#include <gtest/gtest.h>

#include "config.h"
#include "temp_dir.h"

namespace cyclecast::daemon {
namespace {

std::string refusal(const std::string& text) {
  auto config = parse_config(text, "c.toml");
  return config ? "" : config.error().message;
}

std::string repeat(const std::string& piece, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i)
    out += piece;
  return out;
}

TEST(DaemonConfigLimits, DeepDottedKeysAndHeadersAreRefusedBeforeParsing) {
  EXPECT_EQ(refusal("[mqtt]\n" + repeat("a.", 100000) + "a = 1\n"),
            "c.toml:2: more than 64 dots in one line (keys nest too deep)");
  EXPECT_EQ(refusal("[" + repeat("a.", 100000) + "a]\n"),
            "c.toml:1: more than 64 dots in one line (keys nest too deep)");
  EXPECT_EQ(refusal("x = {" + repeat("a.", 100000) + "a = 1}\n"),
            "c.toml:1: more than 64 dots in one line (keys nest too deep)");
}

TEST(DaemonConfigLimits, DotsInStringsAndAFewInKeysAreFine) {
  const std::string host = repeat("a.", 100) + "example";  // quoted: not a key path
  auto config = parse_config("[mqtt]\nhost = \"" + host + "\"\n", "c.toml");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->mqtt_host, host);
  // 64 dots pass the pre-check; toml++ then says what is wrong with the key.
  const std::string message = refusal(repeat("a.", 64) + "a = 1\n");
  EXPECT_EQ(message.find("dots in one line"), std::string::npos) << message;
  EXPECT_NE(message, "");
}

TEST(DaemonConfigLimits, DeepInlineArraysAreRefusedByToml) {
  const std::string message =
      refusal("[mqtt]\nhost = " + std::string(100000, '[') + std::string(100000, ']') + "\n");
  EXPECT_NE(message.find("maximum nested value depth"), std::string::npos) << message;
}

TEST(DaemonConfigLimits, FilesOverOneMebibyteAreRefused) {
  const std::string big = "# " + std::string(kMaxConfigBytes, 'x') + "\n";
  EXPECT_NE(refusal(big).find("more than the limit of 1048576"), std::string::npos);
  cyclecast::testing::TempDir dir;
  cyclecast::testing::write_file(dir / "big.toml", big + big);
  auto loaded = load_config_file(dir / "big.toml", false);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find("1048577 bytes, more than the limit of 1048576"),
            std::string::npos)
      << loaded.error().message;
}

}  // namespace
}  // namespace cyclecast::daemon
