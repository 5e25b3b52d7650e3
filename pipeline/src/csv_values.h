// Private to pipeline/: parsing of single CSV field values (numbers, cycle numbers, UTC
// timestamps) without allocation, and the bits of JSON the cells file's metadata needs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cyclecast::pipeline::csv {

// Removes spaces and tabs around a field (spreadsheets pad numbers; nothing in a value needs them).
std::string_view trim(std::string_view field);

enum class NumberStatus {
  kOk,
  kEmpty,
  kNotANumber,  // not a decimal number at all ("abc", "1,5", "0x10")
  kNaN,         // "nan" and friends
  kInfinite,    // "inf", or a magnitude beyond double's range
};

// Decimal number in C locale (from_chars general format), whole field consumed.
NumberStatus parse_double(std::string_view field, double& out);

enum class IntegerStatus {
  kOk,
  kEmpty,
  kNotAnInteger,  // "abc", "1.5", "1e3"
  kOutOfRange,    // does not fit in int64
};

// Decimal integer, optional leading '-', whole field consumed. With `allow_zero_fraction`,
// "12.0" and "12.00" are accepted as 12 (tools such as pandas write integer columns that way).
IntegerStatus parse_integer(std::string_view field, bool allow_zero_fraction, std::int64_t& out);

// ISO-8601 UTC instant "YYYY-MM-DDTHH:MM:SS[.fraction]Z" to Unix epoch milliseconds (fraction
// beyond milliseconds truncated). False for anything else, including impossible dates.
bool parse_utc_timestamp_ms(std::string_view field, std::int64_t& out);

// True when `text` is a number in JSON's grammar, so it can be written into JSON unchanged.
bool is_json_number(std::string_view text);
// Appends `text` as a JSON string literal (quotes included), escaping as RFC 8259 requires.
void append_json_string(std::string& out, std::string_view text);

}  // namespace cyclecast::pipeline::csv
