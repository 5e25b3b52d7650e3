// run_files.h: what a retraining run writes under STATE, and its clean-up.
#include "run_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <system_error>

#include "cyclecast/pipeline/export.h"

namespace cyclecast::lifecycle {

namespace fs = std::filesystem;

Result<void> write_durably(const fs::path& path, const std::vector<uint8_t>& bytes) {
  const fs::path partial = path.string() + ".partial";
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(ErrorCode::kIo, "cannot create " + partial.string());
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  const bool ok = written == bytes.size() && ::fsync(fd) == 0;
  ::close(fd);
  std::error_code ec;
  if (!ok) {
    fs::remove(partial, ec);
    return make_error(ErrorCode::kIo, "cannot write " + partial.string());
  }
  fs::rename(partial, path, ec);
  if (ec) {
    fs::remove(partial, ec);
    return make_error(ErrorCode::kIo, "cannot rename " + partial.string() + ": " + ec.message());
  }
  const int dir = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

Result<pipeline::ExportedModel> store_model_files(const pipeline::RunOutput& run,
                                                  const std::string& version,
                                                  const fs::path& model_dir) {
  const fs::path partial = model_dir.string() + ".partial";
  std::error_code ec;
  fs::remove_all(partial, ec);
  auto exported = pipeline::export_run(run.out_dir, version);
  if (!exported) return exported.error();
  if (auto written = pipeline::write_exported_model(*exported, partial); !written) {
    return written.error();
  }
  for (const char* name : pipeline::RunFiles::kKeptWithModel) {
    fs::copy_file(run.file(name), partial / name, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return make_error(ErrorCode::kIo,
                        "cannot copy " + run.file(name).string() + ": " + ec.message());
    }
  }
  fs::remove_all(model_dir, ec);  // a leftover of a database that was replaced
  fs::rename(partial, model_dir, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "cannot rename " + partial.string() + ": " + ec.message());
  }
  return exported;
}

void remove_run_files(const fs::path& run_dir, const fs::path& model_dir,
                      const fs::path& bundle_path) {
  std::error_code ec;
  fs::remove_all(run_dir, ec);
  fs::remove_all(model_dir, ec);
  fs::remove_all(model_dir.string() + ".partial", ec);
  fs::remove(bundle_path, ec);
  fs::remove(bundle_path.string() + ".partial", ec);
}

void remove_partials(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> leftovers;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".partial") leftovers.push_back(entry.path());
  }
  for (const auto& path : leftovers)
    fs::remove_all(path, ec);
}

}  // namespace cyclecast::lifecycle
