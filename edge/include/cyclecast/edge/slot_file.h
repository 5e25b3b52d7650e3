// The virtual node's non-volatile memory: the two model slots and the active-slot record of the
// model update (firmware/node/cc_update.h) in one file, mapped into memory with flash semantics
// (erase to 0xFF, write only into erased bytes). Writes land in the file as they happen, so a
// killed `cyclecast-node` leaves exactly what a Nano losing power would.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cc_update.h"
#include "cyclecast/result.h"

namespace cyclecast::edge {

class SlotFile {
 public:
  // Opens or creates `path` (created erased) for slots of `slot_bytes` each. kInvalidArgument
  // when slot_bytes is 0, not a multiple of 4 or above 16 MiB, or the file exists with another
  // size; kIo when it cannot be created or mapped.
  static Result<std::unique_ptr<SlotFile>> open(const std::string& path, uint32_t slot_bytes);
  ~SlotFile();
  SlotFile(const SlotFile&) = delete;
  SlotFile& operator=(const SlotFile&) = delete;

  // The hooks cc_update_init takes; valid while this object lives.
  cc_update_storage storage();

  // Bytes of the file for slots of `slot_bytes`: two slots and two 128-byte record copies.
  static uint64_t file_bytes(uint32_t slot_bytes);

 private:
  SlotFile(uint8_t* map, uint64_t bytes, uint32_t slot_bytes)
      : map_(map), bytes_(bytes), slot_bytes_(slot_bytes) {}
  uint8_t* region(unsigned r, uint32_t* size);
  static int erase(void* context, unsigned region);
  static int write(void* context, unsigned region, uint32_t offset, const void* bytes,
                   uint32_t length);
  static const uint8_t* map(void* context, unsigned region);

  uint8_t* map_;
  uint64_t bytes_;
  uint32_t slot_bytes_;
};

}  // namespace cyclecast::edge
