#include "faulty_vfs.h"

#include <sqlite3.h>

#include <stdexcept>

namespace cyclecast::testing {
namespace {

// Our file handle: SQLite allocates szOsFile bytes; the default VFS's own handle follows ours.
struct FaultyFile {
  sqlite3_file base;
  sqlite3_file* real;
};

sqlite3_vfs* g_real = nullptr;
sqlite3_vfs g_vfs;
sqlite3_io_methods g_methods;

sqlite3_file* real(sqlite3_file* file) {
  return reinterpret_cast<FaultyFile*>(file)->real;
}

bool refuse() {
  FaultyVfs& vfs = FaultyVfs::instance();
  if (!vfs.failing()) return false;
  vfs.count_failure();
  return true;
}

int close_file(sqlite3_file* f) {
  return real(f)->pMethods->xClose(real(f));
}
int read_file(sqlite3_file* f, void* out, int n, sqlite3_int64 offset) {
  return real(f)->pMethods->xRead(real(f), out, n, offset);
}
int write_file(sqlite3_file* f, const void* data, int n, sqlite3_int64 offset) {
  if (refuse()) return SQLITE_IOERR_WRITE;
  return real(f)->pMethods->xWrite(real(f), data, n, offset);
}
int truncate_file(sqlite3_file* f, sqlite3_int64 size) {
  if (refuse()) return SQLITE_IOERR_TRUNCATE;
  return real(f)->pMethods->xTruncate(real(f), size);
}
int sync_file(sqlite3_file* f, int flags) {
  if (refuse()) return SQLITE_IOERR_FSYNC;
  return real(f)->pMethods->xSync(real(f), flags);
}
int file_size(sqlite3_file* f, sqlite3_int64* size) {
  return real(f)->pMethods->xFileSize(real(f), size);
}
int lock(sqlite3_file* f, int level) {
  return real(f)->pMethods->xLock(real(f), level);
}
int unlock(sqlite3_file* f, int level) {
  return real(f)->pMethods->xUnlock(real(f), level);
}
int check_reserved_lock(sqlite3_file* f, int* out) {
  return real(f)->pMethods->xCheckReservedLock(real(f), out);
}
int file_control(sqlite3_file* f, int op, void* arg) {
  return real(f)->pMethods->xFileControl(real(f), op, arg);
}
int sector_size(sqlite3_file* f) {
  return real(f)->pMethods->xSectorSize(real(f));
}
int device_characteristics(sqlite3_file* f) {
  return real(f)->pMethods->xDeviceCharacteristics(real(f));
}
int shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return real(f)->pMethods->xShmMap(real(f), region, size, extend, out);
}
int shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}
void shm_barrier(sqlite3_file* f) {
  real(f)->pMethods->xShmBarrier(real(f));
}
int shm_unmap(sqlite3_file* f, int delete_flag) {
  return real(f)->pMethods->xShmUnmap(real(f), delete_flag);
}

int open_file(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  auto* ours = reinterpret_cast<FaultyFile*>(file);
  ours->real = reinterpret_cast<sqlite3_file*>(ours + 1);
  const int rc = g_real->xOpen(g_real, name, ours->real, flags, out_flags);
  // SQLite calls xClose only when pMethods is set, so a failed open leaves it null.
  ours->base.pMethods = ours->real->pMethods != nullptr ? &g_methods : nullptr;
  return rc;
}

int delete_file(sqlite3_vfs*, const char* name, int sync_dir) {
  return g_real->xDelete(g_real, name, sync_dir);
}
int access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_real->xAccess(g_real, name, flags, out);
}
int full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_real->xFullPathname(g_real, name, n, out);
}
int randomness(sqlite3_vfs*, int n, char* out) {
  return g_real->xRandomness(g_real, n, out);
}
int sleep_for(sqlite3_vfs*, int microseconds) {
  return g_real->xSleep(g_real, microseconds);
}
int current_time(sqlite3_vfs*, double* out) {
  return g_real->xCurrentTime(g_real, out);
}
int last_error(sqlite3_vfs*, int n, char* out) {
  return g_real->xGetLastError(g_real, n, out);
}
int current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return g_real->xCurrentTimeInt64(g_real, out);
}

}  // namespace

FaultyVfs::FaultyVfs() {
  g_real = sqlite3_vfs_find(nullptr);
  if (g_real == nullptr) throw std::runtime_error("no default SQLite VFS");
  g_methods = sqlite3_io_methods{};
  g_methods.iVersion = 2;  // up to the shared-memory methods that WAL needs
  g_methods.xClose = close_file;
  g_methods.xRead = read_file;
  g_methods.xWrite = write_file;
  g_methods.xTruncate = truncate_file;
  g_methods.xSync = sync_file;
  g_methods.xFileSize = file_size;
  g_methods.xLock = lock;
  g_methods.xUnlock = unlock;
  g_methods.xCheckReservedLock = check_reserved_lock;
  g_methods.xFileControl = file_control;
  g_methods.xSectorSize = sector_size;
  g_methods.xDeviceCharacteristics = device_characteristics;
  g_methods.xShmMap = shm_map;
  g_methods.xShmLock = shm_lock;
  g_methods.xShmBarrier = shm_barrier;
  g_methods.xShmUnmap = shm_unmap;

  g_vfs = sqlite3_vfs{};
  g_vfs.iVersion = 2;
  g_vfs.szOsFile = static_cast<int>(sizeof(FaultyFile)) + g_real->szOsFile;
  g_vfs.mxPathname = g_real->mxPathname;
  g_vfs.zName = kName;
  g_vfs.xOpen = open_file;
  g_vfs.xDelete = delete_file;
  g_vfs.xAccess = access;
  g_vfs.xFullPathname = full_pathname;
  g_vfs.xRandomness = randomness;
  g_vfs.xSleep = sleep_for;
  g_vfs.xCurrentTime = current_time;
  g_vfs.xGetLastError = last_error;
  g_vfs.xCurrentTimeInt64 = current_time_int64;
  if (sqlite3_vfs_register(&g_vfs, 0) != SQLITE_OK) {
    throw std::runtime_error("registering the faulty SQLite VFS failed");
  }
}

FaultyVfs& FaultyVfs::instance() {
  static FaultyVfs vfs;
  return vfs;
}

}  // namespace cyclecast::testing
