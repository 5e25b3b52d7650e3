#include "connection_table.h"

#include <algorithm>
#include <utility>

namespace cyclecast::http {

ConnectionTable::ConnectionTable(std::size_t max_total, std::size_t max_per_address)
    : max_total_(std::max<std::size_t>(1, max_total)),
      max_per_address_(std::max<std::size_t>(1, max_per_address)) {}

ConnectionTable::Admission ConnectionTable::admit(const std::string& address,
                                                  std::function<void()> shed) {
  std::lock_guard lock(mutex_);
  Admission admission;
  const auto held = per_address_.find(address);
  const bool address_full = held != per_address_.end() && held->second >= max_per_address_;
  if (address_full || entries_.size() >= max_total_) {
    // An address at its share gives up one of its own slots, never another address's.
    const auto victim = oldest_waiting(address_full ? &address : nullptr);
    if (!victim) return admission;
    admission.shed = std::move(entries_.at(*victim).shed);
    erase(*victim);
  }
  const Id id = next_id_++;
  Entry entry;
  entry.address = address;
  entry.shed = std::move(shed);
  entry.waiting_since = next_tick_++;
  waiting_.emplace(entry.waiting_since, id);
  entries_.emplace(id, std::move(entry));
  ++per_address_[address];
  admission.id = id;
  return admission;
}

void ConnectionTable::set_waiting(Id id, bool waiting) {
  std::lock_guard lock(mutex_);
  const auto found = entries_.find(id);
  if (found == entries_.end()) return;
  Entry& entry = found->second;
  if (entry.waiting_since != 0) waiting_.erase(entry.waiting_since);
  entry.waiting_since = waiting ? next_tick_++ : 0;
  if (waiting) waiting_.emplace(entry.waiting_since, id);
}

void ConnectionTable::remove(Id id) {
  std::lock_guard lock(mutex_);
  erase(id);
}

std::size_t ConnectionTable::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

// Linear in the waiting connections: a few thousand at most (the total is capped).
std::optional<ConnectionTable::Id> ConnectionTable::oldest_waiting(
    const std::string* address) const {
  for (const auto& [tick, id] : waiting_) {
    if (address == nullptr || entries_.at(id).address == *address) return id;
  }
  return std::nullopt;
}

void ConnectionTable::erase(Id id) {
  const auto found = entries_.find(id);
  if (found == entries_.end()) return;
  if (found->second.waiting_since != 0) waiting_.erase(found->second.waiting_since);
  const auto held = per_address_.find(found->second.address);
  if (held != per_address_.end() && --held->second == 0) per_address_.erase(held);
  entries_.erase(found);
}

}  // namespace cyclecast::http
