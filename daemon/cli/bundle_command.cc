// `cyclecast bundle build|verify|inspect` and `cyclecast bundle key export`: signed firmware
// bundles (docs/bundles.md). The work is in lifecycle/ (namespace cyclecast::bundle); this file
// maps flags to calls, reads and writes files, and prints.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "commands.h"
#include "cyclecast/lifecycle/bundle.h"

namespace cyclecast::cli {
namespace {

namespace fs = std::filesystem;

constexpr uintmax_t kMaxBundleBytes = uintmax_t{512} << 20;

struct BundleFlags {
  std::string state_dir = "/var/lib/cyclecast";
  std::string run_dir;
  std::string version;
  std::string out;
  std::string data;
  std::string footprint;
  bool measure = false;
  std::string created_at;
  bool force = false;
  std::string public_key;
  std::string bundle;
  std::string extract_dir;
  bool json_output = false;
  std::string key_format = "hex";
};

int fail(const std::string& command, const Error& error) {
  std::cerr << "cyclecast bundle " << command << ": " << error.message << '\n';
  const bool refused = error.code != ErrorCode::kIo && error.code != ErrorCode::kNotFound;
  return refused ? kExitBadInput : kExitFailure;
}

Result<std::vector<uint8_t>> read_file_bytes(const std::string& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return make_error(ErrorCode::kNotFound, "cannot read " + path + ": " + ec.message());
  if (size > kMaxBundleBytes) {
    return make_error(ErrorCode::kInvalidArgument, path + " is larger than 512 MiB");
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!in || in.gcount() != static_cast<std::streamsize>(bytes.size())) {
    return make_error(ErrorCode::kIo, "cannot read " + path);
  }
  return bytes;
}

// Writes through path + ".tmp" and a rename, so a reader never sees half a file.
Result<void> write_file_atomically(const std::string& path, std::span<const uint8_t> bytes) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) return make_error(ErrorCode::kIo, "cannot write " + temporary);
  }
  std::error_code ec;
  fs::rename(temporary, path, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot rename " + temporary + ": " + ec.message());
  return {};
}

Result<bundle::PublicKey> read_public_key(const std::string& path) {
  auto bytes = read_file_bytes(path);
  if (!bytes) return bytes.error();
  auto key = bundle::parse_public_key(std::string(bytes->begin(), bytes->end()));
  if (!key) return make_error(key.error().code, path + ": " + key.error().message);
  return key;
}

int run_build(const BundleFlags& flags) {
  if (!flags.force && fs::exists(flags.out)) {
    std::cerr << "cyclecast bundle build: " << flags.out << " exists (--force to replace it)\n";
    return kExitFailure;
  }
  bundle::RunBundleOptions options;
  options.run_dir = flags.run_dir;
  options.model_version = flags.version;
  options.created_at = flags.created_at;
  if (!flags.data.empty()) options.data_path = flags.data;
  if (!flags.footprint.empty()) options.footprint_path = flags.footprint;
  if (flags.measure) options.measure_with = bundle::TargetTools{};
  auto contents = bundle::collect_run(options);
  if (!contents) return fail("build", contents.error());
  auto key = bundle::load_or_create_signing_key(flags.state_dir);
  if (!key) return fail("build", key.error());
  const size_t file_count = contents->files.size();
  auto bytes = bundle::build_bundle(std::move(*contents), *key);
  if (!bytes) return fail("build", bytes.error());
  if (auto written = write_file_atomically(flags.out, *bytes); !written) {
    return fail("build", written.error());
  }
  std::cout << "wrote " << flags.out << ": model " << flags.version << ", " << file_count
            << " files + manifest, " << bytes->size() << " bytes, signed by key "
            << bundle::key_id(key->public_key) << '\n';
  return kExitOk;
}

// Writes a verified bundle's files under `dir` (created; refused if it holds anything), so
// that what is flashed or loaded is exactly what was signed. Member names were checked when the
// archive was read (relative, no '..').
Result<void> extract_files(const std::vector<bundle::BundleFile>& files, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    return make_error(ErrorCode::kConflict, dir + " is not empty: extract into a new directory");
  }
  for (const auto& file : files) {
    const fs::path path = fs::path(dir) / file.name;
    fs::create_directories(path.parent_path(), ec);
    if (ec) return make_error(ErrorCode::kIo, "cannot create " + path.parent_path().string());
    if (auto written = write_file_atomically(path.string(), file.data); !written) return written;
  }
  return {};
}

int run_verify(const BundleFlags& flags) {
  auto key = read_public_key(flags.public_key);
  if (!key) return fail("verify", key.error());
  auto bytes = read_file_bytes(flags.bundle);
  if (!bytes) return fail("verify", bytes.error());
  auto verified = bundle::verify_bundle(*bytes, *key);
  if (!verified) return fail("verify", verified.error());
  std::cout << "ok: " << flags.bundle << " is model " << verified->manifest.model_version << ", "
            << verified->files.size() << " files intact, signed by key " << bundle::key_id(*key)
            << '\n';
  if (flags.extract_dir.empty()) return kExitOk;
  if (auto extracted = extract_files(verified->files, flags.extract_dir); !extracted) {
    return fail("verify", extracted.error());
  }
  std::cout << "extracted " << verified->files.size() << " files into " << flags.extract_dir
            << '\n';
  return kExitOk;
}

std::string figure(const std::optional<double>& value, int precision) {
  if (!value) return "n/a";
  std::ostringstream out;
  out << std::fixed << std::setprecision(precision) << *value;
  return out.str();
}
std::string figure(const std::optional<int64_t>& value) {
  return value ? std::to_string(*value) : std::string("n/a");
}

void print_manifest(const bundle::Manifest& m) {
  const auto& h = m.heldout;
  const auto& f = m.footprint;
  std::cout << "model version:   " << m.model_version << '\n'
            << "created:         " << m.created_at << '\n'
            << "bundle format:   " << m.format_version << ", runtime ABI " << m.runtime_abi_version
            << '\n'
            << "signing key:     " << m.signing_key_id << " (not checked: use verify)\n"
            << "training run:    " << m.training_run.run_id << " (" << m.training_run.protocol
            << "), student " << m.training_run.candidate << '\n'
            << "data:            " << m.data_snapshot.source << ", "
            << m.data_snapshot.digest.value_or("no digest") << " (" << m.data_snapshot.digest_of
            << ")\n"
            << "window/horizon:  " << m.window << " / " << m.horizon << " cycles\n"
            << "held-out (int8): MAE " << figure(h.mae, 5) << ", at +10 " << figure(h.mae_10, 5)
            << ", at +" << m.horizon << ' ' << figure(h.mae_100, 5) << ", RMSE "
            << figure(h.rmse, 5) << ", EOL error " << figure(h.eol_error_cycles, 1) << " cycles, "
            << h.windows << " windows\n"
            << "footprint (" << f.kind << "): flash " << figure(f.flash_bytes) << " B, RAM "
            << figure(f.ram_bytes) << " B, stack " << figure(f.stack_bytes) << " B, instructions "
            << figure(f.instructions) << ", cycles " << figure(f.cycles) << "\n"
            << "                 " << f.method << '\n'
            << "files:\n";
  for (const bundle::FileEntry& file : m.files) {
    std::cout << "  " << std::setw(9) << file.size << "  " << file.sha256.substr(0, 16) << "  "
              << file.path << '\n';
  }
}

int run_inspect(const BundleFlags& flags) {
  auto bytes = read_file_bytes(flags.bundle);
  if (!bytes) return fail("inspect", bytes.error());
  auto read = bundle::read_bundle_unverified(*bytes);
  if (!read) return fail("inspect", read.error());
  if (flags.json_output) {
    std::cout << read->manifest_text;
  } else {
    print_manifest(read->manifest);
  }
  return kExitOk;
}

int run_key_export(const BundleFlags& flags) {
  auto key = bundle::load_or_create_signing_key(flags.state_dir);
  if (!key) return fail("key export", key.error());
  const std::string text = (flags.key_format == "base64" ? bundle::to_base64(key->public_key)
                                                         : bundle::to_hex(key->public_key)) +
                           "\n";
  if (flags.out.empty()) {
    std::cout << text;
    return kExitOk;
  }
  const std::vector<uint8_t> bytes(text.begin(), text.end());
  if (auto written = write_file_atomically(flags.out, bytes); !written) {
    return fail("key export", written.error());
  }
  std::cerr << "wrote public key " << bundle::key_id(key->public_key) << " to " << flags.out
            << '\n';
  return kExitOk;
}

void add_state_dir(CLI::App& command, BundleFlags& flags) {
  command
      .add_option("--state-dir", flags.state_dir,
                  "state directory holding keys/bundle-signing.key (created on first use)")
      ->capture_default_str();
}

}  // namespace

void add_bundle_commands(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<BundleFlags>();
  CLI::App* group = app.add_subcommand("bundle", "signed firmware bundles (docs/bundles.md)");
  group->require_subcommand(1);

  CLI::App* build = group->add_subcommand("build", "bundle a training run's chosen student");
  build->add_option("--run", flags->run_dir, "training run directory (cyclecast train --out)")
      ->required();
  build->add_option("--version", flags->version, "model version (1-32 of [A-Za-z0-9._-])")
      ->required();
  build->add_option("--out", flags->out, "bundle file to write")->required();
  build->add_option("--data", flags->data, "data the run trained on (file or folder) to digest");
  auto* footprint =
      build->add_option("--footprint", flags->footprint, "JSON file of measured footprint figures");
  build
      ->add_flag("--measure", flags->measure,
                 "measure the footprint: cross-build the node with the model "
                 "(arm-none-eabi-gcc) and run it under qemu-system-arm")
      ->excludes(footprint);
  build->add_option("--created-at", flags->created_at, "creation time (ISO 8601 UTC; default now)");
  build->add_flag("--force", flags->force, "replace an existing bundle file");
  add_state_dir(*build, *flags);
  build->callback([flags, &global] { global.exit_code = run_build(*flags); });

  CLI::App* verify = group->add_subcommand("verify", "check a bundle's signature and files");
  verify->add_option("--public-key", flags->public_key, "public key file (bundle key export)")
      ->required();
  verify->add_option("bundle", flags->bundle, "bundle file")->required();
  verify->add_option("--extract", flags->extract_dir,
                     "once verified, write its files (model/model.bin, ...) into this new "
                     "directory");
  verify->callback([flags, &global] { global.exit_code = run_verify(*flags); });

  CLI::App* inspect = group->add_subcommand("inspect", "print a bundle's manifest (unverified)");
  inspect->add_option("bundle", flags->bundle, "bundle file")->required();
  inspect->add_flag("--json", flags->json_output, "print manifest.json as signed");
  inspect->callback([flags, &global] { global.exit_code = run_inspect(*flags); });

  CLI::App* key = group->add_subcommand("key", "the bundle signing key");
  key->require_subcommand(1);
  CLI::App* key_export = key->add_subcommand("export", "print or write the public key");
  key_export->add_option("--format", flags->key_format, "hex (64 digits) or base64 (44 chars)")
      ->check(CLI::IsMember({"hex", "base64"}))
      ->capture_default_str();
  key_export->add_option("--out", flags->out, "write the key to this file instead of stdout");
  add_state_dir(*key_export, *flags);
  key_export->callback([flags, &global] { global.exit_code = run_key_export(*flags); });
}

}  // namespace cyclecast::cli
