// The one JSON parser for bytes from outside (MQTT payloads, HTTP bodies, files, child processes):
// nlohmann's parser driven through a SAX handler of our own that builds the DOM and refuses, as
// a value, what nlohmann alone would accept (docs/protocol.md, "Limits"; docs/reliability.md):
//   - text over the caller's size limit, before a byte of it is parsed;
//   - nesting deeper than `max_depth` arrays and objects (default kMaxJsonDepth). nlohmann parses
//     iteratively, but copying, comparing and serialising a DOM recurse once per level: a
//     document 90,000 levels deep overflows the stack there. A DOM that passed here is at most
//     max_depth deep, so those stay safe; SQLite's json_valid (depth limit 1000) accepts it too;
//   - an object key given twice (nlohmann keeps the last one; two readers could disagree);
//   - a string or key holding U+0000 (C code, logs and SQLite text would cut it short).
// Invalid UTF-8, lone surrogates, raw control characters, NaN/Infinity, trailing bytes and numbers
// that overflow a double are refused by nlohmann's own lexer; the message says which.
//
// Header-only; callers link nlohmann-json (docs/architecture.md, base's row). No state, no I/O:
// safe from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cyclecast/result.h"

namespace cyclecast {

// Nesting limit for every document from outside: arrays and objects open at once, the outermost
// counting 1 (`[[1]]` is 2 deep). No legitimate document of ours goes beyond 6.
inline constexpr std::size_t kMaxJsonDepth = 64;

namespace detail {

// nlohmann's SAX interface (json_sax): each callback returns false to stop the parse, after
// saying why in `error`.
class BoundedJsonBuilder {
 public:
  using Json = nlohmann::json;
  using number_integer_t = Json::number_integer_t;
  using number_unsigned_t = Json::number_unsigned_t;
  using number_float_t = Json::number_float_t;
  using string_t = Json::string_t;
  using binary_t = Json::binary_t;

  explicit BoundedJsonBuilder(std::size_t max_depth) : max_depth_(max_depth) {}

  bool null() { return add(Json(nullptr)) != nullptr; }
  bool boolean(bool value) { return add(Json(value)) != nullptr; }
  bool number_integer(number_integer_t value) { return add(Json(value)) != nullptr; }
  bool number_unsigned(number_unsigned_t value) { return add(Json(value)) != nullptr; }
  bool number_float(number_float_t value, const string_t& /*text*/) {
    return add(Json(value)) != nullptr;
  }
  bool string(string_t& value) {
    if (value.find('\0') != string_t::npos) return fail("a string holds a NUL character (\\u0000)");
    return add(Json(std::move(value))) != nullptr;
  }
  bool binary(binary_t& /*value*/) { return fail("binary values are not JSON"); }
  bool start_object(std::size_t /*elements*/) { return open(Json::object()); }
  bool start_array(std::size_t /*elements*/) { return open(Json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(string_t& name) {
    if (name.find('\0') != string_t::npos) return fail("a key holds a NUL character (\\u0000)");
    // `open_` is never empty here: nlohmann asks for a key only inside an object.
    if (open_.back()->contains(name)) {
      constexpr std::size_t kShownKeyBytes = 64;
      return fail("duplicate key '" + name.substr(0, kShownKeyBytes) + "' in one object");
    }
    key_ = std::move(name);
    return true;
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const Json::exception& e) {
    // nlohmann's out_of_range 406 is a number beyond double range (1e999): said plainly.
    constexpr int kNumberOverflow = 406;
    error_ = e.id == kNumberOverflow ? "invalid JSON: a number overflows to infinity"
                                     : std::string("invalid JSON: ") + e.what();
    return false;
  }

  Json& root() { return root_; }
  const std::string& error() const { return error_; }

 private:
  // Puts `value` where the parse is: the root, the open array's end or the open object's key.
  Json* add(Json&& value) {
    if (open_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    Json& parent = *open_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(value));
      return &parent.back();
    }
    Json& slot = parent[key_];
    slot = std::move(value);
    return &slot;
  }
  // Pointers stay valid: a parent gets no other element while its child is open.
  bool open(Json&& container) {
    if (open_.size() >= max_depth_) {
      return fail("nested deeper than " + std::to_string(max_depth_) + " levels");
    }
    open_.push_back(add(std::move(container)));
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }
  bool fail(std::string reason) {
    error_ = "invalid JSON: " + std::move(reason);
    return false;
  }

  std::size_t max_depth_;
  Json root_;
  std::vector<Json*> open_;  // the arrays and objects being filled, outermost first
  string_t key_;             // the key of the value to come, inside an object
  std::string error_;
};

}  // namespace detail

// Parses one JSON document of at most `max_bytes` bytes and `max_depth` nesting levels (see the
// top of this file). kParse with a sentence otherwise: "JSON text of N bytes exceeds the limit of
// M bytes", or "invalid JSON: " and what is wrong (nlohmann's message for syntax errors).
inline Result<nlohmann::json> parse_bounded_json(std::string_view text, std::size_t max_bytes,
                                                 std::size_t max_depth = kMaxJsonDepth) {
  if (text.size() > max_bytes) {
    return Error{ErrorCode::kParse, "JSON text of " + std::to_string(text.size()) +
                                        " bytes exceeds the limit of " + std::to_string(max_bytes) +
                                        " bytes"};
  }
  detail::BoundedJsonBuilder builder(max_depth);
  if (!nlohmann::json::sax_parse(text, &builder)) return Error{ErrorCode::kParse, builder.error()};
  return std::move(builder.root());
}

}  // namespace cyclecast
