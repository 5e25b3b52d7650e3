// Who holds the API server's connection slots, so that slow or idle clients cannot lock others
// out (docs/api.md, "Limits"). Private to the server.
//
// A connection is either waiting (for its request header, between keep-alive requests, or still
// sending the body of a request that carried no valid token) or busy (its request is complete or
// authenticated: being read, answered or written). A waiting connection can be shed: when a new
// connection finds its address holding `max_per_address` slots, it takes the slot of that
// address's connection that has waited longest; when it finds all `max_total` slots held, it takes
// the slot of the connection that has waited longest of all. Busy connections keep their slots;
// only when the slots it could take are all busy is a new connection refused (503).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace cyclecast::http {

class ConnectionTable {
 public:
  using Id = std::uint64_t;

  struct Admission {
    std::optional<Id> id;        // empty: no slot could be had; answer 503
    std::function<void()> shed;  // set: the connection that gave up its slot; call it to close it
  };

  // Both limits at least 1.
  ConnectionTable(std::size_t max_total, std::size_t max_per_address);

  // Registers a new connection from `address` (an IP literal), waiting from now. `shed` closes it
  // when a later connection takes its slot; the table hands it out once, through an Admission,
  // for the caller to call after admit() returns. Thread-safe, as are the calls below.
  Admission admit(const std::string& address, std::function<void()> shed);
  // Waiting (may be shed; its wait counts from now) or busy. Nothing for an id that was shed.
  void set_waiting(Id id, bool waiting);
  // The connection ended. Nothing for an id that was shed.
  void remove(Id id);

  std::size_t size() const;
  std::size_t max_total() const { return max_total_; }

 private:
  struct Entry {
    std::string address;
    std::function<void()> shed;
    std::uint64_t waiting_since = 0;  // key in waiting_; 0 while busy
  };

  std::optional<Id> oldest_waiting(const std::string* address) const;
  void erase(Id id);

  const std::size_t max_total_;
  const std::size_t max_per_address_;
  mutable std::mutex mutex_;  // guards everything below
  std::unordered_map<Id, Entry> entries_;
  std::map<std::uint64_t, Id> waiting_;  // by the tick at which each began waiting, oldest first
  std::unordered_map<std::string, std::size_t> per_address_;
  Id next_id_ = 1;
  std::uint64_t next_tick_ = 1;
};

}  // namespace cyclecast::http
