#pragma once

// The pool task: the owner of the workers' lives. It handles its mailbox one
// message at a time and wakes for its own deadlines (waiter expiry, health
// checks, recycling, escalation, restarts, breaker cooldown, shutdown grace).
//
// Handing workers out is the shelf's (shelf.hpp): the idle workers, the
// waiting checkouts, the leases and the affinity bindings live there, behind
// one monitor, and callers take and return workers there themselves. The
// pool task lends each worker it made ready to the shelf and takes it back
// before it changes the worker's state; it decides the checkouts that reach
// it (failures, the breaker, saturation) under the shelf's monitor too.
//
// The rest lives in parts that each keep their own caches and counts: the
// workers and their timers (WorkerTable) and the restart backoff and breaker
// (RestartPolicy). The actor dispatches messages and makes the decisions:
// when a worker is stopped, started or recycled, and how the pool shuts
// down. Its member functions are spread by what they serve: actor.cpp (the
// loop, time and shutdown), actor_callers.cpp (checkouts, calls and leases)
// and actor_workers.cpp (worker life cycles).

#include "restart_policy.hpp"
#include "shared.hpp"
#include "shelf.hpp"
#include "waiter_queue.hpp"
#include "worker_table.hpp"

#include <optional>
#include <string>
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
  void handle(Wake& m);
  void handle(StatsRequest& m);
  void handle(StartRequest& m);
  void handle(ShutdownRequest& m);
  void handle(WorkerLaunched& m);
  void handle(WorkerLaunchFailed& m);
  void handle(WorkerReady& m);
  void handle(WorkerInitFailed& m);
  void handle(WorkerEvent& m);

 private:
  struct StartWaiter {
    std::size_t min_ready = 0;
    Instant deadline;
    std::shared_ptr<Channel<Status>> reply;
  };

  // Calls and leases (actor_callers.cpp).
  Worker* leased_worker(std::uint64_t lease_id);
  std::optional<std::uint64_t> lease_of(const Worker& w) const { return shelf_.live_lease_of(w.ref); }
  void take_call_records(Worker& w);

  // Waiters (actor_callers.cpp).
  void grant_waiters();
  void answer_start_waiters();
  Error start_failure(std::string_view why) const;

  // Workers (actor_workers.cpp).
  void on_frame(Worker& w, const Frame& frame);
  void on_exit(Worker& w, const ExitStatus& status);
  void start_workers();
  void spawn_worker_task(const Worker& w);
  void transition(Worker& w, WorkerState to);
  void stop_worker(Worker& w, bool graceful, std::string_view reason);
  void fail_worker(Worker& w, Error error);
  void lose_lease(Worker& w, Error error);
  void make_idle(Worker& w);
  void take_back(Worker& w);
  void ping(Worker& w);
  void record_init_failure(Worker& w, Error error);
  void breaker_opened(const Error& error);
  Error with_tail(const Worker& w, ErrorCode code, std::string message) const;

  // Time (actor.cpp).
  void on_timers();
  void check_worker_timers(Worker& w);
  Instant own_deadline() const;
  Instant next_deadline() const;

  // Shutdown (actor.cpp).
  void begin_shutdown(Instant grace_deadline);
  bool finished() const;
  void finish();

  void emit(TelemetryEvent event);
  void emit_request(const CheckoutRequest& m);
  Instant now() const { return world_.now(); }

  std::shared_ptr<PoolShared> shared_;
  World& world_;
  const PoolConfig& config_;
  Shelf& shelf_;

  WorkerTable workers_;
  RestartPolicy restart_;
  std::vector<StartWaiter> start_waiters_;

  bool shutting_down_ = false;
  Instant grace_deadline_ = Instant::max();
  bool grace_over_ = false;  // the grace deadline passed: busy workers were stopped
  std::vector<std::shared_ptr<Channel<Status>>> shutdown_waiters_;
};

}  // namespace seedpool::detail
