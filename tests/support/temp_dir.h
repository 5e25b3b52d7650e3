// A fresh directory under the system temp dir for one test, removed with its contents after.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace cyclecast::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Writes `text` to `path` byte for byte (no newline translation).
void write_file(const std::filesystem::path& path, const std::string& text);
std::string read_file(const std::filesystem::path& path);
// Overwrites 8 KiB in the middle of the file with a fixed byte: damaged pages for a database
// test. Returns the file's size before.
std::size_t damage_middle(const std::filesystem::path& path);

}  // namespace cyclecast::testing
