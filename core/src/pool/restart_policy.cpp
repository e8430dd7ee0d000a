// When the pool may start a worker after failures; see restart_policy.hpp.

#include "restart_policy.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace seedpool::detail {

void Backoff::failed(Instant now, const PoolConfig& config, const RandomBelow& random_below) {
  ++failures_;
  next_start_at_ = now + delay(config, failures_, random_below);
  SEEDPOOL_ASSERT(next_start_at_ >= now);
}

Duration Backoff::delay(const PoolConfig& config, std::uint32_t failures, const RandomBelow& random_below) {
  SEEDPOOL_ASSERT(failures >= 1);
  const std::uint32_t doublings = std::min(failures - 1, doublings_max);
  Duration delay = config.restart_backoff_base * (std::int64_t{1} << doublings);
  delay = std::min(delay, config.restart_backoff_max);
  const auto jitter_ns = delay.ns() / 100 * config.restart_backoff_jitter_percent;
  if (jitter_ns > 0) {
    const std::uint64_t jitter = random_below(static_cast<std::uint64_t>(jitter_ns) + 1);
    delay = delay - Duration::from_ns(static_cast<std::int64_t>(jitter));
  }
  SEEDPOOL_ASSERT(delay >= Duration::zero() && delay <= config.restart_backoff_max);
  return delay;
}

RestartPolicy::RestartPolicy(const PoolConfig& config, RandomBelow random_below, Instant now)
    : config_(config),
      random_below_(std::move(random_below)),
      breaker_(config.breaker_failures, config.breaker_window, config.breaker_cooldown),
      backoff_(now) {
  SEEDPOOL_ASSERT(random_below_ != nullptr);
}

bool RestartPolicy::start_failed(std::uint32_t slot, Instant now, const Error& error) {
  check_slot(slot);
  recent_failures_.push_back(error);
  if (recent_failures_.size() > recent_failures_max) {
    recent_failures_.pop_front();
  }
  backoff_.failed(now, config_, random_below_);
  probe_started_ = false;
  return breaker_.record_failure(now);
}

// Only a failed start counts toward the breaker: a worker that served and
// then died says nothing about whether the next one can start.
void RestartPolicy::serving_exited(std::uint32_t slot, Instant now) {
  check_slot(slot);
  backoff_.failed(now, config_, random_below_);
}

bool RestartPolicy::ready(std::uint32_t slot) {
  check_slot(slot);
  backoff_.reset();
  probe_started_ = false;
  return breaker_.record_success();
}

bool RestartPolicy::poll(Instant now) { return breaker_.poll(now); }

bool RestartPolicy::may_start(std::uint32_t slot, Instant now) const {
  check_slot(slot);
  if (now < backoff_.next_start_at()) {
    return false;
  }
  switch (breaker_.state()) {
    case BreakerState::closed: return true;
    case BreakerState::half_open: return !probe_started_;
    case BreakerState::open: return false;
  }
  SEEDPOOL_ASSERT_MSG(false, "unknown BreakerState");
  return false;
}

void RestartPolicy::starting(std::uint32_t slot, Instant now) {
  SEEDPOOL_ASSERT(may_start(slot, now));
  if (breaker_.state() == BreakerState::half_open) {
    probe_started_ = true;
  }
}

Error RestartPolicy::unavailable() const {
  const Error* last = recent_failures_.empty() ? nullptr : &recent_failures_.back();
  return Error{ErrorCode::pool_unavailable,
               fmt::format("pool '{}' is unavailable: the circuit breaker is {} after {} failed worker starts "
                           "within {}; last failure: {}",
                           config_.name, to_string(breaker_.state()), config_.breaker_failures,
                           ms(config_.breaker_window), last ? last->message : "none"),
               last ? last->stderr_tail : std::string()};
}

void RestartPolicy::check_slot(std::uint32_t slot) const {
  SEEDPOOL_ASSERT_MSG(slot < config_.size.max, "a worker slot beyond size.max");
}

}  // namespace seedpool::detail
