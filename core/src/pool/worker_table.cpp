// The pool's workers; see worker_table.hpp.

#include "worker_table.hpp"

#include <seedpool/core/assert.hpp>

#include <algorithm>

namespace seedpool::detail {

WorkerTable::WorkerTable(const PoolConfig& config)
    : config_(config), slot_generations_(config.size.max, 0), slot_active_(config.size.max, 0) {}

bool WorkerTable::slot_active(std::uint32_t slot) const {
  SEEDPOOL_ASSERT(slot < slot_active_.size());
  return slot_active_[slot] != 0;
}

Worker& WorkerTable::add(std::uint32_t slot, Instant now) {
  SEEDPOOL_ASSERT(slot < slot_active_.size() && !slot_active_[slot]);
  const WorkerRef ref{slot, ++slot_generations_[slot]};
  const auto [it, inserted] = workers_.try_emplace(ref, ref, next_uid_++, now, config_);
  SEEDPOOL_ASSERT(inserted);
  Worker& w = it->second;
  w.table_ = this;
  list_.push_back(&w);
  slot_active_[slot] = 1;
  ++counts_[static_cast<std::size_t>(WorkerState::starting)];
  SEEDPOOL_ASSERT(list_.size() == workers_.size() && count_active() <= slot_active_.size());
  return w;  // no timer set: the cached earliest stands
}

void WorkerTable::erase(Worker& w) {
  SEEDPOOL_ASSERT_MSG(w.table_ == this, "a worker the table does not hold");
  SEEDPOOL_ASSERT_MSG(w.state_ == WorkerState::dead, "a worker erased before it died");
  moved(w.next_timer(), Instant::max());
  --counts_[static_cast<std::size_t>(WorkerState::dead)];
  const auto listed = std::find(list_.begin(), list_.end(), &w);
  SEEDPOOL_ASSERT(listed != list_.end());
  *listed = list_.back();
  list_.pop_back();
  const std::size_t erased = workers_.erase(w.ref);
  SEEDPOOL_ASSERT(erased == 1 && list_.size() == workers_.size());
}

Worker* WorkerTable::find(WorkerRef ref) noexcept {
  const auto it = workers_.find(ref);
  return it == workers_.end() ? nullptr : &it->second;
}

std::size_t WorkerTable::count_active() const noexcept {
  return count_in(WorkerState::starting) + count_in(WorkerState::initializing) + count_in(WorkerState::ready) +
         count_in(WorkerState::busy);
}

void WorkerTable::set_state(Worker& w, WorkerState to) {
  SEEDPOOL_ASSERT_MSG(is_legal_transition(w.state_, to) && to != WorkerState::starting,
                      "illegal worker state transition");
  change(w, [&](Worker& worker) {
    --counts_[static_cast<std::size_t>(worker.state_)];
    ++counts_[static_cast<std::size_t>(to)];
    if (is_active(worker.state_) && !is_active(to)) {
      slot_active_[worker.ref.slot] = 0;  // a worker never becomes active again
    }
    worker.state_ = to;
  });
}

void WorkerTable::ping_sent(Worker& w, std::uint64_t id, Instant deadline) {
  change(w, [&](Worker& worker) {
    worker.timers_.ping_id = id;
    worker.timers_.ping_deadline = deadline;
    worker.timers_.next_ping_at = Instant::max();
  });
}

void WorkerTable::clear_ping(Worker& w) {
  change(w, [](Worker& worker) {
    worker.timers_.ping_id.reset();
    worker.timers_.ping_deadline = Instant::max();
  });
}

void WorkerTable::set_next_ping_at(Worker& w, Instant at) {
  change(w, [at](Worker& worker) { worker.timers_.next_ping_at = at; });
}

void WorkerTable::set_recycle_at(Worker& w, Instant at) {
  change(w, [at](Worker& worker) { worker.timers_.recycle_at = at; });
}

void WorkerTable::set_terminate_at(Worker& w, Instant at) {
  change(w, [at](Worker& worker) { worker.timers_.terminate_at = at; });
}

void WorkerTable::set_kill_at(Worker& w, Instant at) {
  change(w, [at](Worker& worker) { worker.timers_.kill_at = at; });
}

Instant WorkerTable::earliest_timer() const {
  if (earliest_stale_) {
    earliest_ = Instant::max();
    for (const Worker* const w : list_) {
      earliest_ = std::min(earliest_, w->next_timer());
    }
    earliest_stale_ = false;
  }
  SEEDPOOL_ASSERT(!workers_.empty() || earliest_ == Instant::max());
  return earliest_;
}

template <class Change>
void WorkerTable::change(Worker& w, Change&& change) {
  SEEDPOOL_ASSERT_MSG(w.table_ == this, "a worker the table does not hold");
  const Instant before = w.next_timer();
  change(w);
  moved(before, w.next_timer());
}

// One worker's next timer went from `before` to `after`.
void WorkerTable::moved(Instant before, Instant after) noexcept {
  if (earliest_stale_) {
    return;
  }
  SEEDPOOL_ASSERT(before >= earliest_);
  if (after <= earliest_) {
    earliest_ = after;
  } else if (before == earliest_) {
    earliest_stale_ = true;  // another worker may share it; a rescan tells
  }
}

}  // namespace seedpool::detail
