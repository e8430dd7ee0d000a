// Seeds per second and simulated seconds per wall second for every built-in
// scenario, on one core: how fast a sweep explores the pool. Each benchmark
// iteration is one seed (a fresh simulation); seeds differ per iteration.

#include <seedpool/sim/scenario.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>

namespace {

void run_seeds(benchmark::State& state, const seedpool::sim::Scenario* scenario) {
  seedpool::sim::ScenarioOptions options;
  std::uint64_t seed = 1;
  std::uint64_t steps = 0;
  std::int64_t virtual_ns = 0;
  std::uint64_t failed = 0;
  for (auto _ : state) {
    options.sim.seed = seed++;
    const seedpool::sim::ScenarioResult result = seedpool::sim::run_scenario(*scenario, options);
    steps += result.run.steps;
    virtual_ns += result.run.virtual_time.ns();
    failed += result.run.ok() ? 0U : 1U;
  }
  state.counters["seeds_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["sim_s_per_wall_s"] =
      benchmark::Counter(static_cast<double>(virtual_ns) / 1e9, benchmark::Counter::kIsRate);
  state.counters["steps_per_s"] = benchmark::Counter(static_cast<double>(steps), benchmark::Counter::kIsRate);
  state.counters["failed"] = static_cast<double>(failed);
}

const bool registered = [] {
  for (const seedpool::sim::Scenario& scenario : seedpool::sim::ScenarioRegistry::instance().all()) {
    benchmark::RegisterBenchmark(("scenario/" + scenario.name).c_str(), run_seeds, &scenario)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.5);
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
