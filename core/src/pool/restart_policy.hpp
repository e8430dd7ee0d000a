#pragma once

// When the pool may start a worker after failures: the restart backoff of
// each worker slot, the circuit breaker and its half-open probe, and the
// failures that explain them. The pool task tells it what happened to each
// worker and asks it, slot by slot, whether a start may happen now; it
// decides nothing else.
//
// Backoff belongs to the slot whose worker keeps failing. A failed start
// (launch or init), or an exit within ready_exit_window after `ready`,
// counts as a failure of its slot: the slot's next start waits
// restart_backoff_base doubled per further failure (capped, less jitter),
// and the breaker counts it. A worker that was ready for ready_exit_window
// or longer ends its slot's run of failures when it leaves, whatever the
// reason: a burst of deaths of healthy workers restarts each slot at once.
// No jitter spreads those restarts: they are at most size.max, each a
// process start the pool would make anyway.

#include "shared.hpp"

#include <seedpool/core/circuit_breaker.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace seedpool::detail {

// Draws a number in [0, bound): the World's random_below, for the jitter.
using RandomBelow = std::function<std::uint64_t(std::uint64_t bound)>;

// A run of failures and the delay it imposes on the next start.
class Backoff {
 public:
  // No start is held back at `now`.
  explicit Backoff(Instant now) noexcept : next_start_at_(now) {}

  // Counts a failure at `now`: the next start waits until now + delay().
  void failed(Instant now, const PoolConfig& config, const RandomBelow& random_below);
  // A start succeeded: the run of failures is over.
  void reset() noexcept { failures_ = 0; }

  std::uint32_t failures() const noexcept { return failures_; }
  // No start before this instant.
  Instant next_start_at() const noexcept { return next_start_at_; }

  // The delay after a run of `failures` failures (at least one):
  // restart_backoff_base doubled per further failure, capped at
  // restart_backoff_max, less a jitter of up to
  // restart_backoff_jitter_percent of it, drawn from `random_below`.
  static Duration delay(const PoolConfig& config, std::uint32_t failures, const RandomBelow& random_below);

  static constexpr std::uint32_t doublings_max = 30;

 private:
  std::uint32_t failures_ = 0;  // consecutive
  Instant next_start_at_;
};

class RestartPolicy {
 public:
  RestartPolicy(const PoolConfig& config, RandomBelow random_below, Instant now);

  // News. A start in `slot` failed (launch or init) at `now` with `error`.
  // Returns true when that opened the breaker.
  bool start_failed(std::uint32_t slot, Instant now, const Error& error);
  // A worker in `slot` became ready. Returns true when that closed the
  // breaker.
  bool ready(std::uint32_t slot);
  // A worker of `slot`, ready since `ready_at`, leaves its slot at `now`:
  // stopped by the pool, or (exited) of itself with `error`. One that was
  // ready for ready_exit_window or longer ends its slot's run of failures;
  // one that exited of itself sooner is a failed start (exited returns true
  // when that opened the breaker).
  void stopped(std::uint32_t slot, Instant ready_at, Instant now);
  bool exited(std::uint32_t slot, Instant ready_at, Instant now, const Error& error);
  // Moves an open breaker to half-open once its cooldown has passed.
  // Returns true on that transition.
  bool poll(Instant now);

  // Questions. Whether a worker may start in `slot` at `now`: never while
  // the breaker is open, one probe while it is half-open, and none before
  // the slot's backoff has passed.
  bool may_start(std::uint32_t slot, Instant now) const;
  // A worker starts in `slot` at `now`, as may_start allowed.
  void starting(std::uint32_t slot, Instant now);

  BreakerState breaker() const noexcept { return breaker_.state(); }
  // The earliest instant after `now` at which a slot's backoff ends;
  // Instant::max() when none is pending.
  Instant next_start_after(Instant now) const noexcept;
  // The failures in a row of `slot`'s workers.
  std::uint32_t failures(std::uint32_t slot) const;
  // When an open breaker goes half-open; Instant::max() unless open.
  Instant half_open_at() const noexcept { return breaker_.half_open_at(); }

  // The latest failed starts, oldest first (at most recent_failures_max).
  const std::deque<Error>& recent_failures() const noexcept { return recent_failures_; }
  // What a checkout fails with while the breaker is not closed.
  Error unavailable() const;

  static constexpr std::size_t recent_failures_max = 16;

 private:
  Backoff& slot(std::uint32_t index);
  const Backoff& slot(std::uint32_t index) const;
  bool failed(Backoff& slot, Instant now, const Error& error);

  const PoolConfig& config_;
  RandomBelow random_below_;
  CircuitBreaker breaker_;
  std::vector<Backoff> slots_;  // one per slot: size.max
  bool probe_started_ = false;  // half-open: the one probe is under way
  std::deque<Error> recent_failures_;  // bounded by recent_failures_max
  std::uint64_t failures_recorded_ = 0;  // ever: tells whether recent_failures_ changed

  // unavailable() formats a message for every checkout that fails fast
  // while the breaker is open; it is made again only when what it says
  // (the breaker's state, the last failure) has changed.
  struct Unavailable {
    BreakerState state;
    std::uint64_t failures_recorded;
    Error error;
  };
  mutable std::optional<Unavailable> unavailable_;
};

}  // namespace seedpool::detail
