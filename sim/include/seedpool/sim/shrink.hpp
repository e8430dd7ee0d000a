#pragma once

// Shrinking a failing run: the decision list is minimised — shorter, fewer
// non-zero choices, smaller values (0 is the plain default: the first
// runnable task, no fault, the shortest latency) — while the run still fails
// with the same failure kind. Replay past the list's end chooses 0, so
// deleting decisions is always meaningful.

#include <seedpool/sim/scenario.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace seedpool::sim {

struct ShrinkResult {
  std::vector<std::uint64_t> decisions;  // the smallest failing list found
  ScenarioResult last_failure;           // its run
  std::size_t runs = 0;                  // replays tried
  std::size_t original_size = 0;
  std::size_t original_nonzero = 0;
};

// How many decisions are not the default 0.
std::size_t count_nonzero(const std::vector<std::uint64_t>& decisions);

// Minimises `decisions` for `scenario` while run_scenario fails with
// `failure_kind`, using at most `runs_max` replays. `progress` (optional) is
// told the current size after each improvement.
ShrinkResult shrink(const Scenario& scenario, const ScenarioOptions& base, std::vector<std::uint64_t> decisions,
                    const std::string& failure_kind, std::size_t runs_max,
                    const std::function<void(const ShrinkResult&)>& progress = {});

}  // namespace seedpool::sim
