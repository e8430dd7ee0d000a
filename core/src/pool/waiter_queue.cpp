// The checkouts waiting for a worker; see waiter_queue.hpp.

#include "waiter_queue.hpp"

#include <seedpool/core/assert.hpp>

#include <algorithm>

namespace seedpool::detail {

const Waiter& WaiterQueue::back() const {
  SEEDPOOL_ASSERT(!items_.empty());
  return items_.back();
}

void WaiterQueue::push_back(Waiter waiter) {
  if (!earliest_stale_) {
    earliest_ = std::min(earliest_, waiter.deadline);
  }
  items_.push_back(std::move(waiter));
}

WaiterQueue::iterator WaiterQueue::erase(iterator it) {
  SEEDPOOL_ASSERT(it != items_.end());
  forget(it->deadline);
  return items_.erase(it);
}

Waiter WaiterQueue::pop_back() {
  SEEDPOOL_ASSERT(!items_.empty());
  Waiter waiter = std::move(items_.back());
  items_.pop_back();
  forget(waiter.deadline);
  return waiter;
}

std::optional<Waiter> WaiterQueue::cancel(std::uint64_t id) {
  const auto it = std::find_if(items_.begin(), items_.end(), [id](const Waiter& w) { return w.id == id; });
  if (it == items_.end()) {
    return std::nullopt;
  }
  Waiter waiter = std::move(*it);
  erase(it);
  return waiter;
}

std::vector<Waiter> WaiterQueue::take_expired(Instant now) {
  std::vector<Waiter> expired;
  if (now < earliest_deadline()) {
    return expired;
  }
  for (auto it = items_.begin(); it != items_.end();) {
    if (now >= it->deadline) {
      expired.push_back(std::move(*it));
      it = erase(it);
    } else {
      ++it;
    }
  }
  SEEDPOOL_ASSERT(!expired.empty());
  return expired;
}

std::vector<Waiter> WaiterQueue::take_all() {
  std::vector<Waiter> all(std::make_move_iterator(items_.begin()), std::make_move_iterator(items_.end()));
  items_.clear();
  earliest_ = Instant::max();
  earliest_stale_ = false;
  return all;
}

Instant WaiterQueue::earliest_deadline() const {
  if (earliest_stale_) {
    earliest_ = Instant::max();
    for (const Waiter& w : items_) {
      earliest_ = std::min(earliest_, w.deadline);
    }
    earliest_stale_ = false;
  }
  SEEDPOOL_ASSERT(!items_.empty() || earliest_ == Instant::max());
  return earliest_;
}

// Removing a later deadline leaves the earliest one where it is.
void WaiterQueue::forget(Instant deadline) noexcept {
  if (deadline <= earliest_) {
    earliest_stale_ = true;
  }
}

}  // namespace seedpool::detail
