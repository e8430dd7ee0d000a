#pragma once

// GoogleTest glue: run a sweep of a scenario inside a test. On failure the
// test fails with the run's summary, the exact one-line replay command, and
// a seed file written for the regression corpus.
//
//   TEST(MyPool, SurvivesChurn) {
//     EXPECT_TRUE(seedpool::sim::testing::sweep_passes("churn", {.seeds = 200}));
//   }
//
// Header-only, so that the seedpool::sim library itself does not depend on
// GoogleTest; include it from test code only.

#include <seedpool/sim/scenario.hpp>
#include <seedpool/sim/seed_file.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace seedpool::sim::testing {

struct SweepSpec {
  std::uint64_t seeds = 100;
  std::uint64_t first_seed = 1;
  StrategySpec strategy;
  bool swarm = false;
  // Where failing runs are saved; SEEDPOOL_FAILURE_DIR overrides it.
  std::string failure_dir = "seedpool-failures";
};

// Sweeps `scenario`; succeeds when every seed passes. Stops at the first
// failure, which it writes as a seed file and describes in the message.
inline ::testing::AssertionResult sweep_passes(const Scenario& scenario, const SweepSpec& spec = {}) {
  ScenarioOptions options;
  options.sim.strategy = spec.strategy;
  options.swarm = spec.swarm;
  for (std::uint64_t seed = spec.first_seed; seed < spec.first_seed + spec.seeds; ++seed) {
    options.sim.seed = seed;
    const ScenarioResult result = run_scenario(scenario, options);
    if (result.run.ok()) {
      continue;
    }
    const char* env_dir = std::getenv("SEEDPOOL_FAILURE_DIR");
    const std::string dir = env_dir != nullptr ? env_dir : spec.failure_dir;
    std::filesystem::create_directories(dir);
    const std::string path = fmt::format("{}/{}-{}.json", dir, scenario.name, seed);
    const SeedFile file = describe_run(scenario.name, options, result, true);
    const Status written = write_seed_file(path, file);
    return ::testing::AssertionFailure()
           << scenario.name << " seed " << seed << " failed [" << result.failure_kind << "]: " << result.run.summary()
           << "\n  faults: " << result.faults.describe() << "\n  replay: " << file.replay_command()
           << "\n  seed file: " << (written ? path : written.error().message);
  }
  return ::testing::AssertionSuccess() << spec.seeds << " seeds of " << scenario.name << " passed";
}

// The same, for a registered scenario by name.
inline ::testing::AssertionResult sweep_passes(const std::string& name, const SweepSpec& spec = {}) {
  const Scenario* scenario = ScenarioRegistry::instance().find(name);
  if (scenario == nullptr) {
    return ::testing::AssertionFailure() << "no scenario named '" << name << "' is registered";
  }
  return sweep_passes(*scenario, spec);
}

}  // namespace seedpool::sim::testing
