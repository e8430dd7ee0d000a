#include <seedpool/core/assert.hpp>
#include <seedpool/sim/decision.hpp>

#include <utility>

namespace seedpool::sim {

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
