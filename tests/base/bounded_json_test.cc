// The bounded JSON parser refuses, as a value, what would crash or mislead a reader of outside
// bytes: nesting past the limit (exactly at the limit is fine), duplicate keys, NUL in strings
// and keys, invalid UTF-8 and text over the size limit; 100,000 levels cost nothing.
#include "cyclecast/bounded_json.h"

#include <gtest/gtest.h>

#include <string>

namespace cyclecast {
namespace {

constexpr std::size_t kLimit = 1 << 20;

std::string arrays(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}
std::string objects(std::size_t depth) {
  std::string text;
  for (std::size_t i = 0; i < depth; ++i)
    text += "{\"a\":";
  text += "1";
  text += std::string(depth, '}');
  return text;
}

std::string refusal(std::string_view text, std::size_t max_bytes = kLimit) {
  auto parsed = parse_bounded_json(text, max_bytes);
  if (parsed) return "";
  EXPECT_EQ(parsed.error().code, ErrorCode::kParse);
  return parsed.error().message;
}

TEST(BoundedJson, ParsesOrdinaryDocuments) {
  auto parsed =
      parse_bounded_json(R"({"a": [1, -2, 3.5, true, null, "x\u00e9"], "b": {}})", kLimit);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ((*parsed)["a"][0], 1);
  EXPECT_EQ((*parsed)["a"][1], -2);
  EXPECT_EQ((*parsed)["a"][2], 3.5);
  EXPECT_EQ((*parsed)["a"][5], "x\xc3\xa9");
  EXPECT_TRUE((*parsed)["b"].is_object());
  EXPECT_EQ(parse_bounded_json("42", kLimit).value(), 42);
  EXPECT_EQ(parse_bounded_json("18446744073709551615", kLimit).value().get<std::uint64_t>(),
            18446744073709551615u);
}

TEST(BoundedJson, AcceptsNestingExactlyAtTheLimit) {
  auto parsed = parse_bounded_json(arrays(kMaxJsonDepth), kLimit);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->dump(), arrays(kMaxJsonDepth));
  auto nested_objects = parse_bounded_json(objects(kMaxJsonDepth), kLimit);
  ASSERT_TRUE(nested_objects) << nested_objects.error().message;
  EXPECT_EQ(nested_objects->dump(), objects(kMaxJsonDepth));
}

TEST(BoundedJson, RefusesOneLevelOverTheLimit) {
  EXPECT_EQ(refusal(arrays(kMaxJsonDepth + 1)), "invalid JSON: nested deeper than 64 levels");
  EXPECT_EQ(refusal(objects(kMaxJsonDepth + 1)), "invalid JSON: nested deeper than 64 levels");
  EXPECT_NE(refusal("[" + arrays(kMaxJsonDepth) + "]"), "");
}

TEST(BoundedJson, TheLimitCanBeLowered) {
  EXPECT_TRUE(parse_bounded_json("[[1]]", kLimit, 2));
  auto parsed = parse_bounded_json("[[[1]]]", kLimit, 2);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().message, "invalid JSON: nested deeper than 2 levels");
}

TEST(BoundedJson, HundredThousandLevelsAreRefusedWithoutCrashing) {
  constexpr std::size_t kDeep = 100000;
  EXPECT_NE(refusal(arrays(kDeep)).find("nested deeper"), std::string::npos);
  EXPECT_NE(refusal(objects(kDeep)).find("nested deeper"), std::string::npos);
  // Unclosed, and inside an otherwise valid object.
  EXPECT_NE(refusal(std::string(kDeep, '[')).find("nested deeper"), std::string::npos);
  EXPECT_NE(refusal("{\"metadata\":" + arrays(kDeep) + "}").find("nested deeper"),
            std::string::npos);
}

TEST(BoundedJson, RefusesDuplicateKeys) {
  EXPECT_EQ(refusal(R"({"cycle": 1, "cycle": 2})"),
            "invalid JSON: duplicate key 'cycle' in one object");
  EXPECT_NE(refusal(R"({"a": {"x": 1, "x": 1}})").find("duplicate key 'x'"), std::string::npos);
  // The same key in different objects is fine.
  EXPECT_TRUE(parse_bounded_json(R"({"a": {"x": 1}, "b": {"x": 2}, "x": 3})", kLimit));
  // A key spelled with an escape is the same key.
  EXPECT_NE(refusal(R"({"ab": 1, "a\u0062": 2})"), "");
}

TEST(BoundedJson, RefusesNulInStringsAndKeys) {
  EXPECT_EQ(refusal(R"({"chemistry": "LFP\u0000x"})"),
            "invalid JSON: a string holds a NUL character (\\u0000)");
  EXPECT_EQ(refusal(R"({"a\u0000": 1})"), "invalid JSON: a key holds a NUL character (\\u0000)");
  EXPECT_NE(refusal(std::string("[\"a\0b\"]", 7)), "");  // a raw NUL is a lexer error
  // Other escaped control characters are valid JSON and stay.
  EXPECT_TRUE(parse_bounded_json(R"(["tab\there"])", kLimit));
}

TEST(BoundedJson, RefusesInvalidUtf8) {
  EXPECT_NE(refusal("[\"\xff\xfe\"]").find("invalid JSON"), std::string::npos);
  EXPECT_NE(refusal("[\"\xc3\"]").find("invalid JSON"), std::string::npos);      // truncated
  EXPECT_NE(refusal("[\"\xc0\xaf\"]").find("invalid JSON"), std::string::npos);  // overlong
  EXPECT_NE(refusal("{\"\xed\xa0\x80\": 1}").find("invalid JSON"), std::string::npos);
  EXPECT_NE(refusal(R"(["\ud800"])").find("invalid JSON"), std::string::npos);  // lone surrogate
}

TEST(BoundedJson, RefusesWhatNlohmannRefuses) {
  EXPECT_EQ(refusal("[1e999]"), "invalid JSON: a number overflows to infinity");
  EXPECT_NE(refusal("[NaN]").find("invalid JSON: "), std::string::npos);
  EXPECT_NE(refusal("{} x").find("invalid JSON: "), std::string::npos);
  EXPECT_NE(refusal("").find("invalid JSON: "), std::string::npos);
  EXPECT_NE(refusal("[1,]").find("invalid JSON: "), std::string::npos);
}

TEST(BoundedJson, RefusesTextOverTheSizeLimitBeforeParsing) {
  EXPECT_EQ(refusal("[1, 2]", 5), "JSON text of 6 bytes exceeds the limit of 5 bytes");
  EXPECT_TRUE(parse_bounded_json("[1, 2]", 6));
}

}  // namespace
}  // namespace cyclecast
