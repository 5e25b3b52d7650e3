// Raw edits of ustar headers for tests that need archives our writer refuses to make.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cyclecast/lifecycle/archive.h"

namespace cyclecast::bundle::testing {

// Rewrites the header checksum (offset 148, 8 bytes) after a header field was changed.
inline void fix_checksum(std::vector<uint8_t>& archive, size_t header_offset) {
  uint64_t sum = 0;
  for (size_t i = 0; i < kTarBlockBytes; ++i) {
    const bool in_field = i >= 148 && i < 156;
    sum += in_field ? uint64_t{' '} : archive[header_offset + i];
  }
  std::snprintf(reinterpret_cast<char*>(&archive[header_offset + 148]), 8, "%06o",
                static_cast<unsigned>(sum));
  archive[header_offset + 155] = ' ';
}

// Overwrites `bytes.size()` bytes at `field_offset` of the header at `header_offset`, then fixes
// the checksum.
inline void set_field(std::vector<uint8_t>& archive, size_t header_offset, size_t field_offset,
                      const std::string& bytes) {
  std::memcpy(&archive[header_offset + field_offset], bytes.data(), bytes.size());
  fix_checksum(archive, header_offset);
}

inline void set_name(std::vector<uint8_t>& archive, size_t header_offset, const std::string& name) {
  std::memset(&archive[header_offset], 0, kTarNameBytes);
  std::memcpy(&archive[header_offset], name.data(), std::min(name.size(), kTarNameBytes));
  fix_checksum(archive, header_offset);
}

// `archive` with one more member (header and data, any name or type byte) before its end blocks.
inline std::vector<uint8_t> with_raw_member(std::vector<uint8_t> archive, const std::string& name,
                                            char type, const std::string& data) {
  auto one = write_archive({{"placeholder", std::vector<uint8_t>(data.begin(), data.end())}}, 0);
  if (!one) return {};
  const std::vector<uint8_t>& made = *one;
  std::vector<uint8_t> member(made.begin(), made.end() - 2 * kTarBlockBytes);
  uint8_t* header = member.data();
  if (header == nullptr) return {};
  header[156] = static_cast<uint8_t>(type);
  set_name(member, 0, name);
  // The end blocks are the last 1024 bytes of what write_archive makes.
  archive.insert(archive.end() - 2 * kTarBlockBytes, member.begin(), member.end());
  return archive;
}

}  // namespace cyclecast::bundle::testing
