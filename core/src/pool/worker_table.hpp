#pragma once

// The pool's workers: each worker's state and timers, the count of workers in
// each state, the slot each one takes, and the earliest of all their timers.
//
// The pool task asks for the earliest timer after every message, and a scan
// over every worker each time was the loop's largest cost, so the table keeps
// it cached. What makes the cache right is that nothing else can change what
// it depends on: a worker's state and timers are readable by anyone and
// written only by the table's own methods, and each of those compares the
// worker's next timer before and after the change. A change that brings the
// worker's timer before the cached one moves the cache there; one that takes
// the timer the cache holds away marks it for a rescan; any other change
// leaves it as it is. The counts by state, the slots in use and the list the
// rescan walks are kept by the same methods.

#include "call_line.hpp"
#include "shared.hpp"

#include <seedpool/core/stderr_ring.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ranges>
#include <vector>

namespace seedpool::detail {

class WorkerTable;

// A worker's deadlines; Instant::max() when not set.
struct WorkerTimers {
  std::optional<std::uint64_t> ping_id;  // the ping whose pong is awaited
  Instant ping_deadline = Instant::max();  // the pong is due by then
  Instant next_ping_at = Instant::max();   // an idle worker is pinged then
  Instant recycle_at = Instant::max();     // max_lifetime, jittered
  Instant terminate_at = Instant::max();   // a stopping worker that ignored its shutdown frame
  Instant kill_at = Instant::max();        // a stopping worker that ignored its terminate
};

class Worker {
 public:
  Worker(WorkerRef r, std::uint64_t u, Instant now, const PoolConfig& config)
      : ref(r), uid(u), created_at(now), stderr_lines(config.stderr_lines_kept, config.stderr_line_bytes_max) {}

  WorkerState state() const noexcept { return state_; }
  const WorkerTimers& timers() const noexcept { return timers_; }
  // The earliest timer that matters in the worker's state: a ping is sent
  // only to an idle worker with none in flight, and max_lifetime recycles
  // only a serving worker. Instant::max() when none. Each timer is one plain
  // comparison: std::min over an initializer list cost about twice as many
  // instructions in the pool loop (measured with callgrind).
  Instant next_timer() const noexcept {
    Instant next = timers_.ping_deadline;
    next = std::min(next, timers_.terminate_at);
    next = std::min(next, timers_.kill_at);
    if (state_ == WorkerState::ready && !timers_.ping_id) {
      next = std::min(next, timers_.next_ping_at);
    }
    if (state_ == WorkerState::ready || state_ == WorkerState::busy) {
      next = std::min(next, timers_.recycle_at);
    }
    return next;
  }

  const WorkerRef ref;
  const std::uint64_t uid;  // unique for the pool's lifetime; told to the worker in its init frame
  const Instant created_at;
  std::shared_ptr<Process> process;  // from launch on
  std::shared_ptr<CallLine> line;    // from ready on
  std::optional<Instant> ready_at;   // when it became ready
  bool recycle_due = false;      // max_lifetime passed while busy: recycled at checkin
  // On the shelf (idle or leased there) since the pool task made it ready:
  // its state here stays ready until the pool task takes it back.
  bool lent = false;
  bool start_cancelled = false;  // stopped before it finished starting
  StderrRing stderr_lines;

 private:
  friend class WorkerTable;
  const WorkerTable* table_ = nullptr;  // the table that holds it
  WorkerState state_ = WorkerState::starting;
  WorkerTimers timers_;
};

class WorkerTable {
 public:
  // A table of `config.size.max` slots.
  explicit WorkerTable(const PoolConfig& config);

  // Whether `slot` holds an active worker (starting to busy: a stopping
  // worker has left its slot to its replacement).
  bool slot_active(std::uint32_t slot) const;
  // Adds a worker in `slot`, which must be free, as starting, with the
  // slot's next generation and a new uid; no timer is set.
  Worker& add(std::uint32_t slot, Instant now);
  // Removes a dead worker.
  void erase(Worker& w);
  // The worker `ref`, or nullptr when it is not in the table.
  Worker* find(WorkerRef ref) noexcept;

  bool empty() const noexcept { return workers_.empty(); }
  std::size_t size() const noexcept { return workers_.size(); }
  std::size_t count_in(WorkerState state) const noexcept { return counts_[static_cast<std::size_t>(state)]; }
  // Starting, initializing, ready or busy: the workers counted against size.max.
  std::size_t count_active() const noexcept;
  // Every worker, in slot then generation order (deterministic). A plain
  // view of the map's values: clang 14 cannot use libstdc++ 12's
  // std::views::values, and the fuzz build compiles this with clang.
  template <class It, class W>
  struct Values {
    struct iterator {
      It at;
      W& operator*() const { return at->second; }
      iterator& operator++() {
        ++at;
        return *this;
      }
      bool operator!=(const iterator& other) const { return at != other.at; }
    };
    It first;
    It last;
    iterator begin() const { return {first}; }
    iterator end() const { return {last}; }
  };
  auto all() noexcept { return Values<decltype(workers_)::iterator, Worker>{workers_.begin(), workers_.end()}; }
  auto all() const noexcept {
    return Values<decltype(workers_)::const_iterator, const Worker>{workers_.begin(), workers_.end()};
  }

  // Moves `w` to `to` along a legal edge (never back to starting).
  void set_state(Worker& w, WorkerState to);
  // A ping `id` was sent to `w`: its pong is due by `deadline`, and no
  // other ping is planned meanwhile.
  void ping_sent(Worker& w, std::uint64_t id, Instant deadline);
  // Forgets the ping in flight, answered or not.
  void clear_ping(Worker& w);
  void set_next_ping_at(Worker& w, Instant at);
  void set_recycle_at(Worker& w, Instant at);
  void set_terminate_at(Worker& w, Instant at);
  void set_kill_at(Worker& w, Instant at);

  // The earliest next_timer() of any worker; Instant::max() when none.
  Instant earliest_timer() const;

 private:
  // Runs `change` on `w`'s state or timers and keeps the cache right.
  template <class Change>
  void change(Worker& w, Change&& change);
  void moved(Instant before, Instant after) noexcept;

  const PoolConfig& config_;
  std::map<WorkerRef, Worker> workers_;  // ordered: deterministic iteration
  // The same workers in no particular order, for the rescan, whose result
  // does not depend on order: walking the map node by node cost a library
  // call per worker. Map nodes never move.
  std::vector<const Worker*> list_;
  std::array<std::size_t, worker_state_count> counts_{};
  std::vector<std::uint64_t> slot_generations_;
  std::vector<std::uint8_t> slot_active_;  // 1: the slot holds an active worker
  std::uint64_t next_uid_ = 1;
  mutable Instant earliest_ = Instant::max();  // valid unless earliest_stale_
  mutable bool earliest_stale_ = false;
};

}  // namespace seedpool::detail
