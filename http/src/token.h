// The bearer token of the mutating endpoints: read from a file that others cannot read, kept
// only as its SHA-256, compared in constant time. Private to the server.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "cyclecast/result.h"

namespace cyclecast::http {

using TokenDigest = std::array<std::uint8_t, 32>;

// Reads the token (the file's text, surrounding whitespace removed). Errors: kNotFound (missing),
// kInvalidArgument (not a regular file, readable or writable by others, empty, over 4 KiB),
// kIo (unreadable).
Result<TokenDigest> read_token_file(const std::filesystem::path& path);

// True when `presented` is the token. Both sides are hashed first, so the comparison takes the
// same time whatever the presented token's length or content.
bool token_matches(const TokenDigest& token, std::string_view presented);

// The token of an Authorization header "Bearer <token>" (scheme in any case); empty when the
// header is empty or of another scheme.
std::string_view bearer_token(std::string_view authorization);

}  // namespace cyclecast::http
