#pragma once

// The shelf: where callers and the pool task hand workers to each other.
// Everything that decides who gets which worker lives here, behind one World
// monitor: the idle workers the pool task has put on the shelf, the checkouts
// waiting for one (WaiterQueue), the leases (LeaseTable), the affinity
// bindings, and the telemetry every such step is reported by. Whoever holds
// the monitor makes the step: a caller checking out, a caller releasing, or
// the pool task. The pool task keeps what is not about handing workers out:
// starting, pinging, recycling and stopping workers, restarts and the
// breaker, start() and shutdown.
//
// The rules:
//
//  1. One owner per serving worker. A ready or busy worker belongs to exactly
//     one of: the pool task, the shelf (idle on it), or a lease. It moves
//     between them only under the monitor. The pool task lends a worker it
//     made ready (lend) and takes it back (take_back) before it changes the
//     worker's state; while a worker is lent, its ready <-> busy steps are
//     the shelf's, and only the shelf reports them.
//
//  2. First come, first served. Waiters are served in the order the shelf
//     took them (whoever took them), each by the first idle worker it can
//     take (pick). After every step under the monitor, no waiter that can
//     take an idle worker still waits (grant_waiters), so a checkout that
//     finds an idle worker it can take overtakes nobody.
//
//  3. A checkout is taken on the shelf by its caller (checkout) only while
//     the shelf is open to checkouts (the pool task runs, the breaker is
//     closed, no shutdown) and before its deadline, and only when it can be
//     granted at once or wait without exceeding waiters_max. While the
//     breaker is not closed the shelf holds the pool task's refusal instead:
//     the caller takes a checkout it can be granted at once, and fails any
//     other with the refusal there, as the pool task would (admit), without
//     a message to it. Anything else goes to the pool task as a
//     CheckoutRequest, which decides it here under the same monitor (admit),
//     failures included. A waiter the pool task must hear of (it may start
//     a worker for it, or its deadline comes before the pool task's next
//     wake-up) is followed by a Wake message.
//
//  4. A release puts its worker straight back (to the first waiter that can
//     take it, else on the shelf) only when the caller can tell it is fit:
//     the worker is lent and leased to this lease, its line is reusable (no
//     reply owed, not cut), it has answered fewer than max_calls calls, and
//     the shelf is not closed. Otherwise the lease is left to the pool task,
//     still recorded, by a Checkin message (check_in). The pool task takes a
//     leased worker back when it must act on it (a lifetime over, a ping
//     due, a failure): that lease's release then goes to the pool task.
//
//  5. Every waiter leaves the queue exactly once, under the monitor: granted,
//     expired (expire, by the pool task at its deadline), cancelled (cancel,
//     when the caller's CheckoutCancel arrives), or failed when the breaker
//     opens or the pool shuts down. Answers are decided and counted under
//     the monitor and sent on the caller's reply channel once it is released
//     (a send is a scheduling point). A failure settles the caller's phase
//     first, against the caller's own cancel or deadline: whichever settles
//     it, the count says what the caller saw. A grant does not: a caller that
//     gives up before taking it sends a CheckoutCancel, which brings the
//     lease back (cancel).
//
//  6. Telemetry is emitted only under the monitor, in the order of the steps
//     it reports, whichever task made them (TelemetryEvent::by says which).
//     The built-in aggregator lives here, so every checkout and call is
//     counted once.

#include "call_line.hpp"
#include "lease_table.hpp"
#include "shared.hpp"
#include "waiter_queue.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace seedpool::detail {

// Answers decided under the shelf's monitor, sent after it is released.
class Deliveries {
 public:
  Deliveries() = default;
  Deliveries(const Deliveries&) = delete;
  Deliveries& operator=(const Deliveries&) = delete;
  ~Deliveries() { SEEDPOOL_ASSERT_MSG(items_.empty(), "answers decided and never sent"); }

  void add(std::shared_ptr<Channel<CheckoutReply>> reply, CheckoutReply answer);
  // Sends every answer. A grant whose caller closed its channel meanwhile is
  // left as it is: the caller's CheckoutCancel brings the lease back.
  void send();

 private:
  struct Item {
    std::shared_ptr<Channel<CheckoutReply>> reply;
    CheckoutReply answer;
  };
  std::vector<Item> items_;
};

class Shelf {
 public:
  Shelf(World& world, const PoolConfig& config, const PoolHooks& hooks);
  Shelf(const Shelf&) = delete;
  Shelf& operator=(const Shelf&) = delete;

  // ---------------------------------------------------------------- telemetry

  void emit(const TelemetryEvent& event);
  PoolStats stats() const;

  // ---------------------------------------------------------------- callers

  // A checkout its caller tries to take on the shelf (rule 3).
  struct Attempt {
    std::uint64_t id = 0;
    Instant deadline;
    Instant requested_at;
    std::string affinity_key;
    AffinityMode affinity_mode = AffinityMode::prefer;
  };
  struct Taken {
    enum Kind { granted, waiting, refused, not_here } kind = not_here;
    std::optional<Grant> grant;               // granted
    std::optional<Error> refusal;             // refused: answered and counted so already
    std::shared_ptr<CheckoutReplyBox> box;    // waiting: the grant or failure comes on it
    bool wake = false;                        // waiting: the caller must post Wake
  };
  Taken checkout(Attempt& attempt, Deliveries& out);

  // A lease's holder releases it (rule 4).
  enum class Released { done, to_pool_task };
  Released release(std::uint64_t lease_id, Deliveries& out);

  // ---------------------------------------------------------------- the pool task

  // Takes a checkout that came as a CheckoutRequest: grants it, queues it, or
  // fails it. `unavailable`: the breaker is not closed, and a checkout that
  // cannot be granted at once fails with it.
  void admit(Waiter waiter, const std::optional<Error>& unavailable, Deliveries& out);
  // Fails a checkout the shelf does not hold (one the pool task found in its
  // mailbox as it ended).
  void fail(Waiter waiter, Error error, Deliveries& out);

  // The caller's CheckoutCancel: drops its waiter (reporting the checkout as
  // cancelled, or timeout when `expired`), or takes back a grant that crossed
  // it. Returns to_pool_task when that lease's worker must be checked in by
  // the pool task (as check_in).
  Released cancel(std::uint64_t id, bool expired, Deliveries& out);

  // Grants every waiter that can take an idle worker.
  void grant_waiters(Deliveries& out);

  // Puts a ready worker, which the pool task owns and nobody leases, on the
  // shelf, and grants it to the first waiter that can take it.
  void lend(WorkerRef worker, std::shared_ptr<CallLine> line, Deliveries& out);

  // What a lent worker was when the pool task took it back.
  enum class Held { idle, leased };
  Held take_back(WorkerRef worker);

  // A lease the release left to the pool task (or any lease, at the pool
  // task's own checkin): removes it and returns it; nullopt when not held.
  // Its worker is no longer lent (`was_lent` says whether it was).
  struct CheckedIn {
    LeaseTable::Lease lease;
    bool was_lent = false;
  };
  std::optional<CheckedIn> check_in(std::uint64_t lease_id);

  // Lease queries, and the one change the pool task makes to a lease: it
  // marks the live lease on a worker it took back lost with `error` (and
  // returns it). Neither grants anything: a waiter the change lets take
  // another worker (a strict one whose worker leaves) is served at the
  // next step, after the pool task has reported what became of the worker.
  std::optional<WorkerRef> live_worker(std::uint64_t lease_id) const;
  std::optional<std::uint64_t> live_lease_of(WorkerRef worker) const;
  Error lose(WorkerRef worker, Error error);

  // A lent worker's ping, decided while no lease can take it: `ping` is
  // emitted when the worker is idle and has been since `health_interval`
  // ago or more.
  struct PingCheck {
    enum Kind { pinged, not_yet, leased } kind = leased;
    Instant due;  // not_yet: when it will have been idle long enough
  };
  PingCheck ping_if_idle(WorkerRef worker, Duration health_interval, const TelemetryEvent& ping);

  // Emits the records of the calls finished on `line` since the last take.
  void take_call_records(WorkerRef worker, CallLine& line);

  // Waiters. Fails, with `error`, every waiter whose deadline is at or
  // before `now`.
  void expire(Instant now, const Error& error, Deliveries& out);
  Instant earliest_deadline() const;
  // The pool task's start_workers: calls `decide` with the number of
  // waiters and emits the events it returns, under the monitor. `may_grow`
  // says whether one more waiter could have it start a worker (rule 3).
  void decide_starts(bool may_grow, const std::function<std::vector<TelemetryEvent>(std::size_t waiting)>& decide);
  // The pool task sleeps until the earlier of `others` and the earliest
  // waiter deadline, which it returns; a waiter due before then wakes it.
  Instant plan_wake(Instant others);

  // Opens or closes the shelf to callers' checkouts. `refusal`, while the
  // breaker is not closed: what a checkout that cannot be granted at once
  // fails with (rule 3); the latest one, as its last failure changes.
  void open_checkouts(bool open, std::optional<Error> refusal);
  // The breaker opened: emits `event`, closes the shelf to checkouts,
  // refuses them with `error` from now on, and fails every waiter, oldest
  // first, with it.
  void breaker_opened(const TelemetryEvent& event, const Error& error, Deliveries& out);
  // The breaker went half-open or closed: emits `event` and refuses
  // checkouts with `refusal` from now on (none once closed), in one step.
  void breaker_moved(const TelemetryEvent& event, std::optional<Error> refusal);
  // Shutdown: closes the shelf for good (checkouts and releases go to the
  // pool task), emits `event` and fails every waiter with `error`.
  void close(const TelemetryEvent& event, const Error& error, Deliveries& out);

 private:
  struct Member {  // a lent worker
    enum Status { idle, leased, returning };  // returning: its release went to the pool task
    WorkerRef ref;
    std::shared_ptr<CallLine> line;
    Status status = idle;
    Instant idle_since;
  };

  void emit_locked(const TelemetryEvent& event);
  void fail_locked(const Waiter& waiter, Error error, Deliveries& out);
  void fail_all_locked(std::vector<Waiter> waiters, const Error& error, Deliveries& out);
  Member* member(WorkerRef worker);
  Member* pick_locked(const std::string& key, AffinityMode mode);
  void grant_waiters_locked(StepBy by, Deliveries& out);
  // `t`: now, as the caller read it under the monitor.
  void grant_locked(std::uint64_t id, Instant requested_at, const std::string& key, Member& m, StepBy by, Instant t);
  void bind_affinity_locked(const std::string& key, WorkerRef worker);
  void take_call_records_locked(WorkerRef worker, CallLine& line);
  Released release_locked(std::uint64_t lease_id, StepBy by, Deliveries& out);
  Instant now() const { return world_.now(); }

  World& world_;
  const PoolConfig& config_;
  const PoolHooks& hooks_;
  std::unique_ptr<Monitor> monitor_;  // guards everything below

  TelemetryAggregator aggregator_;
  std::vector<Member> members_;  // in WorkerRef order: picks are deterministic
  std::size_t idle_ = 0;         // members that are idle
  WaiterQueue waiters_;
  LeaseTable leases_;
  std::map<std::string, WorkerRef> affinity_;
  std::deque<std::string> affinity_order_;  // insertion order, for eviction
  std::vector<CallRecord> call_records_;    // scratch for take_call_records

  bool checkouts_open_ = false;  // rule 3
  std::optional<Error> refusal_;  // rule 3: the breaker is not closed
  bool closed_ = false;          // shutdown began
  bool evicted_ = false;         // a binding was evicted since the flag was cleared
  bool may_grow_ = true;         // a new waiter may have the pool task start a worker
  Instant wake_at_ = Instant::max();  // when the pool task next wakes by itself
};

}  // namespace seedpool::detail
