// Seeds per second and simulated seconds per wall second for every built-in
// scenario, on one core: how fast a sweep explores the pool. Each benchmark
// iteration is a sweep of a batch of seeds through the Sweeper (each seed a
// fresh simulation); seeds differ across iterations.
// churn also runs with the reference model off (survival checks only), and
// the run ends with the cost of the model: churn's seeds per second with it
// on over the same with it off, both measured in this run (target >= 0.8).

#include "figures_reporter.hpp"

#include <seedpool/sim/scenario.hpp>
#include <seedpool/sim/sweeper.hpp>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdint>

namespace {

constexpr std::uint64_t seeds_per_iteration = 8;

void run_seeds(benchmark::State& state, const seedpool::sim::Scenario* scenario, bool model) {
  seedpool::sim::ScenarioOptions options;
  options.model = model;
  seedpool::sim::SweepPlan plan;
  plan.seeds = seeds_per_iteration;
  std::uint64_t seeds = 0;
  std::uint64_t steps = 0;
  std::int64_t virtual_ns = 0;
  std::uint64_t failed = 0;
  for (auto _ : state) {
    const seedpool::sim::SweepReport report = seedpool::sim::sweep_scenario(*scenario, options, plan);
    plan.first_seed += seeds_per_iteration;
    seeds += report.seeds_run;
    steps += report.steps;
    virtual_ns += report.virtual_ns;
    failed += report.failed.size();
  }
  state.counters["seeds_per_s"] = benchmark::Counter(static_cast<double>(seeds), benchmark::Counter::kIsRate);
  state.counters["sim_s_per_wall_s"] =
      benchmark::Counter(static_cast<double>(virtual_ns) / 1e9, benchmark::Counter::kIsRate);
  state.counters["steps_per_s"] = benchmark::Counter(static_cast<double>(steps), benchmark::Counter::kIsRate);
  state.counters["failed"] = static_cast<double>(failed);
}

const bool registered = [] {
  for (const seedpool::sim::Scenario& scenario : seedpool::sim::ScenarioRegistry::instance().all()) {
    benchmark::RegisterBenchmark(("scenario/" + scenario.name).c_str(), run_seeds, &scenario, true)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.5);
    if (scenario.name == "churn") {
      // Five runs each over the same seeds, one after the other: the ratio
      // is of their medians.
      benchmark::RegisterBenchmark("model/churn/on", run_seeds, &scenario, true)->MinTime(0.5)->Repetitions(5);
      benchmark::RegisterBenchmark("model/churn/off", run_seeds, &scenario, false)->MinTime(0.5)->Repetitions(5);
    }
  }
  return true;
}();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  seedpool::bench::FiguresReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  const std::optional<double> on = reporter.median("model/churn/on:seeds_per_s");
  const std::optional<double> off = reporter.median("model/churn/off:seeds_per_s");
  if (on && off && *off > 0) {
    fmt::print("\nthe reference model's cost, churn (median of 5): {:.0f} seeds/s with the model, {:.0f} without; "
               "ratio {:.2f} (target >= 0.80)\n  with:    {}\n  without: {}\n",
               *on, *off, *on / *off, reporter.values("model/churn/on:seeds_per_s", 1),
               reporter.values("model/churn/off:seeds_per_s", 1));
  }
  return 0;
}
