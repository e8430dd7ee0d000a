#pragma once

// The decision stream: the single source of every nondeterministic choice in
// a simulated run — which task runs next, whether a fault fires, how long a
// latency is. A run is a pure function of its decision list, so replaying a
// seed, replaying a recorded list and shrinking a failure are one mechanism.

#include <seedpool/core/assert.hpp>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace seedpool::sim {

// xoshiro256** (Blackman and Vigna), seeded through SplitMix64. Our own
// generator, so that a seed means the same run with every standard library.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept;

  // The next 64 uniformly distributed bits. Inline: a random walk draws
  // one at almost every step.
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // A uniform integer in [0, bound), without modulo bias (Lemire, "Fast
  // Random Integer Generation in an Interval", 2019: the high half of a
  // 128-bit product, rejecting the few low halves that would bias it).
  // Requires bound >= 1.
  std::uint64_t below(std::uint64_t bound) noexcept {
    SEEDPOOL_ASSERT(bound >= 1);
    Uint128 product = static_cast<Uint128>(next()) * bound;
    auto low = static_cast<std::uint64_t>(product);
    if (low < bound) {
      const std::uint64_t threshold = (0 - bound) % bound;
      while (low < threshold) {
        product = static_cast<Uint128>(next()) * bound;
        low = static_cast<std::uint64_t>(product);
      }
    }
    return static_cast<std::uint64_t>(product >> 64);
  }

 private:
  // GCC and Clang provide a 128-bit integer; __extension__ keeps -Wpedantic quiet.
  __extension__ using Uint128 = unsigned __int128;

  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

  std::uint64_t state_[4];
};

// SplitMix64 step: a strong 64-bit mix, also used to derive seeds.
std::uint64_t splitmix64(std::uint64_t& state) noexcept;

class DecisionSource {
 public:
  // Draws from Rng(seed) and records every decision.
  static DecisionSource seeded(std::uint64_t seed, std::size_t decisions_max);

  // Replays `decisions`. Past their end, and wherever a recorded value is not
  // below the bound asked for, the choice is 0: the plain default. This is
  // what lets a shrinker delete and zero decisions freely.
  static DecisionSource replay(std::vector<std::uint64_t> decisions, std::size_t decisions_max);

  // The recording buffer goes back to the thread's spares (see decision.cpp).
  ~DecisionSource();
  DecisionSource(DecisionSource&&) noexcept = default;
  DecisionSource& operator=(DecisionSource&&) noexcept = default;
  DecisionSource(const DecisionSource&) = delete;
  DecisionSource& operator=(const DecisionSource&) = delete;

  // A choice in [0, bound). Requires bound >= 1. A bound of 1 is no choice:
  // it returns 0 and records nothing, in both modes, so seeded and replayed
  // runs stay aligned. Once decisions_max choices are recorded, every further
  // choice is 0 and overflowed() becomes true; the simulator then stops the run.
  std::uint64_t decide(std::uint64_t bound) {
    if (bound <= 1) {
      return 0;
    }
    if (recorded_.size() >= decisions_max_) {
      overflowed_ = true;
      return 0;
    }
    const std::uint64_t value = replaying_ ? replayed(bound) : rng_.below(bound);
    recorded_.push_back(value);
    return value;
  }

  // The decisions made so far, in order; replaying them reproduces the run.
  const std::vector<std::uint64_t>& recorded() const noexcept { return recorded_; }
  bool replaying() const noexcept { return replaying_; }
  bool overflowed() const noexcept { return overflowed_; }

 private:
  DecisionSource(std::uint64_t seed, bool replaying, std::vector<std::uint64_t> script,
                 std::size_t decisions_max);
  std::uint64_t replayed(std::uint64_t bound) noexcept;

  Rng rng_;
  bool replaying_;
  bool overflowed_ = false;
  std::vector<std::uint64_t> script_;
  std::size_t decisions_max_;
  std::vector<std::uint64_t> recorded_;
};

}  // namespace seedpool::sim
