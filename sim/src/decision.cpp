#include <seedpool/core/assert.hpp>
#include <seedpool/sim/decision.hpp>

#include <utility>

namespace seedpool::sim {
namespace {

// Recording buffers of finished runs on this thread, kept for its next runs.
// A sweep records thousands of decisions per run; growing a fresh buffer each
// run cost its reallocations, and the page faults of memory the allocator
// had handed back to the system between runs. A few spares, of bounded size.
constexpr std::size_t spare_buffers_max = 2;
constexpr std::size_t spare_buffer_decisions_max = std::size_t{1} << 20;  // 8 MiB

std::vector<std::vector<std::uint64_t>>& spare_buffers() {
  thread_local std::vector<std::vector<std::uint64_t>> spares;
  return spares;
}

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

DecisionSource::DecisionSource(std::uint64_t seed, bool replaying, std::vector<std::uint64_t> script,
                               std::size_t decisions_max)
    : rng_(seed), replaying_(replaying), script_(std::move(script)), decisions_max_(decisions_max) {
  SEEDPOOL_ASSERT(decisions_max_ >= 1);
  std::vector<std::vector<std::uint64_t>>& spares = spare_buffers();
  if (!spares.empty()) {
    recorded_ = std::move(spares.back());
    spares.pop_back();
    recorded_.clear();
  }
  SEEDPOOL_ASSERT(recorded_.empty());
}

DecisionSource::~DecisionSource() {
  std::vector<std::vector<std::uint64_t>>& spares = spare_buffers();
  if (recorded_.capacity() > 0 && recorded_.capacity() <= spare_buffer_decisions_max &&
      spares.size() < spare_buffers_max) {
    spares.push_back(std::move(recorded_));
  }
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
