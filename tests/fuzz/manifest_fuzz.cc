// libFuzzer target for the bytes a bundle brings from outside: the manifest parser and the
// archive reader, then verify_bundle on the same bytes (with a fixed key), which drives both
// through the bundle's own checks. Properties beyond "no crash": whatever parses writes back to
// text that parses to the same manifest, and whatever reads as an archive is exactly what the
// writer makes of the members read (the reader accepts nothing else, docs/bundles.md).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "cyclecast/lifecycle/archive.h"
#include "cyclecast/lifecycle/bundle.h"
#include "cyclecast/lifecycle/manifest.h"

namespace {

using namespace cyclecast::bundle;

void check_manifest(std::string_view text) {
  auto manifest = parse_manifest(text);
  if (!manifest) return;
  const std::string written = manifest_json(*manifest);
  auto again = parse_manifest(written);
  if (!again || manifest_json(*again) != written) std::abort();
}

void check_archive(std::span<const uint8_t> bytes) {
  ArchiveLimits limits;
  limits.max_members = 64;
  limits.max_member_bytes = 1 << 20;
  auto members = read_archive(bytes, limits);
  if (!members) return;
  long long mtime_s = 0;  // every member has the first one's: 11 octal digits at offset 136
  if (!members->empty()) {
    const std::string digits(reinterpret_cast<const char*>(bytes.data()) + 136, 11);
    mtime_s = std::strtoll(digits.c_str(), nullptr, 8);
  }
  auto written = write_archive(*members, mtime_s, limits);
  if (!written) std::abort();  // what the reader accepts, the writer must be able to write
  // The same bytes, but for the zero records tar pads an archive with.
  if (written->size() > bytes.size() ||
      !std::equal(written->begin(), written->end(), bytes.begin()) ||
      !std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(written->size()), bytes.end(),
                   [](uint8_t b) { return b == 0; })) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  check_manifest(std::string_view(reinterpret_cast<const char*>(data), size));
  check_archive(bytes);
  static const PublicKey key{};  // all zeros: no signature verifies, every check before it runs
  (void)verify_bundle(bytes, key);
  (void)read_bundle_unverified(bytes);
  return 0;
}
