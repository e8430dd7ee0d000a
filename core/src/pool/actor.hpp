#pragma once

// The pool task: the one owner of all pool state. It handles its mailbox one
// message at a time and wakes for its own deadlines (waiter expiry, health
// checks, recycling, escalation, restarts, breaker cooldown, shutdown grace).

#include "call_line.hpp"
#include "shared.hpp"

#include <seedpool/core/circuit_breaker.hpp>
#include <seedpool/core/stderr_ring.hpp>

#include <array>
#include <deque>
#include <map>
#include <vector>

namespace seedpool::detail {

class PoolActor {
 public:
  explicit PoolActor(std::shared_ptr<PoolShared> shared);
  void run();

  // One overload per Message alternative; see shared.hpp.
  void handle(CheckoutRequest& m);
  void handle(CheckoutCancel& m);
  void handle(CallAbandon& m);
  void handle(CallUnsent& m);
  void handle(CallRefused& m);
  void handle(CallsReport& m);
  void handle(Checkin& m);
  void handle(StatsRequest& m);
  void handle(StartRequest& m);
  void handle(ShutdownRequest& m);
  void handle(WorkerLaunched& m);
  void handle(WorkerLaunchFailed& m);
  void handle(WorkerReady& m);
  void handle(WorkerInitFailed& m);
  void handle(WorkerEvent& m);

 private:
  struct Worker {
    Worker(WorkerRef r, std::uint64_t u, Instant now, const PoolConfig& config)
        : ref(r), uid(u), created_at(now), stderr_lines(config.stderr_lines_kept, config.stderr_line_bytes_max) {}
    WorkerRef ref;
    std::uint64_t uid;
    // What earliest_worker_timer() reads of each worker, side by side.
    WorkerState state = WorkerState::starting;
    std::optional<std::uint64_t> ping_id;
    Instant ping_deadline = Instant::max();
    Instant terminate_at = Instant::max();
    Instant kill_at = Instant::max();
    Instant next_ping_at = Instant::max();
    Instant recycle_at = Instant::max();
    bool recycle_due = false;
    std::shared_ptr<Process> process;
    Instant created_at;
    bool start_cancelled = false;  // stopped before it finished starting
    std::shared_ptr<CallLine> line;  // from ready on
    std::optional<std::uint64_t> lease;
    std::uint64_t calls_done = 0;
    StderrRing stderr_lines;
  };

  struct Waiter {
    std::uint64_t id = 0;
    Instant deadline;
    Instant requested_at;
    std::string affinity_key;
    AffinityMode affinity_mode = AffinityMode::prefer;
    std::shared_ptr<Channel<CheckoutReply>> reply;
    std::shared_ptr<const std::atomic<int>> phase;  // the caller's CheckoutPhase
  };

  // The checkouts waiting for a worker, in arrival order. The earliest
  // deadline among them is cached: the pool task needs it after every
  // message, and rescanning up to waiters_max entries each time cost more
  // than handling the message. Only removing the waiter that holds the
  // earliest deadline invalidates the cache.
  class WaiterQueue {
   public:
    using iterator = std::deque<Waiter>::iterator;
    using const_iterator = std::deque<Waiter>::const_iterator;

    bool empty() const noexcept { return items_.empty(); }
    std::size_t size() const noexcept { return items_.size(); }
    iterator begin() noexcept { return items_.begin(); }
    iterator end() noexcept { return items_.end(); }
    const_iterator begin() const noexcept { return items_.begin(); }
    const_iterator end() const noexcept { return items_.end(); }
    const Waiter& back() const { return items_.back(); }

    void push_back(Waiter waiter);
    iterator erase(iterator it);
    Waiter pop_front();
    Waiter pop_back();

    // The earliest deadline of any waiter; Instant::max() when empty.
    Instant earliest_deadline() const;

   private:
    void forget(Instant deadline) noexcept;

    std::deque<Waiter> items_;
    mutable Instant earliest_ = Instant::max();  // valid unless earliest_stale_
    mutable bool earliest_stale_ = false;
  };

  struct LeaseRecord {
    WorkerRef worker;
    std::optional<Error> lost;  // set when the worker died or was replaced under the lease
  };

  struct LeaseEntry {
    std::uint64_t id;  // the lease id
    LeaseRecord record;
  };

  struct StartWaiter {
    std::size_t min_ready = 0;
    Instant deadline;
    std::shared_ptr<Channel<Status>> reply;
  };

  // Frames and other process events of a started worker.
  void on_frame(Worker& w, const Frame& frame);
  void on_exit(Worker& w, const ExitStatus& status);
  void take_call_records(Worker& w);
  Worker* leased_worker(std::uint64_t lease_id);
  std::vector<LeaseEntry>::iterator find_lease(std::uint64_t lease_id);

  // Workers.
  void start_workers();
  void start_worker();
  void transition(Worker& w, WorkerState to);
  void stop_worker(Worker& w, bool graceful, std::string_view reason);
  void fail_worker(Worker& w, Error error);
  void lose_lease(Worker& w, const Error& error);
  void make_idle(Worker& w);
  void record_init_failure(Worker& w, Error error);
  Worker* find(WorkerRef ref);
  void add_worker(Worker worker);
  void erase_worker(WorkerRef ref);
  std::size_t count_active() const;
  std::size_t count_in(WorkerState state) const;
  Error with_tail(const Worker& w, ErrorCode code, std::string message) const;

  // Waiters.
  void grant_waiters();
  Worker* pick_worker(const Waiter& waiter);
  void bind_affinity(const std::string& key, WorkerRef worker);
  void fail_checkout(const Waiter& waiter, Error error);
  static ErrorCode gone_caller_saw(const Waiter& waiter);
  void answer_start_waiters();
  Error start_failure(std::string_view why) const;
  Error unavailable() const;

  // Time.
  void on_timers();
  void check_worker_timers(Worker& w);
  Instant next_deadline() const;
  Instant earliest_worker_timer() const;
  Duration backoff_delay();

  // Shutdown.
  void begin_shutdown(Instant grace_deadline);
  bool finished() const;
  void finish();

  void emit(TelemetryEvent event);
  void emit_request(const CheckoutRequest& m);
  Instant now() const { return world_.now(); }

  std::shared_ptr<PoolShared> shared_;
  World& world_;
  const PoolConfig& config_;
  TelemetryAggregator aggregator_;
  CircuitBreaker breaker_;

  std::map<WorkerRef, Worker> workers_;  // ordered: deterministic iteration
  // The same workers in no particular order, for scans whose result does
  // not depend on order (earliest_worker_timer): walking the map node by
  // node cost a library call per worker. Map nodes never move; add_worker
  // and erase_worker keep the two in step.
  std::vector<const Worker*> worker_list_;
  std::vector<CallRecord> call_records_;  // scratch for take_call_records
  std::array<std::size_t, worker_state_count> state_counts_{};  // workers_ by state (dead ones are erased)
  // earliest_worker_timer() as next_deadline() last computed it: the pool
  // loop needs it twice per message, and the scan over every worker was the
  // loop's largest cost. It depends only on each worker's timers, ping and
  // state and on which workers exist. Rule that keeps it valid: run() drops
  // it after every on_timers() pass and every handled message except a
  // CheckoutRequest (either may change anything), transition() drops it,
  // and a change in the number of workers drops it. What is left changes
  // workers only by transitions and by adding workers, whose timers are all
  // unset: handle(CheckoutRequest), grant_waiters, start_workers and
  // answer_start_waiters.
  mutable Instant worker_timers_next_ = Instant::max();
  mutable std::size_t worker_timers_count_ = 0;  // workers_.size() when computed
  mutable bool worker_timers_stale_ = true;
  std::vector<std::uint64_t> slot_generations_;
  std::uint64_t next_uid_ = 1;
  WaiterQueue waiters_;
  // Leases granted and not yet checked in, lost ones included: a handful,
  // about one per busy worker. Searched in order and never iterated for
  // anything else, so their order is free (erase swaps in the last one);
  // a map cost an allocation and a free per lease.
  std::vector<LeaseEntry> leases_;
  std::map<std::string, WorkerRef> affinity_;
  std::deque<std::string> affinity_order_;  // insertion order, for eviction
  std::vector<StartWaiter> start_waiters_;
  std::deque<Error> recent_failures_;  // bounded by recent_failures_max
  std::uint32_t consecutive_failures_ = 0;
  Instant next_start_at_;
  bool probe_started_ = false;  // half-open: the one probe is under way

  bool shutting_down_ = false;
  Instant grace_deadline_ = Instant::max();
  std::vector<std::shared_ptr<Channel<Status>>> shutdown_waiters_;

  static constexpr std::size_t recent_failures_max = 16;
  static constexpr std::uint32_t backoff_doublings_max = 30;
};

}  // namespace seedpool::detail
