#include "cyclecast/edge/slot_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace cyclecast::edge {

namespace {

constexpr uint32_t kRecordRegionBytes = 128;  // CC_UPDATE_RECORD_BYTES, rounded up
constexpr uint32_t kMaxSlotBytes = 16u << 20;
static_assert(CC_UPDATE_RECORD_BYTES <= kRecordRegionBytes);

Error io_error(const std::string& what, const std::string& path) {
  return make_error(ErrorCode::kIo, what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

uint64_t SlotFile::file_bytes(uint32_t slot_bytes) {
  return 2 * uint64_t{slot_bytes} + 2 * uint64_t{kRecordRegionBytes};
}

Result<std::unique_ptr<SlotFile>> SlotFile::open(const std::string& path, uint32_t slot_bytes) {
  if (slot_bytes == 0 || slot_bytes % 4 != 0 || slot_bytes > kMaxSlotBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "slot size must be a multiple of 4 bytes, 4 to 16 MiB");
  }
  const uint64_t bytes = file_bytes(slot_bytes);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("cannot open", path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return io_error("cannot stat", path);
  }
  if (st.st_size == 0) {
    // A new file is erased flash: every byte 0xFF.
    const std::vector<uint8_t> erased(bytes, 0xFF);
    if (::write(fd, erased.data(), erased.size()) != static_cast<ssize_t>(erased.size())) {
      ::close(fd);
      return io_error("cannot write", path);
    }
  } else if (static_cast<uint64_t>(st.st_size) != bytes) {
    ::close(fd);
    return make_error(ErrorCode::kInvalidArgument,
                      path + " holds " + std::to_string(st.st_size) + " bytes, slots of " +
                          std::to_string(slot_bytes) + " need " + std::to_string(bytes));
  }
  void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);  // the mapping keeps the file
  if (map == MAP_FAILED) return io_error("cannot map", path);
  return std::unique_ptr<SlotFile>(new SlotFile(static_cast<uint8_t*>(map), bytes, slot_bytes));
}

SlotFile::~SlotFile() {
  munmap(map_, bytes_);
}

uint8_t* SlotFile::region(unsigned r, uint32_t* size) {
  if (r > CC_UPDATE_REGION_RECORD_1) return nullptr;
  if (r <= CC_UPDATE_REGION_SLOT_B) {
    *size = slot_bytes_;
    return map_ + uint64_t{r} * slot_bytes_;
  }
  *size = kRecordRegionBytes;
  return map_ + 2 * uint64_t{slot_bytes_} + (r - CC_UPDATE_REGION_RECORD_0) * kRecordRegionBytes;
}

int SlotFile::erase(void* context, unsigned r) {
  uint32_t size = 0;
  uint8_t* at = static_cast<SlotFile*>(context)->region(r, &size);
  if (at == nullptr) return -1;
  std::memset(at, 0xFF, size);
  return 0;
}

int SlotFile::write(void* context, unsigned r, uint32_t offset, const void* bytes,
                    uint32_t length) {
  uint32_t size = 0;
  uint8_t* at = static_cast<SlotFile*>(context)->region(r, &size);
  if (at == nullptr || offset % 4 != 0 || offset > size || length > size - offset) return -1;
  // Flash programs only erased bytes: writing twice is a bug the virtual node must show.
  for (uint32_t i = 0; i < length; ++i)
    if (at[offset + i] != 0xFF) return -1;
  std::memcpy(at + offset, bytes, length);
  return 0;
}

const uint8_t* SlotFile::map(void* context, unsigned r) {
  uint32_t size = 0;
  return static_cast<SlotFile*>(context)->region(r, &size);
}

cc_update_storage SlotFile::storage() {
  return cc_update_storage{slot_bytes_, erase, write, map, this};
}

}  // namespace cyclecast::edge
