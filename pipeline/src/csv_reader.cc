#include "csv_reader.h"

#include <algorithm>

namespace cyclecast::pipeline::csv {

namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// A CR ends a line only before LF or at the end of input; elsewhere it is field content.
bool is_line_end(std::string_view text, std::size_t pos) {
  const char c = text[pos];
  if (c == '\n') return true;
  return c == '\r' && (pos + 1 == text.size() || text[pos + 1] == '\n');
}

}  // namespace

RecordReader::RecordReader(std::string_view text) : text_(text) {
  if (text_.substr(0, kUtf8Bom.size()) == kUtf8Bom) pos_ = kUtf8Bom.size();
}

ReadStatus RecordReader::next() {
  spans_.clear();
  const std::size_t n = text_.size();
  if (pos_ >= n) return ReadStatus::kEnd;
  record_line_ = line_;
  const std::size_t record_begin = pos_;
  std::size_t record_end = n;
  const char* data = text_.data();
  for (;;) {
    Span span{pos_, 0, false};
    if (data[pos_] == '"') {
      if (!scan_quoted(span)) return ReadStatus::kError;
      if (pos_ < n && data[pos_] != ',' && !is_line_end(text_, pos_)) {
        error_ = "unexpected text after the closing quote of a quoted field";
        return ReadStatus::kError;
      }
    } else {
      std::size_t p = pos_;
      // Hot loop of the importer: one comparison chain per byte, no calls.
      while (p < n) {
        const char c = data[p];
        if (c == ',' || c == '\n') break;
        if (c == '\r' && (p + 1 == n || data[p + 1] == '\n')) break;
        ++p;
      }
      span.length = p - pos_;
      pos_ = p;
    }
    spans_.push_back(span);
    if (pos_ >= n) break;
    if (data[pos_] == ',') {
      ++pos_;
      if (pos_ < n) continue;
      spans_.push_back(Span{pos_, 0, false});  // "a,b," at the end of input: empty last field
      break;
    }
    record_end = pos_;
    if (data[pos_] == '\r') ++pos_;
    if (pos_ < n && data[pos_] == '\n') ++pos_;
    ++line_;
    break;
  }
  raw_ = text_.substr(record_begin, record_end - record_begin);
  materialize_fields();
  return ReadStatus::kRecord;
}

bool RecordReader::scan_quoted(Span& span) {
  const std::size_t n = text_.size();
  std::size_t p = pos_ + 1;  // after the opening quote
  span.begin = p;
  for (;;) {
    const std::size_t quote = text_.find('"', p);
    const std::size_t segment_end = quote == std::string_view::npos ? n : quote;
    line_ += static_cast<std::uint32_t>(
        std::count(text_.begin() + static_cast<std::ptrdiff_t>(p),
                   text_.begin() + static_cast<std::ptrdiff_t>(segment_end), '\n'));
    if (quote == std::string_view::npos) {
      error_ = "quoted field is never closed (missing '\"')";
      return false;
    }
    if (quote + 1 < n && text_[quote + 1] == '"') {
      span.unescape = true;
      p = quote + 2;
      continue;
    }
    span.length = quote - span.begin;
    pos_ = quote + 1;
    return true;
  }
}

void RecordReader::materialize_fields() {
  fields_.resize(spans_.size());
  scratch_.clear();
  // Unescaped text is never longer than the record, so reserving the record's size up front
  // keeps every view into scratch_ valid while later fields are appended.
  scratch_.reserve(raw_.size());
  for (std::size_t i = 0; i < spans_.size(); ++i) {
    const Span& span = spans_[i];
    const std::string_view source = text_.substr(span.begin, span.length);
    if (!span.unescape) {
      fields_[i] = source;
      continue;
    }
    const std::size_t start = scratch_.size();
    for (std::size_t j = 0; j < source.size(); ++j) {
      scratch_.push_back(source[j]);
      if (source[j] == '"') ++j;  // skip the second quote of a doubled pair
    }
    fields_[i] = std::string_view(scratch_.data() + start, scratch_.size() - start);
  }
}

}  // namespace cyclecast::pipeline::csv
