// Private to pipeline/: an RFC 4180 record splitter over an in-memory buffer. Fields are views
// into the buffer (or into one reused scratch string for quoted fields with doubled quotes), so
// splitting a record allocates nothing once the field vector has grown to the widest record.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cyclecast::pipeline::csv {

enum class ReadStatus {
  kRecord,  // fields() holds the next record
  kEnd,     // no more input
  kError,   // malformed input; error() says what, line() where
};

// Splits `text` into records of comma-separated fields. Accepted: a UTF-8 byte-order mark at
// the start, LF or CRLF line endings, a missing final line ending, quoted fields containing
// commas, line breaks and doubled quotes. Refused: a quote that is never closed, text after a
// closing quote. The buffer must outlive the reader and every view it hands out.
class RecordReader {
 public:
  explicit RecordReader(std::string_view text);

  ReadStatus next();

  // Valid until the next call of next().
  std::span<const std::string_view> fields() const { return fields_; }
  // 1-based line on which the current record (or the error) starts.
  std::uint32_t line() const { return record_line_; }
  // The current record's bytes without its line ending.
  std::string_view raw() const { return raw_; }
  // True when the current record is an empty line.
  bool blank() const { return raw_.empty(); }
  // Bytes consumed so far (for progress reports).
  std::size_t offset() const { return pos_; }
  std::size_t size() const { return text_.size(); }
  const std::string& error() const { return error_; }

 private:
  struct Span {
    std::size_t begin;
    std::size_t length;
    bool unescape;  // quoted field containing doubled quotes
  };

  bool scan_quoted(Span& span);
  void materialize_fields();

  std::string_view text_;
  std::size_t pos_ = 0;
  std::uint32_t line_ = 1;  // line of the byte at pos_
  std::uint32_t record_line_ = 1;
  std::string_view raw_;
  std::vector<Span> spans_;
  std::vector<std::string_view> fields_;
  std::string scratch_;
  std::string error_;
};

}  // namespace cyclecast::pipeline::csv
