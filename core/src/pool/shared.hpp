#pragma once

// Internal to the pool: the state shared between the public handles (Pool,
// Lease, PendingCheckout), the pool task and the worker tasks (among it the
// shelf, where workers are handed out), and the messages of the pool task's
// mailbox.

#include <seedpool/core/channel.hpp>
#include <seedpool/core/pool.hpp>
#include <seedpool/core/process.hpp>

#include <fmt/format.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <variant>

namespace seedpool::detail {

// A duration as error messages show it: "1500 ms".
inline std::string ms(Duration d) { return fmt::format("{} ms", d.ns() / 1'000'000); }

class CallLine;

// A granted checkout: the worker and the line its calls take.
struct Grant {
  WorkerRef worker;
  std::shared_ptr<CallLine> line;
};
using CheckoutReply = Result<Grant>;
using CallReply = Result<std::string>;

// How a checkout ended for its caller, settled once: by the caller's handle
// (the grant taken, a cancel, the deadline), or by the pool as it answers
// with a failure. The pool counts a checkout whose caller gave up first under
// what the caller saw.
enum CheckoutPhase : int { checkout_pending, checkout_answered, checkout_cancelled, checkout_expired };

// A checkout's reply channel and its phase, in one allocation.
struct CheckoutReplyBox {
  explicit CheckoutReplyBox(World& world) : channel(world, "checkout-reply", 1) {}
  Channel<CheckoutReply> channel;
  std::atomic<int> phase{checkout_pending};
};

// Caller -> pool.
struct CheckoutRequest {
  std::uint64_t id = 0;  // becomes the lease id when granted
  Instant deadline;
  Instant requested_at;
  std::string affinity_key;
  AffinityMode affinity_mode = AffinityMode::prefer;
  std::shared_ptr<Channel<CheckoutReply>> reply;
  std::shared_ptr<std::atomic<int>> phase;  // a CheckoutPhase, see Waiter::phase
};
struct CheckoutCancel {
  std::uint64_t id = 0;
  bool expired = false;  // sent because the caller's deadline passed, not by cancel()
};
// Calls travel on the worker's CallLine; the pool hears of them only when
// something must be done.
struct CallAbandon {  // the caller's deadline passed with the call in flight
  std::uint64_t lease_id = 0;
};
struct CallUnsent {  // the worker did not accept the call frame
  std::uint64_t lease_id = 0;
  Error error;
};
struct CallRefused {  // the line refused a call before it was written: counted, nothing else
  std::uint64_t lease_id = 0;
  WorkerRef worker;
  ErrorCode code = ErrorCode::worker_crashed;
};
struct CallsReport {  // the line's call records want taking
  std::uint64_t lease_id = 0;
};
struct Checkin {  // the shelf left this lease's release to the pool task
  std::uint64_t lease_id = 0;
};
// A caller queued a checkout on the shelf that the pool task must look at:
// it may start a worker for it, or it expires before the pool task would
// next wake by itself.
struct Wake {};
struct StatsRequest {
  std::shared_ptr<Channel<PoolStats>> reply;
};
struct StartRequest {
  std::size_t min_ready = 0;
  Instant deadline;
  std::shared_ptr<Channel<Status>> reply;
};
struct ShutdownRequest {
  Instant grace_deadline;
  std::shared_ptr<Channel<Status>> reply;
};

// Worker task -> pool.
struct WorkerLaunched {
  WorkerRef worker;
  std::shared_ptr<Process> process;
};
struct WorkerLaunchFailed {
  WorkerRef worker;
  Error error;
};
struct WorkerReady {
  WorkerRef worker;
};
struct WorkerInitFailed {
  WorkerRef worker;
  Error error;
};
struct WorkerEvent {  // everything the process emits besides the handshake
  WorkerRef worker;
  ProcessEvent event;
};

// Every message the pool task handles. The pool visits it with one overload
// per alternative and no catch-all, so a new message type that is not handled
// is a compile error.
using Message = std::variant<CheckoutRequest, CheckoutCancel, CallAbandon, CallUnsent, CallRefused, CallsReport, Checkin,
                             Wake, StatsRequest, StartRequest, ShutdownRequest, WorkerLaunched, WorkerLaunchFailed,
                             WorkerReady, WorkerInitFailed, WorkerEvent>;

class Shelf;

struct PoolShared {
  PoolShared(World& w, PoolConfig c, PoolHooks h);  // in shelf.cpp, where Shelf is complete
  ~PoolShared();
  PoolShared(const PoolShared&) = delete;
  PoolShared& operator=(const PoolShared&) = delete;

  World& world;
  const PoolConfig config;
  const PoolHooks hooks;
  Channel<Message> mailbox;
  std::atomic<std::uint64_t> next_id{1};  // checkout (and so lease) ids

  // Written by the pool task as it ends, read by stats() afterwards.
  std::unique_ptr<Monitor> final_stats_monitor;
  std::optional<PoolStats> final_stats;
  bool final_stats_complete = false;  // the mailbox is drained: nothing more reaches the pool task
  OutcomeCounts late_calls;           // refused after the close, before the final snapshot

  // The pool task, as it ends: a snapshot of its stats; `complete` once its
  // mailbox is drained (late calls counted so far are added then).
  void set_final_stats(PoolStats stats, bool complete) {
    MonitorLock lock(*final_stats_monitor);
    if (complete) {
      for (const auto& [outcome, n] : late_calls) {
        stats.calls[outcome] += n;
        stats.calls_after_shutdown[outcome] += n;
      }
      late_calls.clear();
    }
    final_stats = std::move(stats);
    final_stats_complete = complete;
  }

  // A call refused after the pool task stopped taking messages is still
  // counted once, in the final stats.
  void count_late_call(ErrorCode code) {
    MonitorLock lock(*final_stats_monitor);
    if (final_stats_complete) {
      increment(final_stats->calls, to_string(code));
      increment(final_stats->calls_after_shutdown, to_string(code));
    } else {
      increment(late_calls, to_string(code));
    }
  }

  std::uint64_t new_id() { return next_id.fetch_add(1, std::memory_order_relaxed); }

  // Sends a message that must arrive even after the caller's deadline (a
  // cancel, a checkin). Returns false when the pool has finished.
  bool post(Message message) { return mailbox.send(std::move(message)) == ChannelStatus::ok; }

  // Where workers are handed out; see shelf.hpp.
  Shelf& shelf() noexcept { return *shelf_; }

 private:
  std::unique_ptr<Shelf> shelf_;
};

// The pool task's body.
void run_pool_task(const std::shared_ptr<PoolShared>& shared);

// A worker task's body: launch, handshake, then forward events until exit.
void run_worker_task(const std::shared_ptr<PoolShared>& shared, WorkerRef worker, std::uint64_t uid);

}  // namespace seedpool::detail
