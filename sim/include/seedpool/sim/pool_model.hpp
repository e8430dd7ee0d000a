#pragma once

// PoolModel: the pool's contract as an executable reference model. Plain C++:
// no World, no tasks, no clock of its own. It is fed what can be observed of
// a pool — the pool's telemetry (requests, grants, worker states, inits,
// exits, pings, breaker, shutdown), what its callers see (cancels, answers,
// calls and their outcomes), and the moments just before virtual time moves
// on, when every task has done all it can at the current instant — and
// after each of them says whether the pool did something it may not do, or
// has not done by now something it must have done. Every promise is a Rule;
// docs/promises.md maps each promise of the README, pool.hpp, pool_config.hpp
// and docs/protocol.md to its rule.
//
// "By now" is exact: a pool reacts to a message or a deadline at the same
// virtual instant, so whatever it owes at instant t must be done before time
// leaves t. Bounds come from the configuration (backoff, init_timeout,
// health_interval + health_timeout, terminate_grace, the grace deadline),
// never from generous constants.

#include <seedpool/core/pool_config.hpp>
#include <seedpool/core/result.hpp>
#include <seedpool/core/telemetry.hpp>
#include <seedpool/core/time.hpp>
#include <seedpool/sim/invariant.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seedpool::sim {

// Every rule the pool checker enforces, the model's and the scenario-level
// ones alike. rule_name() names its invariant (invariant_of), which a
// failure carries: RunResult::invariant, and "[fifo] ..." in the message.
enum class Rule : std::uint8_t {
  // Leases and replies.
  lease_exclusive,       // a worker is never leased to two callers at once
  grant_after_deadline,  // no grant at or after the checkout's deadline
  grant_after_cancel,    // a caller whose cancel() took effect never gets a lease
  reply_mismatch,        // a reply only ever reaches the caller whose call it answers
  call_outcome,          // every call ends in its reply or an error its situation allows
  call_deadline,         // a call times out at its deadline, not before
  frame_limit,           // a call over frame_bytes_max is refused invalid_argument, unsent; no other call is
  // Waiters.
  fifo,                  // waiters are served first come, first served
  grant_prompt,          // no waiter waits while an idle worker could serve it
  expiry_prompt,         // an expired waiter is answered timeout at its deadline, not before
  cancel_prompt,         // a cancelled waiter leaves at once; a grant crossing a cancel comes back at once
  saturation,            // the queue never exceeds waiters_max; pool_saturated only when it is full
  affinity_prefer,       // a waiter whose key's worker is idle gets that worker
  affinity_strict,       // a strict waiter whose key's worker is busy waits for it
  // Workers.
  worker_count,          // never more than size.max active workers
  state_transition,      // worker states change along legal edges only
  start_on_demand,       // a worker starts only when below the floor or demand, never while the breaker is open
  restart_backoff,       // a slot restarts no sooner than the smallest backoff after its failures, in the lowest free slots
  restart_prompt,        // a missing worker is started by its slot's largest backoff; a healthy death's at once
  init_timeout,          // a worker that has not answered init within init_timeout is failed then
  health_ping,           // an idle worker is pinged within health_interval
  health_timeout,        // a missed pong replaces the worker after health_timeout, never before
  recycle_max_calls,     // a worker is recycled at the checkin that completes max_calls calls
  recycle_lifetime,      // a worker past max_lifetime is recycled when idle or at its checkin, never before its jittered lifetime
  timeout_replaces,      // a worker whose call timed out or broke the protocol never serves again, stopped at once
  crash_prompt,          // a call whose worker exits is answered at the exit, not at its deadline
  stop_escalation,       // a stopped worker is gone within two terminate_grace periods
  stderr_tail,           // an error's stderr tail has at most stderr_lines_kept lines, each cut at stderr_line_bytes_max
  stderr_log,            // every stderr line a worker sent reaches the LogSink, tagged with that worker, in order
  // Breaker.
  breaker_opens,         // breaker_failures failed starts (exits within ready_exit_window included) within breaker_window open it, fewer never do
  breaker_fast_fail,     // while the breaker is not closed no checkout waits; pool_unavailable only then
  breaker_half_open,     // an open breaker goes half-open at breaker_cooldown, not before
  breaker_probe,         // half-open starts one probe by its backoff; its success closes the breaker
  // Start and shutdown.
  start_prompt,          // start() returns once min_ready workers are ready, or by its deadline
  start_deadline,        // start() never returns after its deadline
  start_error,           // a failed start() says why
  shutdown_refuses,      // after shutdown begins no checkout is granted and no worker starts
  shutdown_answers,      // shutdown answers every waiter and stops every idle worker at once
  shutdown_grace,        // leases still held at the grace deadline are stopped then, and none before
  shutdown,              // shutdown() succeeds
  // Accounting.
  checkout_accounting,   // every checkout is counted once, under the outcome its caller saw
  call_accounting,       // every call is counted once, under the outcome its caller saw
  telemetry_counts,      // the aggregator agrees with the events it was sent
  // Liveness.
  callers_answered,      // every caller finishes within the scenario's bound
  pool_recovered,        // after the faults stop the pool is back to size within a bound from its config
  processes_reaped,      // after shutdown no process is left
};
inline constexpr std::size_t rule_count = static_cast<std::size_t>(Rule::processes_reaped) + 1;

std::string_view rule_name(Rule rule) noexcept;
// The rule named `name`, or nullopt.
std::optional<Rule> rule_from_name(std::string_view name) noexcept;
// The invariant a violation of `rule` fails the run with (named rule_name).
Invariant invariant_of(Rule rule);

// Counts by outcome, indexed by seedpool::outcome_index.
using OutcomeTally = std::array<std::uint64_t, outcome_count>;
// The tally of counts keyed by outcome label (PoolStats' maps).
OutcomeTally tally_of(const OutcomeCounts& counts);
// "ok=3 timeout=1", or "none".
std::string describe(const OutcomeTally& tally);

class PoolModel {
 public:
  explicit PoolModel(const PoolConfig& config);

  // The first violation, once there is one; the model stops checking then.
  struct Violation {
    Rule rule;
    std::string message;
  };
  const std::optional<Violation>& violation() const noexcept { return violation_; }

  // How often each rule's interesting case came up (a rule's check ran on
  // something that could have broken it), for the coverage report.
  const std::array<std::uint64_t, rule_count>& exercised() const noexcept { return exercised_; }
  // Coincidences at one instant that the sweeps should reach, by name.
  struct Instants {
    std::uint64_t grant_crossed_cancel = 0;  // a grant and the cancel of its checkout at one instant
    std::uint64_t grant_crossed_deadline = 0;  // a grant at the instant its caller gave up
    std::uint64_t exit_during_call = 0;     // a worker exit at the instant a call began or ended on it
  };
  const Instants& instants() const noexcept { return instants_; }

  // The pool's telemetry.
  void on_event(const TelemetryEvent& event);

  // What the callers see. `cancel_requested` comes before cancel() and
  // `cancel_returned` after it: the pool may act on the cancel in between.
  void start_requested(Instant deadline, std::size_t min_ready);
  void start_returned(Instant now, bool ok);
  // A caller asks for shutdown with grace until `deadline`: the grace ends
  // at the earliest deadline asked (a later shutdown may shorten it, never
  // lengthen it). Without asks, the pool_shutdown events' deadlines count.
  void shutdown_requested(Instant deadline);
  void cancel_requested(std::uint64_t checkout);
  void cancel_returned(std::uint64_t checkout, bool took_effect, Instant now);
  // The caller dropped the checkout without waiting for it (its
  // PendingCheckout was assigned over or destroyed), after cancel_requested:
  // a cancel, which takes effect unless the pool had already failed the
  // checkout. Also counts what the caller saw of it.
  void checkout_dropped(std::uint64_t checkout, Instant now);
  void checkout_answered(std::uint64_t checkout, const std::optional<ErrorCode>& error, Instant now);
  void call_begun(std::uint64_t call, WorkerRef worker, Instant now, Instant deadline);
  void call_answered(std::uint64_t call, const std::optional<ErrorCode>& error, Instant now);
  // The worker of `call` (begun, not yet answered) wrote a frame nobody
  // asked for while serving it: the pool must have stopped it by the next
  // advance of time (the call itself may still have got its reply, and the
  // worker may have gone back to idle meanwhile).
  void protocol_broken(std::uint64_t call);
  // A Pool::execute() returned `error` (nullopt: its reply): counted as the
  // checkout and the call the caller saw (a checkout's error, or a grant
  // then the call's outcome; a timeout, either).
  void execute_answered(const std::optional<ErrorCode>& error);

  // Whether something outside the pool (a chaos task) has killed worker
  // processes in this run: a SIGKILL is then not necessarily the pool's.
  void set_external_kills(bool happened) noexcept { external_kills_ = happened; }

  // Every task has run to a wait at `now`; time moves to `next`.
  void before_time_advance(Instant now, Instant next);

  // At the end of a run, after shutdown: what the stats count against what
  // the callers saw (only when every checkout and call went through the
  // caller notifications above).
  void check_accounting(const PoolStats& stats);

 private:
  struct Worker {
    WorkerRef ref;
    WorkerState state = WorkerState::starting;
    Instant created_at;
    Instant state_since;
    Instant ready_at = Instant::max();  // init answered
    Instant idle_since = Instant::max();  // ready with no ping due before idle_since + health_interval
    std::optional<Instant> ping_at;       // a ping without its pong
    std::uint64_t lease = 0;              // the checkout id holding it (0: none)
    std::uint64_t answered_calls = 0;     // replies and error frames
    std::uint32_t calls_in_flight = 0;
    bool reply_owed = false;              // a call on it timed out
    bool exited = false;
    Instant exited_at;
    bool probe = false;                   // started while the breaker was half-open
    bool launched = false;                // reached initializing: a process exists until its exit
    bool broke_protocol = false;          // wrote a frame nobody asked for: stopped by the next time advance
    bool recycle_reported = false;        // a worker_recycle event named it: its stop is graceful
    bool graceful_stop = false;           // stopped with the shutdown frame: no SIGKILL before two terminate_grace
  };
  struct Waiter {
    std::uint64_t id = 0;
    Instant deadline;
    std::string key;
    bool strict = false;
    Instant requested_at;  // the checkout_request's instant
    bool queued_at_open = false;  // waited when the breaker opened: failed with the others, however it stood
    bool cancel_requested = false;
    bool cancelled = false;  // the caller's cancel() took effect
    Instant cancelled_at;
    bool gone = false;  // answered; skipped until the next compaction
  };
  struct Lease {
    std::uint64_t id = 0;
    WorkerRef worker;
    Instant granted_at;
    bool caller_gone = false;  // cancelled or expired on the caller's side
    Instant gone_at;
  };
  struct Call {
    std::uint64_t id = 0;
    WorkerRef worker;
    Instant deadline;
    std::optional<Instant> worker_exited;  // its worker exited while it waited
  };
  void fail(Rule rule, std::string message);
  void exercise(Rule rule) { ++exercised_[static_cast<std::size_t>(rule)]; }

  void on_checkout_request(const TelemetryEvent& e);
  void on_checkout(const TelemetryEvent& e);
  void on_grant(const TelemetryEvent& e, std::vector<Waiter>::iterator waiter);
  void on_checkout_error(const TelemetryEvent& e, const Waiter& waiter);
  void on_checkout_returned(const TelemetryEvent& e);
  void on_worker_state(const TelemetryEvent& e);
  void on_new_worker(const TelemetryEvent& e);
  void on_checkin(Worker& w, const TelemetryEvent& e);
  void on_worker_init(const TelemetryEvent& e);
  void on_worker_exit(const TelemetryEvent& e);
  void on_recycle(const TelemetryEvent& e);
  void on_health(const TelemetryEvent& e);
  void on_breaker(const TelemetryEvent& e);
  void on_shutdown(const TelemetryEvent& e);
  void record_failure(std::uint32_t slot, Instant at);
  void count_failed_start(Instant at);
  // Whether `w` had been ready for ready_exit_window at `t`.
  bool served(const Worker& w, Instant t) const;
  // The free slots (no active worker) a missing worker must take, lowest
  // first: as many as the pool is short of what it wants. Valid until the
  // next call.
  const std::vector<std::uint32_t>& owed_slots();

  void check_waiters(Instant now, Instant next);
  void check_workers(Instant now, Instant next);
  void check_breaker_and_starts(Instant now, Instant next);

  Worker* find(WorkerRef ref);
  Lease* find_lease(std::uint64_t id);
  std::vector<Waiter>::iterator find_waiter(std::uint64_t id);
  void erase_waiter(std::vector<Waiter>::iterator waiter);
  // The caller of `lease` cancelled or gave up at `at`: the lease must come back.
  void caller_left(Lease& lease, Instant at);
  // A cancel of `checkout` took effect at `now`: a waiter still queued must
  // leave at once. Returns its lease when the grant had been made already.
  Lease* record_cancel(std::uint64_t checkout, Instant now);
  std::size_t waiting() const noexcept { return waiters_.size() - gone_waiters_; }
  // The first entry of waiters_ that may still wait: every one before it is gone.
  std::vector<Waiter>::iterator live_begin() { return waiters_.begin() + static_cast<std::ptrdiff_t>(head_); }
  Instant earliest_deadline();
  std::size_t count(WorkerState state) const;
  void set_state(Worker& w, WorkerState to);
  std::size_t active() const;
  std::size_t wanted() const;
  // Whether `waiter` could take some idle worker now (as the pool picks).
  bool eligible(const Waiter& waiter) const;
  // The worker a key is bound to, if any.
  const WorkerRef* bound(const std::string& key) const;
  void bind(const std::string& key, WorkerRef worker);
  Duration backoff_bound(std::uint32_t failures) const;

  const PoolConfig config_;
  bool external_kills_ = false;
  std::optional<Violation> violation_;
  std::array<std::uint64_t, rule_count> exercised_{};
  Instants instants_;

  std::vector<Worker> workers_;   // not dead; a handful
  std::array<std::size_t, worker_state_count> state_counts_{};  // workers_ by state, kept by set_state
  std::vector<Waiter> waiters_;   // in the order the pool took them; a few dozen at most
  std::size_t gone_waiters_ = 0;                // entries of waiters_ marked gone
  std::size_t head_ = 0;                        // waiters_ before it are all gone
  std::uint64_t highest_checkout_ = 0;          // the highest checkout id taken
  std::size_t cancelled_waiting_ = 0;           // waiters whose cancel() took effect
  Instant earliest_deadline_ = Instant::max();  // of waiters_, unless earliest_stale_
  bool earliest_stale_ = false;
  std::vector<Lease> leases_;     // granted and not checked in
  std::size_t gone_leases_ = 0;   // of leases_, those whose caller left
  // Leases that ended with their worker leaving service (the latest
  // lost_leases_max): the pool may still report one returned, when its
  // caller's cancel or deadline crossed the grant.
  std::vector<std::uint64_t> lost_leases_;
  static constexpr std::size_t lost_leases_max = 4096;
  std::vector<Call> calls_;       // begun and not answered
  std::size_t exited_calls_ = 0;  // of calls_, those whose worker exited
  std::vector<std::pair<std::string, WorkerRef>> affinity_;  // in binding order, oldest first
  std::vector<std::uint64_t> cancel_requests_;  // cancel() under way
  std::vector<std::uint64_t> leased_ids_;       // of those, the ones whose caller already got the lease
  std::vector<std::uint64_t> cancelled_ids_;    // cancel() took effect (the latest cancelled_ids_max)
  // Checkouts the pool failed with another error than cancelled (the latest
  // cancelled_ids_max): a later drop of one has no effect.
  std::vector<std::pair<std::uint64_t, ErrorCode>> failed_ids_;
  static constexpr std::size_t cancelled_ids_max = 4096;

  // Restarts.
  bool started_ = false;
  struct Slot {
    std::uint32_t failures = 0;          // failed starts in a row
    std::optional<Instant> last_failure;
    Instant due = Instant::zero();       // a missing worker in it must be starting by then
  };
  std::vector<Slot> slots_;  // size.max
  std::vector<std::uint32_t> slot_active_;  // active workers per slot, kept by set_state
  std::vector<std::uint32_t> owed_;         // owed_slots()' answer, kept to reuse its buffer

  // Breaker.
  BreakerState breaker_ = BreakerState::closed;
  std::deque<Instant> init_failures_;  // within breaker_window, at most breaker_failures
  bool must_open_ = false;
  bool must_close_ = false;
  Instant opened_at_;

  // start() and shutdown.
  bool start_pending_ = false;
  bool start_breaker_opened_ = false;  // the breaker opened while start() waited
  Instant start_deadline_;
  std::size_t start_min_ready_ = 0;
  bool shutting_down_ = false;
  Instant grace_deadline_ = Instant::max();     // the earliest of asked_deadline_ and the reported one
  Instant asked_deadline_ = Instant::max();     // the earliest a caller asked for
  Instant reported_deadline_ = Instant::max();  // the last pool_shutdown event's

  // Accounting: the callers' view, and the pool's by checkout.
  OutcomeTally caller_checkouts_{};
  OutcomeTally caller_calls_{};
  std::uint64_t execute_timeouts_ = 0;  // execute() timeouts: in the checkout or in the call
};

}  // namespace seedpool::sim
