#include <seedpool/sim/sweep.hpp>

#include <utility>

namespace seedpool::sim {

SweepResult sweep(const SweepOptions& options, const std::function<void(SimWorld&)>& body,
                  const std::function<void(std::uint64_t seed, const RunResult&)>& on_run) {
  SweepResult result;
  SimConfig config = options.base;
  config.decisions.reset();
  for (std::uint64_t i = 0; i < options.seeds; ++i) {
    config.seed = options.first_seed + i;
    RunResult run = simulate(config, body);
    ++result.seeds_run;
    result.steps += run.steps;
    result.virtual_ns += run.virtual_time.ns();
    if (on_run) {
      on_run(config.seed, run);
    }
    if (!run.ok()) {
      ++result.failures;
      if (!result.first_failing_seed) {
        result.first_failing_seed = config.seed;
        result.first_failure = std::move(run);
      }
      if (options.stop_at_first_failure) {
        break;
      }
    }
  }
  return result;
}

}  // namespace seedpool::sim
