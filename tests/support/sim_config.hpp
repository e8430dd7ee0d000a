#pragma once

// The few lines every simulator test starts from: a SimConfig for a seed
// (and a strategy), PCT at depth 3, and a substring check for messages.

#include <seedpool/sim/sim_world.hpp>
#include <seedpool/sim/strategy.hpp>

#include <cstdint>
#include <string>

namespace seedpool::test {

inline bool has_text(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

inline sim::SimConfig seeded(std::uint64_t seed, sim::StrategySpec strategy = {}) {
  sim::SimConfig config;
  config.seed = seed;
  config.strategy = strategy;
  return config;
}

// `strategy` as seedpool-sim's --strategy takes it ("pct:3:500").
inline sim::SimConfig seeded(std::uint64_t seed, const char* strategy) {
  return seeded(seed, sim::parse_strategy(strategy).value());
}

inline sim::StrategySpec pct3() {
  sim::StrategySpec spec;
  spec.kind = sim::StrategySpec::Kind::pct;
  spec.depth = 3;
  spec.steps_estimate = 500;
  return spec;
}

}  // namespace seedpool::test
