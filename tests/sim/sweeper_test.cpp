// The Sweeper: shards partition the seeds, forked jobs run each seed once
// and turn a seed that kills its process into a "crash" failure, the stop
// rules stop, an empty shard is no error, and the determinism check names a
// scenario that is not deterministic. Then the GoogleTest glue: the
// SEEDPOOL_* variables steer it, a malformed one is an error naming it, and
// SEEDPOOL_REPLAY reruns a seed file.

#include <seedpool/sim/scenario.hpp>
#include <seedpool/sim/seed_file.hpp>
#include <seedpool/sim/sweeper.hpp>
#include <seedpool/sim/testing/gtest.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

namespace seedpool::sim {
namespace {

// Each seed's outcome carries the seed as its step count, so a report's
// step total says which seeds ran; seeds divisible by `fail_every` fail.
SeedRunner counting_runner(std::uint64_t fail_every = 0) {
  return [fail_every](std::uint64_t seed) {
    SeedOutcome outcome;
    outcome.seed = seed;
    outcome.steps = seed;
    if (fail_every != 0 && seed % fail_every == 0) {
      outcome.kind = "planted";
      outcome.message = "seed divisible by " + std::to_string(fail_every);
    }
    return outcome;
  };
}

std::uint64_t sum_of_seeds(std::uint64_t first, std::uint64_t count) {
  std::uint64_t sum = 0;
  for (std::uint64_t s = first; s < first + count; ++s) {
    sum += s;
  }
  return sum;
}

TEST(Sweeper, ShardsPartitionTheSeeds) {
  SweepPlan plan;
  plan.first_seed = 10;
  plan.seeds = 101;
  plan.shard_count = 7;
  std::multiset<std::uint64_t> seen;
  std::uint64_t planned = 0;
  for (plan.shard_index = 0; plan.shard_index < plan.shard_count; ++plan.shard_index) {
    planned += plan.planned();
    const SweepReport report = run_sweep(plan, [&seen](std::uint64_t seed) {
      seen.insert(seed);
      return SeedOutcome{.seed = seed};
    });
    EXPECT_EQ(report.seeds_run, plan.planned());
  }
  EXPECT_EQ(planned, 101U);
  ASSERT_EQ(seen.size(), 101U);
  EXPECT_EQ(std::set<std::uint64_t>(seen.begin(), seen.end()).size(), 101U);
  EXPECT_EQ(*seen.begin(), 10U);
  EXPECT_EQ(*seen.rbegin(), 110U);
}

TEST(Sweeper, ForkedJobsRunEverySeedOnceAndReportFailuresInSeedOrder) {
  SweepPlan plan;
  plan.first_seed = 1;
  plan.seeds = 300;
  plan.jobs = 3;
  const SweepReport report = run_sweep(plan, counting_runner(7));
  EXPECT_EQ(report.seeds_run, 300U);
  EXPECT_EQ(report.steps, sum_of_seeds(1, 300));
  ASSERT_EQ(report.failed.size(), 300U / 7);
  for (std::size_t i = 0; i < report.failed.size(); ++i) {
    EXPECT_EQ(report.failed[i].seed, 7 * (i + 1));
  }
}

TEST(Sweeper, ASeedThatKillsItsProcessIsACrashAndNoOtherSeedIsLost) {
  SweepPlan plan;
  plan.seeds = 60;
  plan.jobs = 2;
  const SweepReport report = run_sweep(plan, [](std::uint64_t seed) {
    if (seed == 17 || seed == 18) {
      std::raise(seed == 17 ? SIGSEGV : SIGABRT);
    }
    return SeedOutcome{.seed = seed, .steps = seed};
  });
  EXPECT_EQ(report.seeds_run, 60U);
  EXPECT_EQ(report.steps, sum_of_seeds(1, 60) - 17 - 18);
  ASSERT_EQ(report.failed.size(), 2U);
  EXPECT_EQ(report.failed[0].seed, 17U);
  EXPECT_EQ(report.failed[0].kind, crash_kind);
  EXPECT_NE(report.failed[0].message.find("killed by signal 11"), std::string::npos) << report.failed[0].message;
  EXPECT_EQ(report.failed[1].seed, 18U);
  EXPECT_NE(report.failed[1].message.find("killed by signal 6"), std::string::npos) << report.failed[1].message;
}

TEST(Sweeper, AnExitInsideASeedIsACrashToo) {
  SweepPlan plan;
  plan.seeds = 10;
  plan.jobs = 2;
  const SweepReport report = run_sweep(plan, [](std::uint64_t seed) {
    if (seed == 4) {
      std::_Exit(9);
    }
    return SeedOutcome{.seed = seed};
  });
  EXPECT_EQ(report.seeds_run, 10U);
  ASSERT_EQ(report.failed.size(), 1U);
  EXPECT_NE(report.failed[0].message.find("exited with status 9"), std::string::npos) << report.failed[0].message;
}

TEST(Sweeper, MaxFailuresStopsWithExactlyThatMany) {
  for (const unsigned jobs : {1U, 2U}) {
    SweepPlan plan;
    plan.seeds = 1000;
    plan.jobs = jobs;
    plan.max_failures = 2;
    const SweepReport report = run_sweep(plan, counting_runner(5));
    EXPECT_EQ(report.failed.size(), 2U) << jobs << " jobs";
    EXPECT_EQ(report.stopped, "max-failures");
    EXPECT_LT(report.seeds_run, 1000U);
  }
}

TEST(Sweeper, TimeBudgetStopsStartingSeeds) {
  SweepPlan plan;
  plan.seeds = 100'000;
  plan.time_budget = std::chrono::milliseconds(50);
  const SweepReport report = run_sweep(plan, [](std::uint64_t seed) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return SeedOutcome{.seed = seed};
  });
  EXPECT_EQ(report.stopped, "time-budget");
  EXPECT_GT(report.seeds_run, 0U);
  EXPECT_LT(report.seeds_run, 100'000U);
}

TEST(Sweeper, AnEmptyShardRunsNothingAndPasses) {
  SweepPlan plan;
  plan.seeds = 3;
  plan.shard_index = 5;
  plan.shard_count = 8;
  plan.jobs = 2;
  EXPECT_EQ(plan.planned(), 0U);
  const SweepReport report = run_sweep(plan, counting_runner(1));
  EXPECT_EQ(report.seeds_run, 0U);
  EXPECT_TRUE(report.failed.empty());
  EXPECT_TRUE(report.stopped.empty());
}

TEST(Sweeper, ShardTextsAreParsedOrRefusedByName) {
  EXPECT_EQ(parse_shard("3/16").value(), std::make_pair(std::uint64_t{3}, std::uint64_t{16}));
  for (const char* bad : {"16/16", "3", "/4", "a/4", "1/0", "-1/4", "1/4x", ""}) {
    const auto parsed = parse_shard(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.error().message.find(std::string("'") + bad + "'"), std::string::npos) << parsed.error().message;
  }
}

// A scenario whose runs depend on something outside the seed.
TEST(Sweeper, TheDeterminismCheckNamesANondeterministicScenario) {
  Scenario scenario;
  scenario.name = "leaky";
  scenario.body = [](ScenarioContext& ctx) {
    static std::uint64_t runs = 0;  // outside the decision stream: differs between the two runs
    ctx.world.sleep_for(milliseconds(static_cast<std::int64_t>(1 + ++runs % 2)));
  };
  SweepPlan plan;
  plan.seeds = 3;
  const SweepReport report = sweep_scenario(scenario, ScenarioOptions{}, plan, true);
  ASSERT_EQ(report.failed.size(), 3U);
  EXPECT_EQ(report.failed[0].kind, nondeterministic_kind);
  EXPECT_NE(report.failed[0].message.find("event"), std::string::npos) << report.failed[0].message;
}

// ---------------------------------------------------------------- gtest glue

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

// Fails on every seed whose first decision out of 10 is 3.
Scenario one_in_ten() {
  Scenario s;
  s.name = "one-in-ten";
  s.body = [](ScenarioContext& ctx) {
    if (ctx.world.decide(10) == 3) {
      ctx.world.fail(SEEDPOOL_INVARIANT("three"), "drew a three");
    }
  };
  return s;
}

std::filesystem::path failure_dir() { return std::filesystem::temp_directory_path() / "seedpool-sweeper-test"; }

TEST(SweepEnvironment, FirstFailureFindsTheFirstFailingSeedAndSavesIt) {
  const Result<std::optional<testing::FoundFailure>> found =
      testing::first_failure(one_in_ten(), {.seeds = 200, .failure_dir = failure_dir().string()});
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_TRUE(found.value().has_value());
  const testing::FoundFailure& f = *found.value();
  EXPECT_EQ(f.outcome.kind, "three");
  EXPECT_EQ(f.seeds_run, f.outcome.seed);
  ASSERT_TRUE(std::filesystem::exists(f.seed_file)) << f.seed_file;
  EXPECT_EQ(f.replay_command.rfind("SEEDPOOL_REPLAY=" + std::filesystem::absolute(f.seed_file).string(), 0), 0U)
      << f.replay_command;
  EXPECT_NE(f.replay_command.find("--gtest_filter='SweepEnvironment.FirstFailureFindsTheFirstFailingSeedAndSavesIt'"),
            std::string::npos)
      << f.replay_command;
}

TEST(SweepEnvironment, SeedAndSeedsAndJobsComeFromTheEnvironment) {
  const Result<std::optional<testing::FoundFailure>> first = testing::first_failure(one_in_ten(), {.seeds = 500});
  ASSERT_TRUE(first.ok() && first.value().has_value());
  const std::uint64_t failing = first.value()->outcome.seed;
  {
    // Only the seeds before the failing one: nothing fails.
    const std::string before = std::to_string(failing - 1);
    const ScopedEnv seeds("SEEDPOOL_SEEDS", before.c_str());
    const ScopedEnv jobs("SEEDPOOL_JOBS", "2");
    const auto none = testing::first_failure(one_in_ten(), {.seeds = 500});
    ASSERT_TRUE(none.ok()) << none.error().message;
    EXPECT_FALSE(none.value().has_value());
  }
  {
    const std::string seed = std::to_string(failing);
    const ScopedEnv only("SEEDPOOL_SEED", seed.c_str());
    const auto again = testing::first_failure(one_in_ten(), {.seeds = 1, .first_seed = 100'000});
    ASSERT_TRUE(again.ok() && again.value().has_value());
    EXPECT_EQ(again.value()->outcome.seed, failing);
    EXPECT_EQ(again.value()->seeds_run, 1U);
  }
}

TEST(SweepEnvironment, MalformedVariablesAreErrorsNamingThem) {
  for (const auto& [name, value] : std::vector<std::pair<const char*, const char*>>{
           {"SEEDPOOL_SEEDS", "lots"}, {"SEEDPOOL_SEED", "-1"}, {"SEEDPOOL_JOBS", "0"}, {"SEEDPOOL_STRATEGY", "dfs:9"}}) {
    const ScopedEnv bad(name, value);
    const auto result = testing::first_failure(one_in_ten(), {.seeds = 5});
    ASSERT_FALSE(result.ok()) << name;
    EXPECT_NE(result.error().message.find(name), std::string::npos) << result.error().message;
    const ::testing::AssertionResult assertion = testing::sweep_passes(one_in_ten(), {.seeds = 5});
    EXPECT_FALSE(assertion);
  }
}

TEST(SweepEnvironment, ReplayRerunsTheSeedFile) {
  const auto found = testing::first_failure(one_in_ten(), {.seeds = 200, .failure_dir = failure_dir().string()});
  ASSERT_TRUE(found.ok() && found.value().has_value());
  const ScopedEnv replay("SEEDPOOL_REPLAY", found.value()->seed_file.c_str());
  const ::testing::AssertionResult result = testing::sweep_passes(one_in_ten(), {.seeds = 1, .first_seed = 1'000'000});
  ASSERT_FALSE(result);
  EXPECT_NE(std::string(result.message()).find("replayed from " + found.value()->seed_file), std::string::npos)
      << result.message();
}

}  // namespace
}  // namespace seedpool::sim
