#include "cyclecast/lifecycle/bundle.h"

#include <cstdio>
#include <ctime>
#include <map>
#include <string_view>

namespace cyclecast::bundle {
namespace {

std::span<const uint8_t> bytes_of(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// Seconds since 1970 of "YYYY-MM-DDTHH:MM:SSZ".
Result<int64_t> epoch_seconds(const std::string& iso) {
  std::tm tm{};
  char zulu = 0;
  int used = 0;
  if (std::sscanf(iso.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &zulu, &used) != 7 ||
      zulu != 'Z' || static_cast<size_t>(used) != iso.size()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "creation time '" + iso + "' is not of the form 2026-11-30T17:00:00Z");
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm));
}

Error corrupt(const std::string& message) {
  return make_error(ErrorCode::kCorrupt, message);
}

// The signature check, telling a wrong key (the manifest names another signer) from a bad
// signature (the manifest or the signature changed after signing).
Result<void> check_signature(std::string_view manifest_text, const std::vector<uint8_t>& signature,
                             const PublicKey& key) {
  if (signature.size() != kSignatureBytes) {
    return corrupt("bad signature: manifest.sig holds " + std::to_string(signature.size()) +
                   " bytes; an Ed25519 signature is 64");
  }
  if (verify_signature(bytes_of(manifest_text), signature, key)) return {};
  const std::optional<std::string> signer = peek_signing_key_id(manifest_text);
  if (signer && *signer != key_id(key)) {
    return corrupt("wrong key: the bundle was signed by key " + *signer +
                   ", the public key given is " + key_id(key));
  }
  return corrupt("bad signature: manifest.sig does not verify over manifest.json with key " +
                 key_id(key) + " (the manifest or its signature was changed after signing)");
}

// Every listed file present with its size and digest; no member unlisted.
Result<void> check_files(const Manifest& manifest, const std::vector<ArchiveMember>& members) {
  std::map<std::string, const ArchiveMember*> by_name;
  for (const ArchiveMember& m : members)
    by_name[m.name] = &m;
  for (const FileEntry& entry : manifest.files) {
    const auto it = by_name.find(entry.path);
    if (it == by_name.end()) {
      return corrupt("missing file '" + entry.path + "': listed in the manifest, absent from the " +
                     "bundle");
    }
    const std::vector<uint8_t>& data = it->second->data;
    const std::string digest = sha256_hex(data);
    if (data.size() != entry.size || digest != entry.sha256) {
      return corrupt("changed file '" + entry.path + "': " + std::to_string(data.size()) +
                     " bytes with SHA-256 " + digest + ", the manifest says " +
                     std::to_string(entry.size) + " bytes with SHA-256 " + entry.sha256);
    }
    by_name.erase(it);
  }
  by_name.erase(kManifestName);
  by_name.erase(kSignatureName);
  if (!by_name.empty()) {
    return corrupt("extra file '" + by_name.begin()->first + "': in the bundle but not listed " +
                   "in the manifest");
  }
  return {};
}

struct Unpacked {
  std::vector<ArchiveMember> members;
  std::string manifest_text;
  std::vector<uint8_t> signature;
};

Result<Unpacked> unpack(std::span<const uint8_t> bytes) {
  auto members = read_archive(bytes);
  if (!members) return members.error();
  Unpacked out;
  bool have_manifest = false;
  bool have_signature = false;
  for (const ArchiveMember& m : *members) {
    if (m.name == kManifestName) {
      out.manifest_text.assign(m.data.begin(), m.data.end());
      have_manifest = true;
    } else if (m.name == kSignatureName) {
      out.signature = m.data;
      have_signature = true;
    }
  }
  if (!have_manifest) return corrupt("missing file 'manifest.json': not a cyclecast bundle");
  if (!have_signature) return corrupt("missing file 'manifest.sig': the bundle is not signed");
  out.members = std::move(*members);
  return out;
}

std::vector<BundleFile> without_manifest(std::vector<ArchiveMember> members) {
  std::erase_if(members, [](const ArchiveMember& m) {
    return m.name == kManifestName || m.name == kSignatureName;
  });
  return members;
}

}  // namespace

Result<std::vector<uint8_t>> build_bundle(BundleContents contents, const SigningKey& key) {
  Manifest& manifest = contents.manifest;
  if (auto ok = check_model_version(manifest.model_version); !ok) return ok.error();
  auto mtime = epoch_seconds(manifest.created_at);
  if (!mtime) return mtime.error();
  manifest.format_version = kBundleFormatVersion;
  manifest.signing_key_id = key_id(key.public_key);
  manifest.files.clear();
  for (const BundleFile& file : contents.files) {
    if (file.name == kManifestName || file.name == kSignatureName) {
      return make_error(ErrorCode::kInvalidArgument,
                        "'" + file.name + "' is reserved for the bundle's own manifest");
    }
    manifest.files.push_back({file.name, sha256_hex(file.data), file.data.size()});
  }
  const std::string text = manifest_json(manifest);
  const Signature signature = sign(bytes_of(text), key);
  std::vector<ArchiveMember> members;
  members.reserve(contents.files.size() + 2);
  members.push_back({kManifestName, std::vector<uint8_t>(text.begin(), text.end())});
  members.push_back({kSignatureName, std::vector<uint8_t>(signature.begin(), signature.end())});
  for (BundleFile& file : contents.files)
    members.push_back(std::move(file));
  return write_archive(members, *mtime);
}

Result<VerifiedBundle> verify_bundle(std::span<const uint8_t> bytes, const PublicKey& key) {
  auto unpacked = unpack(bytes);
  if (!unpacked) return unpacked.error();
  if (auto ok = check_signature(unpacked->manifest_text, unpacked->signature, key); !ok) {
    return ok.error();
  }
  auto manifest = parse_manifest(unpacked->manifest_text);
  if (!manifest) return manifest.error();
  if (manifest->signing_key_id != key_id(key)) {
    return corrupt("wrong key: the manifest names signing key " + manifest->signing_key_id +
                   " but was signed by key " + key_id(key));
  }
  if (auto ok = check_files(*manifest, unpacked->members); !ok) return ok.error();
  return VerifiedBundle{std::move(*manifest), std::move(unpacked->manifest_text),
                        without_manifest(std::move(unpacked->members))};
}

Result<VerifiedBundle> read_bundle_unverified(std::span<const uint8_t> bytes) {
  auto unpacked = unpack(bytes);
  if (!unpacked) return unpacked.error();
  auto manifest = parse_manifest(unpacked->manifest_text);
  if (!manifest) return manifest.error();
  return VerifiedBundle{std::move(*manifest), std::move(unpacked->manifest_text),
                        without_manifest(std::move(unpacked->members))};
}

}  // namespace cyclecast::bundle
