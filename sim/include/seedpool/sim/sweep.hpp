#pragma once

// A sweep: the same simulated program over a range of seeds.

#include <seedpool/sim/sim_world.hpp>

#include <cstdint>
#include <functional>
#include <optional>

namespace seedpool::sim {

struct SweepOptions {
  SimConfig base;  // every field but the seed is used as given
  std::uint64_t first_seed = 1;
  std::uint64_t seeds = 100;
  bool stop_at_first_failure = true;
};

struct SweepResult {
  std::uint64_t seeds_run = 0;
  std::uint64_t failures = 0;
  std::uint64_t steps = 0;            // summed over all runs
  std::int64_t virtual_ns = 0;        // summed over all runs
  std::optional<std::uint64_t> first_failing_seed;
  std::optional<RunResult> first_failure;
};

// Runs `body` for seeds first_seed, first_seed + 1, ... . `on_run`, when set,
// sees every result as it finishes (for progress output).
SweepResult sweep(const SweepOptions& options, const std::function<void(SimWorld&)>& body,
                  const std::function<void(std::uint64_t seed, const RunResult&)>& on_run = {});

}  // namespace seedpool::sim
