// libFuzzer target for the bytes a bundle brings from outside: the manifest parser and the
// archive reader, then verify_bundle on the same bytes (with a fixed key), which drives both
// through the bundle's own checks. Properties beyond "no crash": whatever parses writes back to
// text that parses to the same manifest, and whatever reads as an archive writes back to an
// archive that reads to the same members.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
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
  auto written = write_archive(*members, 0, limits);
  if (!written) std::abort();  // what the reader accepts, the writer must be able to write
  auto again = read_archive(*written, limits);
  if (!again || again->size() != members->size()) std::abort();
  for (size_t i = 0; i < members->size(); ++i) {
    if ((*again)[i].name != (*members)[i].name || (*again)[i].data != (*members)[i].data)
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
