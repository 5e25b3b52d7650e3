#include "temp_dir.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace cyclecast::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "cyclecast-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::size_t damage_middle(const std::filesystem::path& path) {
  std::string bytes = read_file(path);
  const std::size_t end = std::min(bytes.size(), bytes.size() / 2 + 8192);
  for (std::size_t i = bytes.size() / 2; i < end; ++i)
    bytes[i] = '\x5a';
  write_file(path, bytes);
  return bytes.size();
}

}  // namespace cyclecast::testing
