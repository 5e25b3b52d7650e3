#include "cyclecast/lifecycle/archive.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

namespace cyclecast::bundle {
namespace {

// Field offsets and widths of the ustar header (POSIX.1-2001, "ustar Interchange Format").
struct Field {
  size_t offset;
  size_t width;
};
constexpr Field kName{0, 100};
constexpr Field kMode{100, 8};
constexpr Field kUid{108, 8};
constexpr Field kGid{116, 8};
constexpr Field kSize{124, 12};
constexpr Field kMtime{136, 12};
constexpr Field kChecksum{148, 8};
constexpr Field kTypeflag{156, 1};
constexpr Field kLinkname{157, 100};
constexpr Field kMagic{257, 6};
constexpr Field kVersion{263, 2};
constexpr Field kUname{265, 32};
constexpr Field kGname{297, 32};
constexpr Field kDevmajor{329, 8};
constexpr Field kDevminor{337, 8};
constexpr Field kPrefix{345, 155};
constexpr Field kPad{500, 12};           // unnamed in POSIX: the rest of the block, zero
constexpr char kUstarMagic[] = "ustar";  // with its NUL: the 6 bytes of the field
constexpr char kRegularFile = '0';
constexpr uint64_t kMaxMtime = (uint64_t{1} << 33) - 1;  // 11 octal digits

// Every field of the header by its POSIX name: the reader compares each with what the writer
// makes, so that `tar -xf` cannot create anything the writer did not mean (a mode with setuid or
// group/world write, an owner, a device). In header order but for the checksum, which differs
// whenever another field does and so comes last, to name the field that made the difference.
struct NamedField {
  const char* name;
  Field field;
  bool numeric;
};
constexpr NamedField kHeaderFields[] = {{"name", kName, false},
                                        {"mode", kMode, true},
                                        {"uid", kUid, true},
                                        {"gid", kGid, true},
                                        {"size", kSize, true},
                                        {"mtime", kMtime, true},
                                        {"typeflag", kTypeflag, false},
                                        {"linkname", kLinkname, false},
                                        {"magic", kMagic, false},
                                        {"version", kVersion, false},
                                        {"uname", kUname, false},
                                        {"gname", kGname, false},
                                        {"devmajor", kDevmajor, true},
                                        {"devminor", kDevminor, true},
                                        {"prefix", kPrefix, false},
                                        {"pad", kPad, false},
                                        {"chksum", kChecksum, false}};

using Block = std::span<const uint8_t>;

std::string quoted(std::string_view name) {
  return "'" + std::string(name) + "'";
}

bool is_name_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '.' || ch == '_' || ch == '-' || ch == '+' || ch == '/';
}

Error bad_name(std::string_view name, const std::string& why) {
  return make_error(ErrorCode::kInvalidArgument, "unsafe member name " + quoted(name) + ": " + why);
}

// Writes `value` as zero-padded octal digits followed by a NUL, filling the field.
void put_octal(std::vector<uint8_t>& header, Field field, uint64_t value) {
  for (size_t i = field.width - 1; i-- > 0;) {
    header[field.offset + i] = static_cast<uint8_t>('0' + (value & 7U));
    value >>= 3;
  }
  header[field.offset + field.width - 1] = 0;
}

void put_text(std::vector<uint8_t>& header, Field field, std::string_view text) {
  std::memcpy(header.data() + field.offset, text.data(), std::min(text.size(), field.width));
}

uint64_t header_checksum(Block header) {
  uint64_t sum = 0;
  for (size_t i = 0; i < kTarBlockBytes; ++i) {
    const bool in_checksum = i >= kChecksum.offset && i < kChecksum.offset + kChecksum.width;
    sum += in_checksum ? uint64_t{' '} : header[i];
  }
  return sum;
}

// The one header the writer makes for a member: everything but name, size and mtime is fixed.
std::vector<uint8_t> make_header(std::string_view name, uint64_t size, uint64_t mtime_s) {
  std::vector<uint8_t> header(kTarBlockBytes, 0);
  put_text(header, kName, name);
  put_octal(header, kMode, 0644);
  put_octal(header, kUid, 0);
  put_octal(header, kGid, 0);
  put_octal(header, kSize, size);
  put_octal(header, kMtime, mtime_s);
  header[kTypeflag.offset] = static_cast<uint8_t>(kRegularFile);
  std::memcpy(header.data() + kMagic.offset, kUstarMagic, kMagic.width);
  put_text(header, kVersion, "00");
  // Checksum: six octal digits, NUL, space (the traditional layout every tar accepts).
  const uint64_t sum = header_checksum(header);
  put_octal(header, Field{kChecksum.offset, 7}, sum);
  header[kChecksum.offset + 7] = ' ';
  return header;
}

size_t padded(uint64_t size) {
  return static_cast<size_t>((size + kTarBlockBytes - 1) / kTarBlockBytes * kTarBlockBytes);
}

bool all_zero(Block bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

// A NUL-terminated (or field-filling) text field.
std::string text_field(Block header, Field field) {
  const auto* begin = reinterpret_cast<const char*>(header.data() + field.offset);
  return std::string(begin, strnlen(begin, field.width));
}

// Octal digits, optionally led by spaces, ended by NUL or space (or the field's end). No base-256.
Result<uint64_t> octal_field(Block header, Field field, const char* what, size_t offset) {
  size_t i = 0;
  while (i < field.width && header[field.offset + i] == ' ')
    ++i;
  uint64_t value = 0;
  size_t digits = 0;
  for (; i < field.width; ++i, ++digits) {
    const uint8_t ch = header[field.offset + i];
    if (ch == 0 || ch == ' ') break;
    if (ch < '0' || ch > '7' || digits >= 21) {
      return make_error(ErrorCode::kParse, "archive header at offset " + std::to_string(offset) +
                                               ": the " + what + " field is not octal");
    }
    value = value * 8 + (ch - '0');
  }
  if (digits == 0) {
    return make_error(ErrorCode::kParse, "archive header at offset " + std::to_string(offset) +
                                             ": the " + what + " field is empty");
  }
  return value;
}

// A field's bytes for a message: trailing NULs dropped, anything but printable ASCII as \xNN.
std::string shown(Block header, Field field) {
  size_t end = field.width;
  while (end > 0 && header[field.offset + end - 1] == 0)
    --end;
  std::string text;
  for (size_t i = 0; i < end; ++i) {
    const uint8_t byte = header[field.offset + i];
    if (byte >= 0x20 && byte < 0x7f && byte != '"' && byte != '\\') {
      text += static_cast<char>(byte);
    } else {
      constexpr char kHex[] = "0123456789abcdef";
      text += std::string("\\x") + kHex[byte >> 4] + kHex[byte & 15];
    }
  }
  return text;
}

std::string shown_type(char type) {
  if (type == '\0') return "NUL";
  if (type > 0x20 && type < 0x7f) return "'" + std::string(1, type) + "'";
  const Block byte(reinterpret_cast<const uint8_t*>(&type), 1);
  return "byte " + shown(byte, Field{0, 1});
}

Result<void> check_header_kind(Block header, const std::string& name, size_t offset) {
  if (std::memcmp(header.data() + kMagic.offset, kUstarMagic, kMagic.width) != 0 ||
      std::memcmp(header.data() + kVersion.offset, "00", 2) != 0) {
    return make_error(ErrorCode::kParse, "archive header at offset " + std::to_string(offset) +
                                             " is not a POSIX ustar header");
  }
  const char type = static_cast<char>(header[kTypeflag.offset]);
  if (type == '1' || type == '2') {
    return make_error(ErrorCode::kUnsupported,
                      "member " + quoted(name) + " is a link; a bundle holds regular files only");
  }
  if (type != kRegularFile) {
    // '\0' is the old spelling of a regular file, which the writer does not use either.
    return make_error(ErrorCode::kUnsupported,
                      "member " + quoted(name) + " has type " + shown_type(type) +
                          "; a bundle holds regular files (type '0') only");
  }
  if (!text_field(header, kLinkname).empty() || !text_field(header, kPrefix).empty()) {
    return make_error(ErrorCode::kParse,
                      "member " + quoted(name) + " uses the link name or prefix field");
  }
  return {};
}

// GNU tar and others write numbers too large for octal in base-256 (the first byte's high bit
// set); the writer never does, and such a uid is how a header says "some other user's file".
Result<void> check_octal_only(Block header, const std::string& name) {
  for (const NamedField& named : kHeaderFields) {
    if (named.numeric && (header[named.field.offset] & 0x80) != 0) {
      return make_error(ErrorCode::kParse, "member " + quoted(name) + ": header field '" +
                                               named.name +
                                               "' is a base-256 number; a bundle writes numbers "
                                               "in octal only");
    }
  }
  return {};
}

// Every byte of the header as the writer would make it for this name, size and mtime (the
// first member's: the writer gives all the same one).
Result<void> check_as_written(Block header, const std::string& name, uint64_t size,
                              uint64_t mtime_s) {
  const std::vector<uint8_t> expected = make_header(name, size, mtime_s);
  for (const NamedField& named : kHeaderFields) {
    const Field field = named.field;
    if (std::memcmp(header.data() + field.offset, expected.data() + field.offset, field.width) !=
        0) {
      return make_error(ErrorCode::kParse, "member " + quoted(name) + ": header field '" +
                                               named.name + "' is \"" + shown(header, field) +
                                               "\", the writer makes \"" + shown(expected, field) +
                                               "\"");
    }
  }
  return {};
}

// Refuses a member that is a duplicate, or that would sit under (or above) another as a
// directory when unpacked.
Result<void> check_unique(const std::set<std::string>& names, const std::string& name) {
  if (names.count(name) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "duplicate member " + quoted(name));
  }
  for (size_t slash = name.find('/'); slash != std::string::npos;
       slash = name.find('/', slash + 1)) {
    if (names.count(name.substr(0, slash)) != 0) {
      return make_error(ErrorCode::kInvalidArgument, "member " + quoted(name) + " lies under " +
                                                         quoted(name.substr(0, slash)) +
                                                         ", which is a file");
    }
  }
  const auto after = names.lower_bound(name + "/");
  if (after != names.end() && after->rfind(name + "/", 0) == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "member " + quoted(name) + " is also a directory of " + quoted(*after));
  }
  return {};
}

// What one member's header says, once it is known to be exactly what the writer makes.
struct MemberHeader {
  std::string name;
  uint64_t size = 0;
  uint64_t mtime_s = 0;
};

// Checks in the order docs/bundles.md lists the refusals: checksum, kind of header, name, numbers,
// then every remaining byte. `first_mtime_s` is the first member's, when this is not the first.
Result<MemberHeader> read_header(Block header, size_t offset, const std::set<std::string>& names,
                                 std::optional<uint64_t> first_mtime_s,
                                 const ArchiveLimits& limits) {
  MemberHeader member;
  member.name = text_field(header, kName);
  auto sum = octal_field(header, kChecksum, "checksum", offset);
  if (!sum) return sum.error();
  if (*sum != header_checksum(header)) {
    return make_error(ErrorCode::kParse, "archive header at offset " + std::to_string(offset) +
                                             " has a bad checksum (corrupt archive)");
  }
  if (auto ok = check_header_kind(header, member.name, offset); !ok) return ok.error();
  if (auto ok = check_member_name(member.name); !ok) return ok.error();
  if (auto ok = check_unique(names, member.name); !ok) return ok.error();
  if (auto ok = check_octal_only(header, member.name); !ok) return ok.error();
  auto size = octal_field(header, kSize, "size", offset);
  if (!size) return size.error();
  if (*size > limits.max_member_bytes) {
    return make_error(ErrorCode::kParse, "member " + quoted(member.name) + " declares " +
                                             std::to_string(*size) +
                                             " bytes, more than the limit of " +
                                             std::to_string(limits.max_member_bytes));
  }
  auto mtime_s = octal_field(header, kMtime, "mtime", offset);
  if (!mtime_s) return mtime_s.error();
  member.size = *size;
  member.mtime_s = first_mtime_s.value_or(*mtime_s);
  if (auto ok = check_as_written(header, member.name, member.size, member.mtime_s); !ok)
    return ok.error();
  return member;
}

}  // namespace

Result<void> check_member_name(std::string_view name) {
  if (name.empty()) return bad_name(name, "empty");
  if (name.size() > kTarNameBytes) return bad_name(name, "longer than 100 bytes");
  if (name.front() == '/') return bad_name(name, "absolute path");
  if (!std::all_of(name.begin(), name.end(), is_name_char)) {
    return bad_name(name, "only letters, digits, '.', '_', '-', '+' and '/' are allowed");
  }
  size_t start = 0;
  while (start <= name.size()) {
    const size_t end = std::min(name.find('/', start), name.size());
    const std::string_view part = name.substr(start, end - start);
    if (part.empty()) return bad_name(name, "empty path component");
    if (part == "..") return bad_name(name, "'..' component (path traversal)");
    if (part == ".") return bad_name(name, "'.' component");
    start = end + 1;
  }
  return {};
}

Result<std::vector<uint8_t>> write_archive(const std::vector<ArchiveMember>& members,
                                           int64_t mtime_s, const ArchiveLimits& limits) {
  if (members.size() > limits.max_members) {
    return make_error(ErrorCode::kInvalidArgument, "too many members (" +
                                                       std::to_string(members.size()) + " > " +
                                                       std::to_string(limits.max_members) + ")");
  }
  if (mtime_s > static_cast<int64_t>(kMaxMtime)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "modification time " + std::to_string(mtime_s) +
                          " s is past what a ustar header holds (8^11 - 1 s, in the year 2242)");
  }
  const auto mtime = static_cast<uint64_t>(std::max<int64_t>(mtime_s, 0));
  std::set<std::string> names;
  std::vector<uint8_t> out;
  for (const ArchiveMember& member : members) {
    if (auto ok = check_member_name(member.name); !ok) return ok.error();
    if (auto ok = check_unique(names, member.name); !ok) return ok.error();
    if (member.data.size() > limits.max_member_bytes) {
      return make_error(ErrorCode::kInvalidArgument,
                        "member " + quoted(member.name) + " is larger than the limit");
    }
    names.insert(member.name);
    const std::vector<uint8_t> header = make_header(member.name, member.data.size(), mtime);
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), member.data.begin(), member.data.end());
    out.resize(out.size() + padded(member.data.size()) - member.data.size(), 0);
  }
  out.resize(out.size() + 2 * kTarBlockBytes, 0);
  return out;
}

Result<std::vector<ArchiveMember>> read_archive(std::span<const uint8_t> bytes,
                                                const ArchiveLimits& limits) {
  std::vector<ArchiveMember> members;
  std::set<std::string> names;
  std::optional<uint64_t> mtime_s;  // the first member's
  size_t offset = 0;
  while (true) {
    if (bytes.size() - offset < kTarBlockBytes) {
      return make_error(ErrorCode::kParse, "truncated archive: it ends at offset " +
                                               std::to_string(bytes.size()) +
                                               " without the two zero end blocks");
    }
    const Block header = bytes.subspan(offset, kTarBlockBytes);
    if (all_zero(header)) break;
    auto member = read_header(header, offset, names, mtime_s, limits);
    if (!member) return member.error();
    const std::string& name = member->name;
    const uint64_t size = member->size;
    mtime_s = member->mtime_s;
    if (members.size() == limits.max_members) {
      return make_error(ErrorCode::kParse,
                        "archive has more than " + std::to_string(limits.max_members) + " members");
    }
    offset += kTarBlockBytes;
    if (bytes.size() - offset < padded(size)) {
      return make_error(ErrorCode::kParse, "truncated archive: member " + quoted(name) +
                                               " declares " + std::to_string(size) +
                                               " bytes but only " +
                                               std::to_string(bytes.size() - offset) + " remain");
    }
    const auto data = bytes.subspan(offset, static_cast<size_t>(size));
    // Every byte is accounted for: padding that is not zero is a changed archive.
    if (!all_zero(bytes.subspan(offset + data.size(), padded(size) - data.size()))) {
      return make_error(ErrorCode::kParse,
                        "member " + quoted(name) + " is followed by non-zero padding");
    }
    members.push_back({name, std::vector<uint8_t>(data.begin(), data.end())});
    names.insert(name);
    offset += padded(size);
  }
  offset += kTarBlockBytes;
  if (bytes.size() - offset < kTarBlockBytes || !all_zero(bytes.subspan(offset))) {
    return make_error(ErrorCode::kParse,
                      bytes.size() - offset < kTarBlockBytes
                          ? "truncated archive: the second zero end block is missing"
                          : "archive has data after its end blocks");
  }
  return members;
}

}  // namespace cyclecast::bundle
