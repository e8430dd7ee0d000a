#include <seedpool/core/assert.hpp>
#include <seedpool/core/circuit_breaker.hpp>

namespace seedpool {

std::string_view to_string(BreakerState state) noexcept {
  switch (state) {
    case BreakerState::closed: return "closed";
    case BreakerState::open: return "open";
    case BreakerState::half_open: return "half_open";
  }
  return "unknown";
}

CircuitBreaker::CircuitBreaker(std::size_t failures_to_open, Duration window, Duration cooldown)
    : failures_to_open_(failures_to_open), window_(window), cooldown_(cooldown) {
  SEEDPOOL_ASSERT(failures_to_open_ >= 1);
  SEEDPOOL_ASSERT(window_ > Duration::zero());
  SEEDPOOL_ASSERT(cooldown_ > Duration::zero());
}

bool CircuitBreaker::record_failure(Instant now) {
  if (state_ == BreakerState::open) {
    return false;
  }
  if (state_ == BreakerState::half_open) {
    state_ = BreakerState::open;
    opened_at_ = now;
    return true;
  }
  while (!failures_.empty() && now - failures_.front() >= window_) {
    failures_.pop_front();
  }
  failures_.push_back(now);
  if (failures_.size() > failures_to_open_) {
    failures_.pop_front();
  }
  SEEDPOOL_ASSERT(failures_.size() <= failures_to_open_);
  if (failures_.size() < failures_to_open_) {
    return false;
  }
  // The window starts afresh: a breaker closed early again (a worker that
  // was starting got ready) needs breaker_failures new failures to reopen.
  failures_.clear();
  state_ = BreakerState::open;
  opened_at_ = now;
  return true;
}

bool CircuitBreaker::record_success() {
  if (state_ == BreakerState::closed) {
    return false;
  }
  state_ = BreakerState::closed;
  return true;
}

bool CircuitBreaker::poll(Instant now) {
  if (state_ != BreakerState::open || now < half_open_at()) {
    return false;
  }
  state_ = BreakerState::half_open;
  failures_.clear();
  return true;
}

Instant CircuitBreaker::half_open_at() const noexcept {
  return state_ == BreakerState::open ? opened_at_ + cooldown_ : Instant::max();
}

}  // namespace seedpool
