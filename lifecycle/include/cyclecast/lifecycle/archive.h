// The bundle container: a strict subset of POSIX ustar (IEEE Std 1003.1-2001, "pax" interchange
// format without extended headers), so that `tar -tvf` lists a bundle and `tar -xf` unpacks it,
// while our reader accepts only what our writer makes (docs/bundles.md, "Container").
//
// Accepted: exactly the headers write_archive makes. Each 512-byte ustar header must be, byte for
// byte, the one the writer makes for its name, size and the first member's mtime: magic "ustar\0",
// version "00", typeflag '0', mode 0644, uid/gid 0, empty uname/gname/linkname/prefix/devices,
// every number in zero-padded octal (no base-256), the checksum as six digits, NUL, space. Names
// checked by check_member_name(), data padded with zeros to 512 bytes, then two zero blocks and
// at most zero padding after them. Refused, each with an Error naming the member or offset (and
// the header field): anything else in a header (other member types, pax/GNU extension headers,
// a setuid or writable mode, an owner), a bad checksum, an unsafe or duplicate name, a member
// larger than the limit, too many members, a truncated archive, and non-zero bytes after the end
// blocks. The fields and the messages: docs/bundles.md, "Container".
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cyclecast/result.h"

namespace cyclecast::bundle {

inline constexpr size_t kTarBlockBytes = 512;
inline constexpr size_t kTarNameBytes = 100;  // the ustar name field; longer names are refused

struct ArchiveMember {
  std::string name;  // relative path, '/'-separated (check_member_name)
  std::vector<uint8_t> data;
};

struct ArchiveLimits {
  size_t max_members = 1024;
  uint64_t max_member_bytes = uint64_t{64} << 20;  // 64 MiB: far above any model or report
};

// A safe relative member name: 1 to 100 bytes of [A-Za-z0-9._+-] and '/', no leading or
// trailing '/', no empty, "." or ".." component. kInvalidArgument saying what is wrong.
Result<void> check_member_name(std::string_view name);

// Writes members in the given order with mode 0644, uid/gid 0 and modification time mtime_s
// (seconds since 1970; negative is written as 0), so the same inputs give the same bytes.
// kInvalidArgument for a bad or duplicate name, a member over the limit, or an mtime past
// 8^11 - 1 (the largest 11 octal digits hold).
Result<std::vector<uint8_t>> write_archive(const std::vector<ArchiveMember>& members,
                                           int64_t mtime_s, const ArchiveLimits& limits = {});

// Reads what write_archive wrote, refusing anything else as described above (kParse for malformed
// or truncated bytes, kInvalidArgument for unsafe names, kUnsupported for other member types).
Result<std::vector<ArchiveMember>> read_archive(std::span<const uint8_t> bytes,
                                                const ArchiveLimits& limits = {});

}  // namespace cyclecast::bundle
