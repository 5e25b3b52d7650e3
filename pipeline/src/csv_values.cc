#include "csv_values.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <system_error>

namespace cyclecast::pipeline::csv {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads exactly `count` digits at text[pos...] into `out`.
bool read_digits(std::string_view text, std::size_t pos, std::size_t count, int& out) {
  if (pos + count > text.size()) return false;
  int value = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const char c = text[pos + i];
    if (!is_digit(c)) return false;
    value = value * 10 + (c - '0');
  }
  out = value;
  return true;
}

}  // namespace

std::string_view trim(std::string_view field) {
  while (!field.empty() && (field.front() == ' ' || field.front() == '\t'))
    field.remove_prefix(1);
  while (!field.empty() && (field.back() == ' ' || field.back() == '\t'))
    field.remove_suffix(1);
  return field;
}

NumberStatus parse_double(std::string_view field, double& out) {
  field = trim(field);
  if (field.empty()) return NumberStatus::kEmpty;
  const char* end = field.data() + field.size();
  const auto [ptr, ec] = std::from_chars(field.data(), end, out);
  if (ec == std::errc::result_out_of_range && ptr == end) {
    // Overflow is as unusable as infinity; underflow (1e-400) is a plausible-enough zero.
    const std::size_t exponent = field.find_first_of("eE");
    if (exponent != std::string_view::npos && exponent + 1 < field.size() &&
        field[exponent + 1] == '-') {
      out = 0.0;
      return NumberStatus::kOk;
    }
    return NumberStatus::kInfinite;
  }
  if (ec != std::errc() || ptr != end) return NumberStatus::kNotANumber;
  if (std::isnan(out)) return NumberStatus::kNaN;
  if (std::isinf(out)) return NumberStatus::kInfinite;
  return NumberStatus::kOk;
}

IntegerStatus parse_integer(std::string_view field, bool allow_zero_fraction, std::int64_t& out) {
  field = trim(field);
  if (field.empty()) return IntegerStatus::kEmpty;
  const char* end = field.data() + field.size();
  const auto [ptr, ec] = std::from_chars(field.data(), end, out);
  if (ec == std::errc::result_out_of_range) return IntegerStatus::kOutOfRange;
  if (ec != std::errc()) return IntegerStatus::kNotAnInteger;
  if (ptr == end) return IntegerStatus::kOk;
  if (!allow_zero_fraction || *ptr != '.' || ptr + 1 == end) return IntegerStatus::kNotAnInteger;
  for (const char* p = ptr + 1; p != end; ++p) {
    if (*p != '0') return IntegerStatus::kNotAnInteger;
  }
  return IntegerStatus::kOk;
}

bool parse_utc_timestamp_ms(std::string_view field, std::int64_t& out) {
  field = trim(field);
  // YYYY-MM-DDTHH:MM:SS is 19 characters; then an optional fraction and a mandatory Z.
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (field.size() < 20 || !read_digits(field, 0, 4, year) || field[4] != '-' ||
      !read_digits(field, 5, 2, month) || field[7] != '-' || !read_digits(field, 8, 2, day) ||
      field[10] != 'T' || !read_digits(field, 11, 2, hour) || field[13] != ':' ||
      !read_digits(field, 14, 2, minute) || field[16] != ':' ||
      !read_digits(field, 17, 2, second) || field.back() != 'Z') {
    return false;
  }
  int millis = 0;
  std::string_view rest = field.substr(19, field.size() - 20);
  if (!rest.empty()) {
    if (rest.front() != '.' || rest.size() < 2) return false;
    for (std::size_t i = 1; i < rest.size(); ++i) {
      if (!is_digit(rest[i])) return false;
      if (i <= 3) millis = millis * 10 + (rest[i] - '0');
    }
    for (std::size_t i = rest.size(); i <= 3; ++i)
      millis *= 10;  // ".5" is 500 ms
  }
  // Leap seconds (:60) are refused: no rig clock we read reports them.
  if (hour > 23 || minute > 59 || second > 59) return false;
  const std::chrono::year_month_day date{std::chrono::year{year},
                                         std::chrono::month{static_cast<unsigned>(month)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok()) return false;
  const std::int64_t days = std::chrono::sys_days{date}.time_since_epoch().count();
  out = ((days * 24 + hour) * 60 + minute) * 60'000 + second * 1000 + millis;
  return true;
}

bool is_json_number(std::string_view text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  if (i < n && text[i] == '-') ++i;
  if (i == n) return false;
  if (text[i] == '0') {
    ++i;
  } else if (is_digit(text[i])) {
    while (i < n && is_digit(text[i]))
      ++i;
  } else {
    return false;
  }
  if (i < n && text[i] == '.') {
    ++i;
    if (i == n || !is_digit(text[i])) return false;
    while (i < n && is_digit(text[i]))
      ++i;
  }
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    if (i == n || !is_digit(text[i])) return false;
    while (i < n && is_digit(text[i]))
      ++i;
  }
  return i == n;
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (byte < 0x20) {
      out += "\\u00";
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

}  // namespace cyclecast::pipeline::csv
