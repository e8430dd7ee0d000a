#include <seedpool/core/assert.hpp>
#include <seedpool/sim/decision.hpp>

#include <utility>

namespace seedpool::sim {
namespace {

// GCC and Clang provide a 128-bit integer; __extension__ keeps -Wpedantic quiet.
__extension__ using Uint128 = unsigned __int128;

constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

}  // namespace

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  state += 0x9e3779b97f4a7c15ULL;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Rng::Rng(std::uint64_t seed) noexcept {
  std::uint64_t mix = seed;
  for (std::uint64_t& word : state_) {
    word = splitmix64(mix);
  }
}

std::uint64_t Rng::next() noexcept {
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

std::uint64_t Rng::below(std::uint64_t bound) noexcept {
  SEEDPOOL_ASSERT(bound >= 1);
  // Lemire, "Fast Random Integer Generation in an Interval" (2019): the high
  // half of a 128-bit product, rejecting the few low halves that would bias it.
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

DecisionSource::DecisionSource(std::uint64_t seed, bool replaying, std::vector<std::uint64_t> script,
                               std::size_t decisions_max)
    : rng_(seed), replaying_(replaying), script_(std::move(script)), decisions_max_(decisions_max) {
  SEEDPOOL_ASSERT(decisions_max_ >= 1);
}

DecisionSource DecisionSource::seeded(std::uint64_t seed, std::size_t decisions_max) {
  return DecisionSource(seed, false, {}, decisions_max);
}

DecisionSource DecisionSource::replay(std::vector<std::uint64_t> decisions, std::size_t decisions_max) {
  return DecisionSource(0, true, std::move(decisions), decisions_max);
}

std::uint64_t DecisionSource::replayed(std::uint64_t bound) noexcept {
  const std::size_t index = recorded_.size();
  if (index >= script_.size()) {
    return 0;
  }
  const std::uint64_t value = script_[index];
  return value < bound ? value : 0;
}

}  // namespace seedpool::sim
