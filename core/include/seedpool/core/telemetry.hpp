#pragma once

// Telemetry: the pool reports every step as a structured event to a sink. A
// built-in aggregator turns events into counters and latency histograms,
// readable from code (Pool::stats()) and exportable as Prometheus text.
//
// Metric names (all prefixed seedpool_, labelled with pool="<name>"):
//   checkouts_total{outcome}        checkout_wait_seconds (histogram)
//   calls_total{outcome}            call_duration_seconds (histogram)
//   worker_inits_total{outcome}     worker_init_seconds (histogram)
//   worker_exits_total  worker_recycles_total  health_failures_total
//   breaker_transitions_total{state}  breaker_open (gauge)  workers{state} (gauge)
// outcome is "ok" or an ErrorCode name such as "timeout".

#include <seedpool/core/circuit_breaker.hpp>
#include <seedpool/core/result.hpp>
#include <seedpool/core/time.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace seedpool {

// A worker is a slot (a position in the pool) and a generation (which
// process in that slot's history), e.g. "w2.5".
struct WorkerRef {
  std::uint32_t slot = 0;
  std::uint64_t generation = 0;

  std::string to_string() const;
  friend auto operator<=>(const WorkerRef&, const WorkerRef&) = default;
};

enum class WorkerState : std::uint8_t { starting, initializing, ready, busy, stopping, dead };
inline constexpr std::size_t worker_state_count = 6;
std::string_view to_string(WorkerState state) noexcept;

// Starting, initializing, ready or busy: a worker counted against size.max.
bool is_active(WorkerState state) noexcept;

// The worker life cycle: starting -> initializing -> ready <-> busy ->
// stopping -> dead, with shortcuts to stopping and dead where a process can
// fail. A new worker enters from dead as starting (as telemetry reports it).
bool is_legal_transition(WorkerState from, WorkerState to) noexcept;

enum class TelemetryKind : std::uint8_t {
  checkout,        // duration: wait; error: why it failed
  call,            // duration: latency; error: why it failed
  worker_init,     // duration: launch to ready; error: why init failed
  worker_state,    // from -> to; a new worker comes from dead
  worker_exit,     // detail: exit status
  worker_recycle,  // detail: why (max_calls, max_lifetime)
  health_failure,  // detail: what was missed
  breaker,         // breaker: the new state; detail: the last failure
  // The steps a checker needs to follow the pool's promises (a reference
  // model runs on them in simulation); counted nowhere else.
  checkout_request,   // the pool took a checkout: checkout, deadline, detail: affinity key
  checkout_returned,  // a granted checkout whose caller had already gone (cancel or
                      // deadline) came back; error: cancelled or timeout. The
                      // aggregator moves the grant's count from ok to that outcome.
  health_ping,        // a ping was sent to the worker
  health_pong,        // the worker answered its ping
  pool_shutdown,      // shutdown began; deadline: the end of the grace period
};
std::string_view to_string(TelemetryKind kind) noexcept;

// Who made a step. Callers hand workers to each other without the pool's
// task: a checkout that finds an idle worker takes it, and a release hands
// its worker to the next waiter or puts it back among the idle ones. Those
// steps (checkout_request, checkout, checkout_returned, worker_state ready
// <-> busy, and the call records a release reports) say which caller made
// them; every other event is the pool task's.
enum class StepBy : std::uint8_t {
  pool_task,
  checkout,  // a caller's checkout
  release,   // a caller's release of its lease
};
std::string_view to_string(StepBy by) noexcept;

struct TelemetryEvent {
  TelemetryKind kind = TelemetryKind::checkout;
  Instant at;
  Duration duration;
  std::optional<ErrorCode> error;  // nullopt: success
  std::optional<WorkerRef> worker;
  WorkerState from = WorkerState::starting;
  WorkerState to = WorkerState::starting;
  BreakerState breaker = BreakerState::closed;
  std::string detail;
  std::uint64_t checkout = 0;  // checkout and checkout_* events: the checkout's id (0: none)
  Instant deadline;            // checkout_request: the checkout's; pool_shutdown: the grace period's
  bool affinity_strict = false;  // checkout_request with an affinity key: strict mode
  StepBy by = StepBy::pool_task;
};

// Receives every telemetry event, one at a time and in the order of the
// steps they report, under the lock that hands workers out: from the pool's
// own task, or from a caller's task or thread (see StepBy). An implementation
// needs no locking of its own; it must not block, since checkouts and
// releases wait for it, and must not call back into the pool.
class TelemetrySink {
 public:
  virtual ~TelemetrySink() = default;
  virtual void on_event(const TelemetryEvent& event) = 0;
};

// Receives every line a worker writes to stderr, tagged with the worker.
// Called from the pool's task only; like TelemetrySink, it must not block or
// call back into the pool.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void on_stderr(std::string_view pool, WorkerRef worker, std::string_view line) = 0;
};

// A latency histogram with fixed bucket bounds from 100 us to 60 s.
class Histogram {
 public:
  static constexpr std::array<std::int64_t, 18> bounds_ns = {
      100'000,       250'000,       500'000,        1'000'000,      2'500'000,      5'000'000,
      10'000'000,    25'000'000,    50'000'000,     100'000'000,    250'000'000,    500'000'000,
      1'000'000'000, 2'500'000'000, 5'000'000'000,  10'000'000'000, 30'000'000'000, 60'000'000'000};

  void observe(Duration d) noexcept;
  std::uint64_t count() const noexcept { return count_; }
  std::int64_t sum_ns() const noexcept { return sum_ns_; }
  // Observations <= bounds_ns[i] (cumulative), for i < bounds_ns.size().
  std::uint64_t cumulative(std::size_t i) const noexcept;
  // The smallest bucket bound at or above the q-th quantile (q in 1..99), or
  // Duration::max() when it lies beyond the last bound.
  Duration quantile_bound(unsigned q) const noexcept;

 private:
  std::array<std::uint64_t, bounds_ns.size() + 1> buckets_{};
  std::uint64_t count_ = 0;
  std::int64_t sum_ns_ = 0;
};

// Keyed by outcome; transparent, so lookups by string_view allocate nothing.
using OutcomeCounts = std::map<std::string, std::uint64_t, std::less<>>;

// Adds one to `key`'s count; allocates only the first time a key is seen.
void increment(OutcomeCounts& counts, std::string_view key);

struct PoolStats {
  std::string pool;
  OutcomeCounts checkouts;
  OutcomeCounts calls;
  // Of `calls`: those refused on a lease after the pool task had ended,
  // counted in the final stats without a telemetry event.
  OutcomeCounts calls_after_shutdown;
  OutcomeCounts inits;
  std::map<std::string, std::uint64_t, std::less<>> breaker_transitions;
  std::uint64_t worker_exits = 0;
  std::uint64_t recycles = 0;
  std::uint64_t health_failures = 0;
  Histogram checkout_wait;
  Histogram call_duration;
  Histogram init_duration;
  std::array<std::int64_t, worker_state_count> workers{};  // live workers by WorkerState (dead stays 0)
  BreakerState breaker = BreakerState::closed;

  std::uint64_t total(const OutcomeCounts& counts) const;
  std::uint64_t count(const OutcomeCounts& counts, std::string_view outcome) const;
  std::int64_t workers_in(WorkerState state) const { return workers[static_cast<std::size_t>(state)]; }

  // The Prometheus text exposition format (version 0.0.4).
  std::string to_prometheus() const;
};

// Outcomes by number, for tables indexed by outcome: success is 0, then each
// ErrorCode in declaration order (io_error is the last).
inline constexpr std::size_t outcome_count = static_cast<std::size_t>(ErrorCode::io_error) + 2;
constexpr std::size_t outcome_index(const std::optional<ErrorCode>& error) noexcept {
  return error.has_value() ? static_cast<std::size_t>(*error) + 1 : 0;
}
// The outcome numbered `index` (< outcome_count): nullopt for success.
constexpr std::optional<ErrorCode> outcome_at(std::size_t index) noexcept {
  return index == 0 ? std::nullopt : std::optional<ErrorCode>(static_cast<ErrorCode>(index - 1));
}

// The built-in sink: folds events into PoolStats.
class TelemetryAggregator final : public TelemetrySink {
 public:
  explicit TelemetryAggregator(std::string pool_name) { stats_.pool = std::move(pool_name); }
  // Not copyable: the outcome slots point into this aggregator's own maps.
  TelemetryAggregator(const TelemetryAggregator&) = delete;
  TelemetryAggregator& operator=(const TelemetryAggregator&) = delete;
  void on_event(const TelemetryEvent& event) override;
  const PoolStats& stats() const noexcept { return stats_; }

 private:
  // Outcomes of one family (checkouts, calls or inits): the first event of
  // an outcome inserts its key into the family's map, and the counter it
  // inserted is remembered here, by outcome_index, so that later events skip
  // the string-keyed lookup. Map nodes never move, and only on_event changes
  // the maps.
  using OutcomeSlots = std::array<std::uint64_t*, outcome_count>;
  static void count(OutcomeCounts& counts, OutcomeSlots& slots, const std::optional<ErrorCode>& error);

  PoolStats stats_;
  OutcomeSlots checkout_slots_{};
  OutcomeSlots call_slots_{};
  OutcomeSlots init_slots_{};
};

// "ok" or the error code's name.
std::string_view outcome_label(const std::optional<ErrorCode>& error) noexcept;

}  // namespace seedpool
