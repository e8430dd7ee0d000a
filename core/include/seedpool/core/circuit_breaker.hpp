#pragma once

// The circuit breaker that stops a failing worker program from becoming a
// restart storm. It counts init failures in a sliding window; enough of them
// open it, and while open the pool fails checkouts fast instead of launching.
// After a cooldown it goes half-open: one probe start is allowed, whose
// success closes it and whose failure opens it again. Pure logic: time is
// passed in, so the same class runs in simulation and production.

#include <seedpool/core/time.hpp>

#include <cstddef>
#include <deque>
#include <string_view>

namespace seedpool {

enum class BreakerState { closed, open, half_open };

std::string_view to_string(BreakerState state) noexcept;

class CircuitBreaker {
 public:
  // Requires failures_to_open >= 1 and positive window and cooldown.
  CircuitBreaker(std::size_t failures_to_open, Duration window, Duration cooldown);

  BreakerState state() const noexcept { return state_; }

  // Records a failed start. Returns true when it changed the state to open
  // (from closed, or from half-open when the probe failed).
  bool record_failure(Instant now);

  // Records a successful start. Returns true when it closed a half-open or
  // open breaker. Failures already in the window stay counted until they
  // age out of it: a worker that becomes ready and dies at once, again and
  // again, still opens the breaker (the pool counts such an exit as a
  // failed start).
  bool record_success();

  // Moves open to half-open once the cooldown has passed. Returns true on
  // that transition.
  bool poll(Instant now);

  // When an open breaker goes half-open; Instant::max() unless open.
  Instant half_open_at() const noexcept;

  // Failures currently counted in the window (at most failures_to_open).
  std::size_t failures() const noexcept { return failures_.size(); }

 private:
  std::size_t failures_to_open_;
  Duration window_;
  Duration cooldown_;
  BreakerState state_ = BreakerState::closed;
  Instant opened_at_;
  std::deque<Instant> failures_;  // bounded by failures_to_open_
};

}  // namespace seedpool
