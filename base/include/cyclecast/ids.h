// The one definition of a valid id: of a cell, a rig, an edge node or a model version. Ids travel
// as MQTT topic segments (docs/protocol.md) and as URL path segments of the API (docs/api.md), and
// CSV import (docs/csv-format.md) must not store a cell that neither can name, so every reader of
// ids from outside checks them here: 1 to 64 characters of [A-Za-z0-9_.-], not starting with '.'
// (so no "." or ".." path segment, no hidden file name, no '/', '+' or '#' topic character, no
// space, no byte outside ASCII).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cyclecast {

inline constexpr std::size_t kMaxIdLength = 64;

constexpr bool is_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

// Empty when `id` is a valid id, else why not ("id contains a character outside ...").
inline std::string check_id(std::string_view id) {
  if (id.empty()) return "empty id";
  if (id.size() > kMaxIdLength) {
    return "id of " + std::to_string(id.size()) + " characters exceeds " +
           std::to_string(kMaxIdLength);
  }
  for (const char c : id) {
    if (!is_id_char(c)) {
      return "id contains a character outside [A-Za-z0-9_.-] (byte " +
             std::to_string(static_cast<unsigned char>(c)) + ")";
    }
  }
  // Quoted only now that it is known to hold nothing but the alphabet (no terminal escapes).
  if (id.front() == '.') return "id '" + std::string(id) + "' starts with '.'";
  return {};
}

inline bool is_valid_id(std::string_view id) {
  return check_id(id).empty();
}

}  // namespace cyclecast
