// When the pool may start a worker after failures; see restart_policy.hpp.

#include "restart_policy.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <utility>

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
      slots_(config.size.max, Backoff(now)) {
  SEEDPOOL_ASSERT(random_below_ != nullptr);
}

bool RestartPolicy::failed(Backoff& slot, Instant now, const Error& error) {
  recent_failures_.push_back(error);
  ++failures_recorded_;
  if (recent_failures_.size() > recent_failures_max) {
    recent_failures_.pop_front();
  }
  slot.failed(now, config_, random_below_);
  probe_started_ = false;
  return breaker_.record_failure(now);
}

bool RestartPolicy::start_failed(std::uint32_t index, Instant now, const Error& error) {
  return failed(slot(index), now, error);
}

bool RestartPolicy::ready(std::uint32_t index) {
  (void)slot(index);
  probe_started_ = false;
  return breaker_.record_success();
}

void RestartPolicy::stopped(std::uint32_t index, Instant ready_at, Instant now) {
  if (now - ready_at >= config_.ready_exit_window) {
    slot(index).reset();
  }
}

bool RestartPolicy::exited(std::uint32_t index, Instant ready_at, Instant now, const Error& error) {
  Backoff& backoff = slot(index);
  if (now - ready_at >= config_.ready_exit_window) {
    backoff.reset();  // it served: the slot's run of failures is over
    return false;
  }
  Error early = error;
  early.message = fmt::format("{}, {} after ready (within ready_exit_window {}: a failed start)", error.message,
                              ms(now - ready_at), ms(config_.ready_exit_window));
  return failed(backoff, now, early);
}

bool RestartPolicy::poll(Instant now) { return breaker_.poll(now); }

bool RestartPolicy::may_start(std::uint32_t index, Instant now) const {
  if (now < slot(index).next_start_at()) {
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

void RestartPolicy::starting(std::uint32_t index, Instant now) {
  SEEDPOOL_ASSERT(may_start(index, now));
  if (breaker_.state() == BreakerState::half_open) {
    probe_started_ = true;
  }
}

Instant RestartPolicy::next_start_after(Instant now) const noexcept {
  Instant next = Instant::max();
  for (const Backoff& backoff : slots_) {
    if (backoff.next_start_at() > now) {
      next = std::min(next, backoff.next_start_at());
    }
  }
  return next;
}

std::uint32_t RestartPolicy::failures(std::uint32_t index) const { return slot(index).failures(); }

Error RestartPolicy::unavailable() const {
  if (unavailable_ && unavailable_->state == breaker_.state() && unavailable_->failures_recorded == failures_recorded_) {
    return unavailable_->error;
  }
  const Error* last = recent_failures_.empty() ? nullptr : &recent_failures_.back();
  Error error{ErrorCode::pool_unavailable,
              fmt::format("pool '{}' is unavailable: the circuit breaker is {} after {} failed worker starts "
                          "within {}; last failure: {}",
                          config_.name, to_string(breaker_.state()), config_.breaker_failures,
                          ms(config_.breaker_window), last ? last->message : "none"),
              last ? last->stderr_tail : std::string()};
  unavailable_ = Unavailable{breaker_.state(), failures_recorded_, error};
  return error;
}

Backoff& RestartPolicy::slot(std::uint32_t index) {
  SEEDPOOL_ASSERT_MSG(index < slots_.size(), "a worker slot beyond size.max");
  return slots_[index];
}

const Backoff& RestartPolicy::slot(std::uint32_t index) const {
  SEEDPOOL_ASSERT_MSG(index < slots_.size(), "a worker slot beyond size.max");
  return slots_[index];
}

}  // namespace seedpool::detail
