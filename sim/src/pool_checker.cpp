#include <seedpool/core/assert.hpp>
#include <seedpool/sim/pool_checker.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace seedpool::sim {
namespace {

std::string lane(WorkerRef w) { return fmt::format("worker {}", w.to_string()); }

// The smallest delay the pool's backoff may draw after a failure: the base
// (capped by the max), less the largest jitter share taken off it.
Duration min_restart_backoff(const PoolConfig& c) {
  const std::int64_t base = std::min(c.restart_backoff_base, c.restart_backoff_max).ns();
  const std::int64_t percent = std::min<std::int64_t>(c.restart_backoff_jitter_percent, 100);
  return Duration::from_ns(base / 100 * (100 - percent));
}

// The label of the outcome numbered `index` (seedpool::outcome_index).
std::string_view outcome_of(std::size_t index) { return outcome_label(outcome_at(index)); }

// Faults after which a caller may rightly see protocol_error.
constexpr std::string_view protocol_faults[] = {"fault:call_garbage", "fault:call_truncated", "fault:call_wrong_id",
                                                "fault:init_garbage"};

}  // namespace

PoolChecker::PoolChecker(SimWorld& world, const PoolConfig& config, Timeline& timeline, Coverage& coverage)
    : world_(world),
      config_(config),
      timeline_(timeline),
      coverage_(coverage),
      paths_(coverage, &path_key),
      call_outcomes_(coverage, &call_key),
      checkout_outcomes_(coverage, &checkout_key) {}

OutcomeCounts PoolChecker::to_counts(const OutcomeTally& tally) {
  OutcomeCounts counts;
  for (std::size_t i = 0; i < tally.size(); ++i) {
    if (tally[i] != 0) {
      counts.emplace(std::string(outcome_of(i)), tally[i]);
    }
  }
  return counts;
}

std::string PoolChecker::path_key(std::size_t path) {
  switch (static_cast<Path>(path)) {
    case Path::worker_exit: return "recovery:worker_exit";
    case Path::init_failed: return "recovery:init_failed";
    case Path::init_ok: return "path:init_ok";
    case Path::recycle: return "recovery:recycle";
    case Path::health_failure: return "recovery:health_failure";
  }
  SEEDPOOL_ASSERT_MSG(false, "unknown PoolChecker::Path");
  return {};
}

std::string PoolChecker::call_key(std::size_t outcome) { return fmt::format("call:{}", outcome_of(outcome)); }

std::string PoolChecker::checkout_key(std::size_t outcome) { return fmt::format("checkout:{}", outcome_of(outcome)); }

PoolChecker::WorkerStates::iterator PoolChecker::find_state(WorkerRef worker) {
  return std::find_if(states_.begin(), states_.end(), [worker](const auto& entry) { return entry.first == worker; });
}

PoolChecker::Holders::iterator PoolChecker::find_holder(WorkerRef worker) {
  return std::find_if(holders_.begin(), holders_.end(), [worker](const auto& entry) { return entry.first == worker; });
}

void PoolChecker::violation(std::string_view invariant, const std::string& message) {
  if (!violated_) {
    violated_ = true;
    world_.fail(fmt::format("[{}] {}", invariant, message));
  }
}

void PoolChecker::on_event(const TelemetryEvent& event) {
  switch (event.kind) {
    case TelemetryKind::worker_state: {
      const WorkerRef w = *event.worker;
      const auto state = find_state(w);
      const WorkerState known = state == states_.end() ? WorkerState::dead : state->second;
      if (known != event.from || !is_legal_transition(event.from, event.to)) {
        violation("state-transition", fmt::format("worker {} went {} -> {} but was {}", w.to_string(),
                                                  to_string(event.from), to_string(event.to), to_string(known)));
      }
      if (event.to == WorkerState::starting && last_failure_ &&
          event.at < *last_failure_ + min_restart_backoff(config_)) {
        violation("restart-backoff",
                  fmt::format("worker {} started at {}, only {} ns after the failure at {}: sooner than the "
                              "smallest backoff, {} ns (restart_backoff_base less {}% jitter)",
                              w.to_string(), format_instant(event.at), (event.at - *last_failure_).ns(),
                              format_instant(*last_failure_), min_restart_backoff(config_).ns(),
                              config_.restart_backoff_jitter_percent));
      }
      active_ += is_active(event.to) ? 1U : 0U;
      active_ -= is_active(event.from) ? 1U : 0U;
      if (active_ > config_.size.max) {
        violation("worker-count", fmt::format("{} active workers exceed size.max {}", active_, config_.size.max));
      }
      if (event.to == WorkerState::dead) {
        if (state != states_.end()) {
          states_.erase(state);
        }
        if (timeline_.enabled()) {
          timeline_.end(lane(w), event.at);
        }
      } else {
        if (state != states_.end()) {
          state->second = event.to;
        } else {
          states_.emplace_back(w, event.to);
        }
        if (timeline_.enabled()) {
          timeline_.begin(lane(w), to_string(event.to), event.at);
        }
      }
      break;
    }
    case TelemetryKind::checkout: ++checkouts_[outcome_index(event.error)]; break;
    case TelemetryKind::call: ++calls_[outcome_index(event.error)]; break;
    case TelemetryKind::worker_exit:
      ++exits_;
      if (const auto it = find_state(*event.worker);
          it != states_.end() && (it->second == WorkerState::ready || it->second == WorkerState::busy)) {
        last_failure_ = event.at;  // an unexpected exit: its replacement waits for the backoff
      }
      paths_.increment(static_cast<std::size_t>(Path::worker_exit));
      if (timeline_.enabled()) {
        timeline_.instant(lane(*event.worker), "exit: " + event.detail, event.at);
      }
      break;
    case TelemetryKind::worker_init:
      paths_.increment(static_cast<std::size_t>(event.error ? Path::init_failed : Path::init_ok));
      if (event.error) {
        last_failure_ = event.at;  // an init failure: the next start waits for the backoff
      }
      break;
    case TelemetryKind::worker_recycle: paths_.increment(static_cast<std::size_t>(Path::recycle)); break;
    case TelemetryKind::health_failure:
      paths_.increment(static_cast<std::size_t>(Path::health_failure));
      if (timeline_.enabled()) {
        timeline_.instant(lane(*event.worker), "health failure", event.at);
      }
      break;
    case TelemetryKind::breaker:
      increment(coverage_, fmt::format("recovery:breaker_{}", to_string(event.breaker)));
      timeline_.instant("breaker", to_string(event.breaker), event.at);
      break;
  }
}

void PoolChecker::lease_acquired(std::uint32_t caller, WorkerRef worker, Instant deadline) {
  if (world_.now() > deadline) {
    violation("grant-after-deadline",
              fmt::format("caller {} got worker {} at {} after its deadline {}", caller, worker.to_string(),
                          format_instant(world_.now()), format_instant(deadline)));
  }
  if (const auto it = find_holder(worker); it != holders_.end()) {
    violation("lease-exclusive", fmt::format("worker {} leased to caller {} while caller {} holds it",
                                             worker.to_string(), caller, it->second));
  } else {
    holders_.emplace_back(worker, caller);
  }
}

void PoolChecker::lease_released(std::uint32_t caller, WorkerRef worker) {
  const auto it = find_holder(worker);
  if (it != holders_.end() && it->second == caller) {
    holders_.erase(it);
  }
}

void PoolChecker::call_answered(std::uint32_t caller, std::string_view payload,
                                const Result<std::string>& answer) {
  if (answer.ok()) {
    call_outcomes_.increment(outcome_index(std::nullopt));
    if (answer.value() != payload) {
      violation("reply-mismatch", fmt::format("caller {} sent '{}' and got the reply '{}'", caller, payload,
                                              answer.value()));
    }
    return;
  }
  const ErrorCode code = answer.error().code;
  call_outcomes_.increment(outcome_index(code));
  switch (code) {
    case ErrorCode::protocol_error:
      for (const std::string_view fault : protocol_faults) {
        if (const auto it = coverage_.find(fault); it != coverage_.end() && it->second > 0) {
          return;
        }
      }
      violation("call-outcome", fmt::format("caller {} got a protocol error though no simulated worker broke the "
                                            "protocol in this run: {}",
                                            caller, answer.error().describe()));
      return;
    case ErrorCode::timeout:
    case ErrorCode::worker_crashed:
    case ErrorCode::worker_error:
    case ErrorCode::pool_shutting_down: return;
    case ErrorCode::invalid_argument:
    case ErrorCode::launch_failed:
    case ErrorCode::cancelled:
    case ErrorCode::closed:
    case ErrorCode::pool_saturated:
    case ErrorCode::pool_unavailable:
    case ErrorCode::io_error: break;
  }
  violation("call-outcome", fmt::format("caller {} got an unexpected call error: {}", caller,
                                        answer.error().describe()));
}

void PoolChecker::checkout_answered(const std::optional<ErrorCode>& error) {
  checkout_outcomes_.increment(outcome_index(error));
}

void PoolChecker::expect_recovered(Pool& pool, std::optional<std::size_t> ready, Duration bound) {
  const Instant until = world_.now() + bound;
  PoolStats stats = pool.stats();
  while (true) {
    const bool recovered = (!ready || stats.workers_in(WorkerState::ready) == static_cast<std::int64_t>(*ready)) &&
                           stats.workers_in(WorkerState::busy) == 0 &&
                           stats.workers_in(WorkerState::starting) == 0 &&
                           stats.workers_in(WorkerState::initializing) == 0;
    if (recovered) {
      return;
    }
    if (world_.now() >= until) {
      violation("pool-recovered",
                fmt::format("pool not back to {} ready workers {} after the faults stopped: ready={} busy={} "
                            "starting={} initializing={} stopping={} breaker={}",
                            ready ? std::to_string(*ready) : std::string("any"), format_instant(Instant::zero() + bound), stats.workers_in(WorkerState::ready),
                            stats.workers_in(WorkerState::busy), stats.workers_in(WorkerState::starting),
                            stats.workers_in(WorkerState::initializing), stats.workers_in(WorkerState::stopping),
                            to_string(stats.breaker)));
      return;
    }
    world_.sleep_for(milliseconds(100));
    stats = pool.stats();
  }
}

void PoolChecker::expect_reaped(const SimProcessHost& host) {
  if (host.alive() != 0) {
    std::string pids;
    for (const std::int64_t pid : host.alive_pids()) {
      pids += fmt::format(" {}", pid);
    }
    violation("processes-reaped", fmt::format("{} worker processes still running after shutdown:{}", host.alive(),
                                              pids));
  }
}

void PoolChecker::expect_counts_match(const PoolStats& stats) {
  const OutcomeCounts checkouts = to_counts(checkouts_);
  const OutcomeCounts calls = to_counts(calls_);
  if (stats.checkouts != checkouts || stats.calls != calls || stats.worker_exits != exits_) {
    violation("telemetry-counts",
              fmt::format("aggregator has {} checkouts, {} calls, {} exits; the events say {}, {}, {}",
                          stats.total(stats.checkouts), stats.total(stats.calls), stats.worker_exits,
                          stats.total(checkouts), stats.total(calls), exits_));
  }
}

}  // namespace seedpool::sim
