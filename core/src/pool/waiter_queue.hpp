#pragma once

// The checkouts waiting for a worker, first come first served, with their
// deadlines. The pool task asks for the earliest deadline after every
// message, and rescanning up to waiters_max entries each time cost more than
// handling the message, so the queue keeps that deadline cached and every
// method that removes a waiter keeps the cache right: only removing the
// waiter that holds the earliest deadline invalidates it.

#include "shared.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace seedpool::detail {

// A checkout the pool took and has not answered yet.
struct Waiter {
  std::uint64_t id = 0;  // the checkout's id, the lease id once granted
  Instant deadline;
  Instant requested_at;
  std::string affinity_key;
  AffinityMode affinity_mode = AffinityMode::prefer;
  std::shared_ptr<Channel<CheckoutReply>> reply;
  std::shared_ptr<const std::atomic<int>> phase;  // the caller's CheckoutPhase
};

class WaiterQueue {
 public:
  using iterator = std::deque<Waiter>::iterator;
  using const_iterator = std::deque<Waiter>::const_iterator;

  bool empty() const noexcept { return items_.empty(); }
  std::size_t size() const noexcept { return items_.size(); }
  // In arrival order, oldest first.
  iterator begin() noexcept { return items_.begin(); }
  iterator end() noexcept { return items_.end(); }
  const_iterator begin() const noexcept { return items_.begin(); }
  const_iterator end() const noexcept { return items_.end(); }
  const Waiter& back() const;

  // Queues `waiter` behind every waiter already queued.
  void push_back(Waiter waiter);
  // Removes the waiter at `it`; returns the one after it.
  iterator erase(iterator it);
  // Removes and returns the newest waiter.
  Waiter pop_back();
  // Removes and returns the waiter of checkout `id`; nullopt when none waits.
  std::optional<Waiter> cancel(std::uint64_t id);
  // Removes and returns, oldest first, every waiter whose deadline is at or
  // before `now`.
  std::vector<Waiter> take_expired(Instant now);
  // Removes and returns every waiter, oldest first.
  std::vector<Waiter> take_all();

  // The earliest deadline of any waiter; Instant::max() when empty.
  Instant earliest_deadline() const;

 private:
  void forget(Instant deadline) noexcept;

  std::deque<Waiter> items_;
  mutable Instant earliest_ = Instant::max();  // valid unless earliest_stale_
  mutable bool earliest_stale_ = false;
};

}  // namespace seedpool::detail
