#pragma once

// Pool: a pool of external worker processes, written once against the World.
//
//   auto pool = Pool::create(world, config).value();
//   if (Status s = pool->start(); !s) { ... s.error().describe() ... }
//   Result<std::string> answer = pool->execute(R"({"op":"add","a":1,"b":2})");
//   Result<Lease> lease = pool->checkout();
//   lease.value().call("first"); lease.value().call("second");
//   lease.value().release();
//   PoolStats stats = pool->stats();
//   pool->shutdown();
//
// One task owns the workers' lives (starts, health checks, recycling,
// restarts, shutdown) and is reached only through its mailbox. Handing
// workers out is done under one lock, by whoever gets there: a checkout that
// finds an idle worker takes it, and a release hands its worker to the
// longest waiting checkout or puts it back, without a trip through that task;
// every grant, expiry and cancel is still decided once, under that lock.
// Workers are started by one task each, never inside the pool loop. Errors are
// returned as Result/Status; nothing here throws for an expected failure.

#include <seedpool/core/pool_config.hpp>
#include <seedpool/core/result.hpp>
#include <seedpool/core/telemetry.hpp>
#include <seedpool/core/time.hpp>
#include <seedpool/core/world.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace seedpool {

namespace detail {
struct PoolShared;
struct PendingState;
class CallLine;
}  // namespace detail

// prefer: the key's worker when it is idle, else any idle worker.
// strict: wait for the key's worker (any worker when the key has none yet).
enum class AffinityMode { prefer, strict };

struct CheckoutOptions {
  std::optional<Instant> deadline;  // default: now + PoolConfig::checkout_timeout
  std::string affinity_key;         // empty: an anonymous checkout
  AffinityMode affinity_mode = AffinityMode::prefer;
};

// Parses a checkout kind as written in configuration or on a command line:
// "anonymous", "affinity:KEY" (prefer) or "affinity-strict:KEY". The error
// names the text and the accepted forms.
Result<CheckoutOptions> parse_checkout_kind(std::string_view text);

class Pool;

// A worker checked out for the caller's exclusive use. Calls go to that one
// worker in order, written by the caller's own task and answered straight to
// it, not through the pool task. Releasing (or destroying) the lease checks the worker back
// in; a worker whose call timed out or failed the protocol is replaced instead.
class Lease {
 public:
  Lease() = default;
  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&& other) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  // Releases the lease if still held. Safe during stack unwinding: it never
  // throws, and does no more than release() does.
  ~Lease();

  // Sends `payload` to the worker and waits for its reply until `deadline`
  // (default: now + call_timeout). Errors: timeout (the worker is killed and
  // replaced: it has a reply in flight), worker_error (the worker answered
  // with an error frame; the worker stays), worker_crashed (exit status and
  // stderr tail), protocol_error, pool_shutting_down, invalid_argument (the
  // lease is no longer held, or the call's frame would exceed
  // PoolConfig::frame_bytes_max: then nothing is sent and the lease and its
  // worker stay as they were). Every call is counted once in the stats under
  // its outcome, refused ones included.
  Result<std::string> call(std::string payload, std::optional<Instant> deadline = {});

  // Checks the worker back in: straight to the longest waiting checkout, or
  // back among the idle workers, when the worker can serve again as it is;
  // otherwise the pool's task decides (a reply still owed, max_calls reached,
  // a lifetime over, shutdown) and the call returns at once. Idempotent.
  void release();

  bool held() const noexcept { return shared_ != nullptr; }
  WorkerRef worker() const noexcept { return worker_; }

 private:
  friend class Pool;
  friend class PendingCheckout;
  Lease(std::shared_ptr<detail::PoolShared> shared, std::uint64_t id, WorkerRef worker,
        std::shared_ptr<detail::CallLine> line);

  std::shared_ptr<detail::PoolShared> shared_;
  std::uint64_t id_ = 0;
  WorkerRef worker_;
  std::shared_ptr<detail::CallLine> line_;  // the worker's calls go straight over it
};

// Cancels one checkout from any task or thread: a copyable handle for
// whoever must give up on a checkout that another task waits for. cancel()
// does what PendingCheckout::cancel() does, and is a no-op once the checkout
// has ended (its wait() returned, it was cancelled, or it was dropped). A
// default-constructed token cancels nothing.
class CheckoutCancelToken {
 public:
  CheckoutCancelToken() = default;
  // Returns true when this call cancelled the checkout; see
  // PendingCheckout::cancel().
  bool cancel() const;
  // The checkout's id (TelemetryEvent::checkout); 0 for a default token.
  std::uint64_t id() const noexcept;

 private:
  friend class PendingCheckout;
  explicit CheckoutCancelToken(std::shared_ptr<detail::PendingState> state) : state_(std::move(state)) {}
  std::shared_ptr<detail::PendingState> state_;
};

// A checkout in progress, owned by the one task that waits for it: it moves
// and does not copy, because wait() must be called by one task only. wait()
// blocks for the grant; cancel() makes wait() return cancelled, and a
// cancel_token() does the same from another task. A grant that crosses a
// cancel goes back to the pool, never to a cancelled caller, whether or not
// wait() is ever called. Dropping a checkout whose wait() has not returned
// cancels it.
class PendingCheckout {
 public:
  PendingCheckout(PendingCheckout&& other) noexcept = default;
  // Drops (and so cancels) the checkout this one held, then takes `other`'s.
  PendingCheckout& operator=(PendingCheckout&& other) noexcept;
  PendingCheckout(const PendingCheckout&) = delete;
  PendingCheckout& operator=(const PendingCheckout&) = delete;
  // Cancels the checkout unless it has ended. Never throws; sends at most
  // one message.
  ~PendingCheckout();

  // Waits for the grant until the checkout's deadline.
  Result<Lease> wait();
  // Cancels the checkout; idempotent; a no-op once wait() has returned.
  // Returns true when this call cancelled it: wait() then returns cancelled,
  // and a grant is never handed to the caller. False when the checkout had
  // ended first: wait() returned, or the pool answered it with a failure
  // (timeout, pool_unavailable, ...), which wait() returns.
  bool cancel();
  // A handle that cancels this checkout from another task or thread.
  CheckoutCancelToken cancel_token() const;
  // The checkout's id, as telemetry reports it (TelemetryEvent::checkout).
  std::uint64_t id() const noexcept;

 private:
  friend class Pool;
  explicit PendingCheckout(std::shared_ptr<detail::PendingState> state) : state_(std::move(state)) {}
  void drop() noexcept;
  std::shared_ptr<detail::PendingState> state_;  // null once moved from
};

struct ExecuteOptions {
  std::optional<Instant> deadline;  // for checkout and call together; default: each its own timeout
  std::string affinity_key;
  AffinityMode affinity_mode = AffinityMode::prefer;
};

struct PoolHooks {
  TelemetrySink* telemetry = nullptr;  // in addition to the built-in aggregator
  LogSink* log = nullptr;              // every worker stderr line
};

class Pool {
 public:
  // Validates `config` and creates a pool that has not started yet. The World
  // and the hooks must outlive the pool.
  static Result<std::unique_ptr<Pool>> create(World& world, PoolConfig config, PoolHooks hooks = {});

  // Shuts the pool down if that has not happened yet.
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Starts the pool task and, in eager mode, size.min workers concurrently,
  // then waits until min_ready of them are ready. Fails when the deadline
  // (default: now + init_timeout) passes first or the circuit breaker opens,
  // naming every worker that failed or is still starting, each with its own
  // stderr tail in the message (the last failure's is the error's
  // stderr_tail, which describe() prints right after it). In lazy
  // mode it returns once the pool task runs. Callable once; after shutdown()
  // it starts nothing and fails with pool_shutting_down.
  Status start(std::optional<Instant> deadline = {});

  // Requests a worker and waits for it. Errors: timeout, cancelled,
  // pool_saturated (waiters_max reached), pool_unavailable (the breaker is
  // not closed; carries the last failure and its stderr tail),
  // pool_shutting_down. A checkout an idle worker can serve at once is
  // served, whatever the queue or the breaker: only one that would have to
  // wait is refused pool_saturated or pool_unavailable.
  Result<Lease> checkout(CheckoutOptions options = {});

  // Like checkout, but returns at once with a handle that can be cancelled.
  Result<PendingCheckout> begin_checkout(CheckoutOptions options = {});

  // checkout + call + release.
  Result<std::string> execute(std::string payload, ExecuteOptions options = {});

  // A snapshot of the counters and histograms; also after shutdown.
  PoolStats stats();

  // Stops accepting work (new checkouts fail with pool_shutting_down, queued
  // waiters are answered), lets leases finish until the grace period ends
  // (default: now + shutdown_grace), then terminates and finally kills every
  // worker's process group, and returns once every process is reaped.
  // Idempotent; concurrent callers all wait for the end. A later call with
  // an earlier grace deadline ends the grace then (a second interrupt);
  // one with a later deadline changes nothing.
  Status shutdown(std::optional<Instant> grace_deadline = {});

  const PoolConfig& config() const noexcept;

 private:
  explicit Pool(std::shared_ptr<detail::PoolShared> shared) : shared_(std::move(shared)) {}
  std::shared_ptr<detail::PoolShared> shared_;
  // created -> started (start) -> stopped_after_start (shutdown), or
  // created -> stopped_before_start (shutdown). One atomic, so that start()
  // and shutdown() racing on two threads agree on which came first.
  enum Phase : int { created, started, stopped_before_start, stopped_after_start };
  bool task_started() const noexcept {
    const int p = phase_.load();
    return p == started || p == stopped_after_start;
  }
  std::atomic<int> phase_{created};
};

}  // namespace seedpool
