#include <seedpool/core/assert.hpp>
#include <seedpool/core/telemetry.hpp>

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>

namespace seedpool {

// Compiled format: worker names are built on every launch, error and
// trace label, and the run-time format parser was most of their cost.
std::string WorkerRef::to_string() const { return fmt::format(FMT_COMPILE("w{}.{}"), slot, generation); }

std::string_view to_string(WorkerState state) noexcept {
  switch (state) {
    case WorkerState::starting: return "starting";
    case WorkerState::initializing: return "initializing";
    case WorkerState::ready: return "ready";
    case WorkerState::busy: return "busy";
    case WorkerState::stopping: return "stopping";
    case WorkerState::dead: return "dead";
  }
  return "unknown";
}

bool is_active(WorkerState state) noexcept {
  return state == WorkerState::starting || state == WorkerState::initializing || state == WorkerState::ready ||
         state == WorkerState::busy;
}

bool is_legal_transition(WorkerState from, WorkerState to) noexcept {
  switch (from) {
    case WorkerState::starting:
      return to == WorkerState::initializing || to == WorkerState::stopping || to == WorkerState::dead;
    case WorkerState::initializing: return to == WorkerState::ready || to == WorkerState::stopping;
    case WorkerState::ready: return to == WorkerState::busy || to == WorkerState::stopping || to == WorkerState::dead;
    case WorkerState::busy: return to == WorkerState::ready || to == WorkerState::stopping || to == WorkerState::dead;
    case WorkerState::stopping: return to == WorkerState::dead;
    case WorkerState::dead: return to == WorkerState::starting;
  }
  return false;
}

void increment(OutcomeCounts& counts, std::string_view key) {
  const auto it = counts.find(key);
  if (it != counts.end()) {
    ++it->second;
  } else {
    counts.emplace(std::string(key), 1);
  }
}

std::string_view to_string(TelemetryKind kind) noexcept {
  switch (kind) {
    case TelemetryKind::checkout: return "checkout";
    case TelemetryKind::call: return "call";
    case TelemetryKind::worker_init: return "worker_init";
    case TelemetryKind::worker_state: return "worker_state";
    case TelemetryKind::worker_exit: return "worker_exit";
    case TelemetryKind::worker_recycle: return "worker_recycle";
    case TelemetryKind::health_failure: return "health_failure";
    case TelemetryKind::breaker: return "breaker";
    case TelemetryKind::checkout_request: return "checkout_request";
    case TelemetryKind::checkout_returned: return "checkout_returned";
    case TelemetryKind::health_ping: return "health_ping";
    case TelemetryKind::health_pong: return "health_pong";
    case TelemetryKind::pool_shutdown: return "pool_shutdown";
  }
  return "unknown";
}

std::string_view to_string(StepBy by) noexcept {
  switch (by) {
    case StepBy::pool_task: return "pool_task";
    case StepBy::checkout: return "checkout";
    case StepBy::release: return "release";
  }
  return "unknown";
}

std::string_view outcome_label(const std::optional<ErrorCode>& error) noexcept {
  return error.has_value() ? to_string(*error) : std::string_view("ok");
}

void Histogram::observe(Duration d) noexcept {
  const std::int64_t ns = std::max<std::int64_t>(d.ns(), 0);
  const auto it = std::lower_bound(bounds_ns.begin(), bounds_ns.end(), ns);
  ++buckets_[static_cast<std::size_t>(it - bounds_ns.begin())];
  ++count_;
  sum_ns_ = Duration::saturating_add(sum_ns_, ns);
}

std::uint64_t Histogram::cumulative(std::size_t i) const noexcept {
  std::uint64_t total = 0;
  for (std::size_t b = 0; b <= i && b < buckets_.size(); ++b) {
    total += buckets_[b];
  }
  return total;
}

Duration Histogram::quantile_bound(unsigned q) const noexcept {
  SEEDPOOL_ASSERT(q >= 1 && q <= 99);
  const std::uint64_t rank = (count_ * q + 99) / 100;
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < bounds_ns.size(); ++b) {
    seen += buckets_[b];
    if (seen >= rank && rank > 0) {
      return Duration::from_ns(bounds_ns[b]);
    }
  }
  return Duration::max();
}

std::uint64_t PoolStats::total(const OutcomeCounts& counts) const {
  std::uint64_t sum = 0;
  for (const auto& [_, n] : counts) {
    sum += n;
  }
  return sum;
}

std::uint64_t PoolStats::count(const OutcomeCounts& counts, std::string_view outcome) const {
  const auto it = counts.find(outcome);
  return it == counts.end() ? 0 : it->second;
}

void TelemetryAggregator::count(OutcomeCounts& counts, OutcomeSlots& slots, const std::optional<ErrorCode>& error) {
  const std::size_t index = outcome_index(error);
  SEEDPOOL_ASSERT(index < slots.size());
  std::uint64_t*& slot = slots[index];
  if (slot == nullptr) {
    const std::string_view outcome = outcome_label(error);
    SEEDPOOL_ASSERT(!counts.contains(outcome));
    slot = &counts.emplace(std::string(outcome), 0).first->second;
  }
  ++*slot;
}

void TelemetryAggregator::on_event(const TelemetryEvent& event) {
  switch (event.kind) {
    case TelemetryKind::checkout:
      count(stats_.checkouts, checkout_slots_, event.error);
      stats_.checkout_wait.observe(event.duration);
      break;
    case TelemetryKind::call:
      count(stats_.calls, call_slots_, event.error);
      stats_.call_duration.observe(event.duration);
      break;
    case TelemetryKind::worker_init:
      count(stats_.inits, init_slots_, event.error);
      stats_.init_duration.observe(event.duration);
      break;
    case TelemetryKind::worker_state:
      // A new worker arrives from dead; dead workers are not counted.
      if (event.from != WorkerState::dead) {
        --stats_.workers[static_cast<std::size_t>(event.from)];
      }
      if (event.to != WorkerState::dead) {
        ++stats_.workers[static_cast<std::size_t>(event.to)];
      }
      break;
    case TelemetryKind::worker_exit: ++stats_.worker_exits; break;
    case TelemetryKind::worker_recycle: ++stats_.recycles; break;
    case TelemetryKind::health_failure: ++stats_.health_failures; break;
    case TelemetryKind::breaker:
      increment(stats_.breaker_transitions, to_string(event.breaker));
      stats_.breaker = event.breaker;
      break;
    case TelemetryKind::checkout_returned: {
      // The grant was counted as ok; the caller saw the error instead.
      std::uint64_t*& ok = checkout_slots_[outcome_index(std::nullopt)];
      SEEDPOOL_ASSERT(ok != nullptr && *ok > 0);
      --*ok;
      count(stats_.checkouts, checkout_slots_, event.error);
      break;
    }
    case TelemetryKind::checkout_request:
    case TelemetryKind::health_ping:
    case TelemetryKind::health_pong:
    case TelemetryKind::pool_shutdown: break;
  }
}

namespace {

// Seconds as an exact decimal, from integer nanoseconds.
std::string seconds_text(std::int64_t ns) {
  std::string text = fmt::format("{}.{:09}", ns / 1'000'000'000, ns % 1'000'000'000);
  while (text.back() == '0') {
    text.pop_back();
  }
  if (text.back() == '.') {
    text.pop_back();
  }
  return text;
}

void counter_family(std::string& out, std::string_view pool, std::string_view name, std::string_view help,
                    std::string_view label, const OutcomeCounts& values) {
  out += fmt::format("# HELP seedpool_{} {}\n# TYPE seedpool_{} counter\n", name, help, name);
  for (const auto& [key, value] : values) {
    out += fmt::format("seedpool_{}{{pool=\"{}\",{}=\"{}\"}} {}\n", name, pool, label, key, value);
  }
}

void counter(std::string& out, std::string_view pool, std::string_view name, std::string_view help,
             std::uint64_t value) {
  out += fmt::format("# HELP seedpool_{} {}\n# TYPE seedpool_{} counter\nseedpool_{}{{pool=\"{}\"}} {}\n", name, help,
                     name, name, pool, value);
}

void histogram(std::string& out, std::string_view pool, std::string_view name, std::string_view help,
               const Histogram& h) {
  out += fmt::format("# HELP seedpool_{} {}\n# TYPE seedpool_{} histogram\n", name, help, name);
  for (std::size_t i = 0; i < Histogram::bounds_ns.size(); ++i) {
    out += fmt::format("seedpool_{}_bucket{{pool=\"{}\",le=\"{}\"}} {}\n", name, pool,
                       seconds_text(Histogram::bounds_ns[i]), h.cumulative(i));
  }
  out += fmt::format("seedpool_{}_bucket{{pool=\"{}\",le=\"+Inf\"}} {}\n", name, pool, h.count());
  out += fmt::format("seedpool_{}_sum{{pool=\"{}\"}} {}\n", name, pool, seconds_text(h.sum_ns()));
  out += fmt::format("seedpool_{}_count{{pool=\"{}\"}} {}\n", name, pool, h.count());
}

}  // namespace

std::string PoolStats::to_prometheus() const {
  std::string out;
  counter_family(out, pool, "checkouts_total", "Checkouts by outcome.", "outcome", checkouts);
  histogram(out, pool, "checkout_wait_seconds", "Time from checkout request to grant or failure.", checkout_wait);
  counter_family(out, pool, "calls_total", "Calls by outcome.", "outcome", calls);
  histogram(out, pool, "call_duration_seconds", "Call latency.", call_duration);
  counter_family(out, pool, "worker_inits_total", "Worker starts by outcome.", "outcome", inits);
  histogram(out, pool, "worker_init_seconds", "Time from launch to ready.", init_duration);
  counter(out, pool, "worker_exits_total", "Worker processes that exited.", worker_exits);
  counter(out, pool, "worker_recycles_total", "Workers recycled after max_calls or max_lifetime.", recycles);
  counter(out, pool, "health_failures_total", "Missed health-check pongs.", health_failures);
  counter_family(out, pool, "breaker_transitions_total", "Circuit breaker state changes.", "state",
                 breaker_transitions);
  out += fmt::format("# HELP seedpool_breaker_open Whether the circuit breaker is open.\n"
                     "# TYPE seedpool_breaker_open gauge\nseedpool_breaker_open{{pool=\"{}\"}} {}\n",
                     pool, breaker == BreakerState::open ? 1 : 0);
  out += "# HELP seedpool_workers Workers by state.\n# TYPE seedpool_workers gauge\n";
  for (std::size_t i = 0; i < worker_state_count; ++i) {
    out += fmt::format("seedpool_workers{{pool=\"{}\",state=\"{}\"}} {}\n", pool,
                       to_string(static_cast<WorkerState>(i)), workers[i]);
  }
  return out;
}

}  // namespace seedpool
