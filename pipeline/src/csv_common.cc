#include "csv_common.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "csv_values.h"
#include "cyclecast/ids.h"

namespace cyclecast::pipeline::csv {

std::string format_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

std::string quote_for_message(std::string_view text) {
  constexpr std::size_t kMaxShown = 40;
  std::string out = "'";
  for (const char c : text.substr(0, kMaxShown)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F) {
      // Shown, not sent: an escape sequence in a file must not drive the operator's terminal.
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02X", byte);
      out += escaped;
    } else {
      out.push_back(c);
    }
  }
  if (text.size() > kMaxShown) out += "...";
  out += "'";
  return out;
}

std::string location(const std::string& source, std::uint32_t line) {
  return source + ":" + std::to_string(line);
}

Error parse_error(const std::string& source, std::uint32_t line, const std::string& what) {
  return make_error(ErrorCode::kParse, location(source, line) + ": " + what);
}

std::string check_cell_id(std::string_view id) {
  if (id.empty()) return "required value is empty";
  // The API and MQTT topics name cells by id: one that they cannot name must not be stored.
  if (std::string why = check_id(id); !why.empty()) return "cell " + why;
  return {};
}

namespace {

bool is_number_like(std::string_view field) {
  double ignored = 0.0;
  return parse_double(field, ignored) == NumberStatus::kOk;
}

}  // namespace

Result<void> check_header_shape(std::span<const std::string_view> fields, std::string_view raw,
                                const std::string& source) {
  if (raw.empty()) return parse_error(source, 1, "the header row is empty");
  // Spreadsheets export "Unicode text" as UTF-16, with a byte-order mark and a NUL in every
  // ASCII character; what would follow is an "unknown column" full of NULs.
  if (raw.starts_with("\xFF\xFE") || raw.starts_with("\xFE\xFF") ||
      raw.find('\0') != std::string_view::npos) {
    return parse_error(source, 1,
                       "the header holds NUL bytes or a UTF-16 byte-order mark: the file looks "
                       "UTF-16 (or binary); save it as UTF-8 CSV");
  }
  // Old Mac line endings (a bare CR) make the whole file one line, taken for a header of data.
  if (raw.find('\r') != std::string_view::npos) {
    return parse_error(source, 1,
                       "the header row holds a carriage return: lines must end in LF or CRLF, "
                       "not a bare CR (convert the file, e.g. with tr '\\r' '\\n')");
  }
  if (fields.size() == 1) {
    if (raw.find(';') != std::string_view::npos) {
      return parse_error(source, 1,
                         "the header has no ',' but contains ';': fields must be separated by "
                         "commas, not semicolons");
    }
    if (raw.find('\t') != std::string_view::npos) {
      return parse_error(source, 1,
                         "the header has no ',' but contains tabs: fields must be separated by "
                         "commas, not tabs");
    }
  }
  for (const std::string_view field : fields) {
    if (is_number_like(field)) {
      return parse_error(source, 1,
                         "no header row: the first line holds data (" + quote_for_message(raw) +
                             "); expected column names, e.g. cell_id,cycle,qd_ah");
    }
  }
  return {};
}

namespace {

// Follows the line breaks of a file as it is read, chunk by chunk, so that a line over
// kMaxLineBytes is refused as soon as it is, long before the whole file would be in memory.
class LineLengthGuard {
 public:
  // Looks at bytes [from, to) of `data`; an error naming the line once one is too long.
  Result<void> check(const std::filesystem::path& path, const char* data, std::size_t from,
                     std::size_t to) {
    for (std::size_t pos = from; pos < to;) {
      const void* found = std::memchr(data + pos, '\n', to - pos);
      if (found == nullptr) break;
      const auto at = static_cast<std::size_t>(static_cast<const char*>(found) - data);
      if (at - line_start_ > kMaxLineBytes) return too_long(path);
      ++line_;
      line_start_ = at + 1;
      pos = at + 1;
    }
    if (to - line_start_ > kMaxLineBytes) return too_long(path);
    return {};
  }

 private:
  Error too_long(const std::filesystem::path& path) const {
    return make_error(ErrorCode::kParse, path.string() + ": line " + std::to_string(line_) +
                                             " is longer than the maximum line length of " +
                                             std::to_string(kMaxLineBytes) + " bytes (" +
                                             std::to_string(kMaxLineBytes >> 20) +
                                             " MiB); is it a CSV file?");
  }

  std::size_t line_ = 1;
  std::size_t line_start_ = 0;  // offset of the current line's first byte
};

}  // namespace

Result<FileBytes> read_whole_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return make_error(ErrorCode::kIo, path.string() + ": is a directory, expected a CSV file");
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) {
    return make_error(ErrorCode::kIo, path.string() + ": cannot open: " + std::strerror(errno));
  }
  constexpr std::size_t kChunkBytes = 1 << 20;
  const auto size_hint = std::filesystem::file_size(path, ec);
  std::size_t capacity = (ec ? 0 : static_cast<std::size_t>(size_hint)) + kChunkBytes;
  FileBytes bytes{std::make_unique_for_overwrite<char[]>(capacity), 0};
  LineLengthGuard guard;
  for (;;) {
    if (capacity - bytes.size < kChunkBytes) {  // the file grew, or its size was unknown
      capacity *= 2;
      auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
      std::memcpy(bigger.get(), bytes.data.get(), bytes.size);
      bytes.data = std::move(bigger);
    }
    const std::size_t got = std::fread(bytes.data.get() + bytes.size, 1, kChunkBytes, file.get());
    bytes.size += got;
    if (auto fits = guard.check(path, bytes.data.get(), bytes.size - got, bytes.size); !fits) {
      return fits.error();
    }
    if (got < kChunkBytes) break;
  }
  if (std::ferror(file.get()) != 0) {
    return make_error(ErrorCode::kIo, path.string() + ": read failed: " + std::strerror(errno));
  }
  return bytes;
}

}  // namespace cyclecast::pipeline::csv
