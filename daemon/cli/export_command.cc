// `cyclecast export`: turns a training run's int8 student into the node's sources and blob
// (model_data.h, model_data.c, model.bin; pipeline/export.h, docs/firmware.md).
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "cyclecast/pipeline/export.h"

namespace cyclecast::cli {
namespace {

struct ExportArgs {
  std::string run_dir;
  std::string out_dir;
  std::string version;
};

// A version that names the run when none is given: "<run directory name>", trimmed to what the
// node protocol allows.
std::string default_version(const std::string& run_dir) {
  std::string name = std::filesystem::path(run_dir).lexically_normal().filename().string();
  if (name.empty()) name = std::filesystem::path(run_dir).parent_path().filename().string();
  std::string out;
  for (const char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    out += ok ? c : '_';
  }
  if (out.size() > pipeline::kMaxModelVersionLength) out.resize(pipeline::kMaxModelVersionLength);
  return out.empty() ? "model" : out;
}

int run_export(const ExportArgs& args) {
  const std::string version = args.version.empty() ? default_version(args.run_dir) : args.version;
  auto exported = pipeline::export_run(args.run_dir, version);
  if (!exported) {
    std::cerr << "cyclecast export: " << exported.error().message << '\n';
    const ErrorCode code = exported.error().code;
    return code == ErrorCode::kIo ? kExitFailure : kExitBadInput;
  }
  if (auto written = pipeline::write_exported_model(*exported, args.out_dir); !written) {
    std::cerr << "cyclecast export: " << written.error().message << '\n';
    return kExitFailure;
  }
  std::cout << "model " << exported->version << " sha256 " << exported->sha256_hex << " ("
            << exported->blob.size() << " bytes) -> " << args.out_dir << '\n';
  return kExitOk;
}

}  // namespace

void add_export_command(CLI::App& app, GlobalOptions& global) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* command = app.add_subcommand(
      "export", "Export a training run's int8 student for the node: model_data.h/.c, model.bin");
  command->add_option("--run", args->run_dir, "training run directory (cyclecast train --out)")
      ->required();
  command->add_option("--out", args->out_dir, "output directory (created if missing)")->required();
  command->add_option("--version", args->version,
                      "model version, 1-32 chars of [A-Za-z0-9_.-] (default: the run's name)");
  command->callback([args, &global] { global.exit_code = run_export(*args); });
}

}  // namespace cyclecast::cli
