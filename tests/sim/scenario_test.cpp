// Scenarios as users meet them: registered in their own binary, swept from a
// GoogleTest test, failures saved and replayed exactly, shrunk, and
// RapidCheck generating the workload and the decision list.

#include <seedpool/sim/pool_scenario.hpp>
#include <seedpool/sim/seed_file.hpp>
#include <seedpool/sim/shrink.hpp>
#include <seedpool/sim/testing/gtest.hpp>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <filesystem>

namespace seedpool::sim {
namespace {

PoolConfig small_pool() {
  PoolConfig c;
  c.name = "test";
  c.command.program = "/opt/test/worker";
  c.size = {2, 2};
  c.init_timeout = seconds(2);
  c.call_timeout = seconds(1);
  c.restart_backoff_max = seconds(1);
  c.breaker_cooldown = seconds(2);
  c.shutdown_grace = seconds(1);
  c.terminate_grace = milliseconds(200);
  return c;
}

FaultOptions crashy() {
  FaultOptions f;
  f[pool_faults::call_crash] = 50'000;
  f[pool_faults::init_crash] = 30'000;
  f[pool_faults::caller_cancel] = 50'000;
  return f;
}

}  // namespace

// A user's own scenario, registered the way a test binary would.
SEEDPOOL_SCENARIO(user_small_pool, "user-small-pool", "two workers, a few callers, crashes", crashy()) {
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(small_pool());
  (void)pool.start();
  run_workload(harness, pool, Workload{.callers = 6, .leases_per_caller = 4});
  harness.finish(2, seconds(30));
}

namespace {

// A scenario with a planted bug: its own invariant fails whenever a call
// crashes. Sweeps must find it, replay it and shrink it.
Scenario planted_bug() {
  Scenario s;
  s.name = "planted-bug";
  s.description = "fails when any call sees its worker crash";
  s.faults[pool_faults::call_crash] = 100'000;
  s.body = [](ScenarioContext& ctx) {
    PoolHarness harness(ctx);
    Pool& pool = harness.make_pool(small_pool());
    (void)pool.start();
    Workload w{.callers = 4, .leases_per_caller = 3};
    run_workload(harness, pool, w);
    if (ctx.coverage["call:worker_crashed"] > 0) {
      harness.checker().violation(SEEDPOOL_INVARIANT("planted"), "a call saw its worker crash");
    }
    harness.finish(2, seconds(30));
  };
  return s;
}

TEST(ScenarioRegistry, UserScenarioIsRegisteredBesideTheBuiltIns) {
  const ScenarioRegistry& registry = ScenarioRegistry::instance();
  ASSERT_NE(registry.find("user-small-pool"), nullptr);
  for (const char* name : {"startup", "churn", "burst", "cancel-storm", "affinity", "affinity-limits", "recycle",
                           "lifetime", "health", "breaker", "breaker-window", "shutdown", "shutdown-twice",
                           "stderr-flood", "lazy", "lazy-breaker", "stale-reply"}) {
    EXPECT_NE(registry.find(name), nullptr) << name;
  }
}

TEST(ScenarioSweep, UserScenarioPassesASweep) {
  EXPECT_TRUE(testing::sweep_passes("user-small-pool", {.seeds = 200}));
  EXPECT_TRUE(testing::sweep_passes("user-small-pool", {.seeds = 100, .strategy = parse_strategy("pct:3").value(),
                                                        .swarm = true}));
}

// The coverage of `seeds` random-walk runs of `name`, summed; every run
// must pass.
Coverage swept_coverage(const std::string& name, std::uint64_t seeds) {
  const Scenario* scenario = ScenarioRegistry::instance().find(name);
  Coverage sum;
  EXPECT_NE(scenario, nullptr) << name;
  for (std::uint64_t seed = 1; scenario != nullptr && seed <= seeds; ++seed) {
    ScenarioOptions options;
    options.sim.seed = seed;
    const ScenarioResult result = run_scenario(*scenario, options);
    EXPECT_TRUE(result.run.ok()) << name << " seed " << seed << ": " << result.run.summary();
    for (const auto& [key, hits] : result.coverage) {
      sum[key] += hits;
    }
  }
  return sum;
}

// The path production takes for every reply, a caller reading the worker's
// output itself, is the path the sweeps take too; both sides of each of its
// races show up in a sweep's coverage.
TEST(ScenarioCoverage, ASweepReachesTheCallerReadPath) {
  Coverage sum = swept_coverage("stale-reply", 300);
  for (const char* key : {"path:caller_read", "path:caller_read_declined", "path:caller_read_handback",
                          "path:caller_read_linger", "path:caller_read_linger_expired",
                          "path:caller_read_taken_back"}) {
    EXPECT_GT(sum[key], 0u) << key;
  }
}

// Workers are handed out on the shelf by callers and by the pool task
// (core/src/pool/shelf.hpp): every kind of hand-over step shows up in a
// sweep's coverage, so the sweeps check the path production takes.
TEST(ScenarioCoverage, ASweepReachesEveryHandOverStep) {
  Coverage sum = swept_coverage("cancel-storm", 100);
  for (const char* key : {"shelf:taken_by_caller", "shelf:taken_by_pool_task", "shelf:grant_on_checkout",
                          "shelf:grant_on_release", "shelf:grant_by_pool_task", "shelf:release_to_shelf",
                          "shelf:release_by_pool_task"}) {
    EXPECT_GT(sum[key], 0u) << key;
  }
}

TEST(ScenarioSweep, FailureIsReportedWithReplayCommandAndSeedFile) {
  const auto dir = std::filesystem::temp_directory_path() / "seedpool-scenario-test";
  std::filesystem::remove_all(dir);
  const ::testing::AssertionResult result =
      testing::sweep_passes(planted_bug(), {.seeds = 200, .failure_dir = dir.string()});
  ASSERT_FALSE(result);
  const std::string message = result.message();
  EXPECT_NE(message.find("[planted]"), std::string::npos) << message;
  // The rerun command names this test binary and this test.
  EXPECT_NE(message.find("rerun: SEEDPOOL_REPLAY="), std::string::npos) << message;
  EXPECT_NE(message.find("--gtest_filter='ScenarioSweep.FailureIsReportedWithReplayCommandAndSeedFile'"),
            std::string::npos)
      << message;
  ASSERT_TRUE(std::filesystem::exists(dir));
  const auto file = std::filesystem::directory_iterator(dir)->path();
  Result<SeedFile> read = read_seed_file(file.string());
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read.value().expected_outcome, "planted");

  // The saved decision list replays the failure exactly.
  ScenarioResult replayed = run_scenario(planted_bug(), read.value().options());
  EXPECT_EQ(replayed.failure_kind, "planted");
  EXPECT_EQ(replayed.run.trace_hash, read.value().expected_trace_hash);
}

TEST(ScenarioShrink, ShrunkListIsSmallerAndStillFailsTheSameWay) {
  const Scenario scenario = planted_bug();
  ScenarioOptions options;
  std::optional<ScenarioResult> failing;
  for (std::uint64_t seed = 1; seed < 500 && !failing; ++seed) {
    options.sim.seed = seed;
    ScenarioResult r = run_scenario(scenario, options);
    if (!r.run.ok()) {
      failing = std::move(r);
    }
  }
  ASSERT_TRUE(failing.has_value());
  ASSERT_EQ(failing->failure_kind, "planted");
  const ShrinkResult shrunk = shrink(scenario, ScenarioOptions{}, failing->run.decisions, "planted", 400);
  EXPECT_EQ(shrunk.last_failure.failure_kind, "planted");
  EXPECT_LT(count_nonzero(shrunk.decisions), count_nonzero(failing->run.decisions));
  EXPECT_LE(shrunk.decisions.size(), failing->run.decisions.size());
  std::printf("shrunk the planted failure from %zu decisions (%zu non-zero) to %zu (%zu non-zero) in %zu replays\n",
              shrunk.original_size, shrunk.original_nonzero, shrunk.decisions.size(),
              count_nonzero(shrunk.decisions), shrunk.runs);

  ScenarioOptions replay;
  replay.sim.decisions = shrunk.decisions;
  EXPECT_EQ(run_scenario(scenario, replay).failure_kind, "planted");
}

TEST(SeedFiles, MalformedAndForeignVersionsAreClearErrors) {
  EXPECT_FALSE(parse_seed_file("not json").ok());
  EXPECT_NE(parse_seed_file("[1,2]").error().message.find("malformed seed file"), std::string::npos);
  const auto other_version = parse_seed_file(
      R"({"format":"seedpool-seed","format_version":99,"scenario":"churn","seed":1,"expected":{"outcome":"ok","trace_hash":"0"}})");
  ASSERT_FALSE(other_version.ok());
  EXPECT_NE(other_version.error().message.find("format version 99"), std::string::npos);
  const auto missing = parse_seed_file(R"({"format":"seedpool-seed","format_version":1,"seed":1})");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("scenario"), std::string::npos) << missing.error().message;
}

TEST(SeedFiles, RoundTrip) {
  SeedFile file;
  file.scenario = "churn";
  file.seed = 42;
  file.decisions = std::vector<std::uint64_t>{1, 0, 7};
  file.strategy = parse_strategy("pct:3:500").value();
  file.swarm = true;
  file.expected_outcome = "reply-mismatch";
  file.expected_trace_hash = 0xdeadbeefcafef00dULL;
  file.note = "a \"quoted\" note";
  const Result<SeedFile> back = parse_seed_file(to_json(file));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back.value().decisions, file.decisions);
  EXPECT_EQ(back.value().strategy.to_string(), "pct:3:500");
  EXPECT_EQ(back.value().expected_trace_hash, file.expected_trace_hash);
  EXPECT_EQ(back.value().note, file.note);
}

// RapidCheck generates the workload and a decision list; every generated run
// of the real pool must pass its invariants. A failure is shrunk by
// RapidCheck (fewer callers and calls, a shorter and smaller decision list).
RC_GTEST_PROP(ScenarioProperty, GeneratedWorkloadsAndDecisionsKeepTheInvariants, ()) {
  const auto callers = *rc::gen::inRange<std::size_t>(1, 12);
  const auto calls = *rc::gen::inRange<std::size_t>(1, 6);
  const auto checkout_ms = *rc::gen::inRange<std::int64_t>(1, 2000);
  const auto decisions = *rc::gen::container<std::vector<std::uint64_t>>(rc::gen::inRange<std::uint64_t>(0, 1'000'000));
  Scenario scenario;
  scenario.name = "generated";
  scenario.faults = crashy();
  scenario.faults[pool_faults::external_kill] = 100'000;
  scenario.body = [&](ScenarioContext& ctx) {
    PoolHarness harness(ctx);
    Pool& pool = harness.make_pool(small_pool());
    (void)pool.start();
    run_workload(harness, pool, Workload{.callers = callers, .leases_per_caller = calls,
                                     .checkout_timeout_min = milliseconds(1),
                                     .checkout_timeout_max = milliseconds(checkout_ms), .external_kills = true});
    harness.finish(2, seconds(30));
  };
  ScenarioOptions options;
  options.sim.decisions = decisions;
  const ScenarioResult result = run_scenario(scenario, options);
  RC_ASSERT(result.run.ok());
}

}  // namespace
}  // namespace seedpool::sim

namespace seedpool::sim {
namespace {

// The generic ending: quiet() switches faults off, then finish() waits for
// the system to converge within its bound, or fails naming the rule.
TEST(ScenarioContextFinish, PassesOnceDoneHoldsAndFailsNamingTheRuleOtherwise) {
  const auto scenario_with = [](Duration converges_after) {
    Scenario s;
    s.name = "converging";
    s.body = [converges_after](ScenarioContext& ctx) {
      const Instant at = ctx.world.now() + converges_after;
      const bool held =
          ctx.finish(seconds(1), [&ctx, at] { return ctx.world.now() >= at; }, SEEDPOOL_INVARIANT("settled"));
      EXPECT_FALSE(ctx.faults.enabled());
      EXPECT_EQ(held, converges_after <= seconds(1));
    };
    return s;
  };
  const ScenarioResult quick = run_scenario(scenario_with(milliseconds(300)), ScenarioOptions{});
  EXPECT_TRUE(quick.run.ok()) << quick.run.summary();
  EXPECT_LE(quick.run.virtual_time, Instant::zero() + milliseconds(300) + milliseconds(16));
  const ScenarioResult never = run_scenario(scenario_with(seconds(5)), ScenarioOptions{});
  EXPECT_EQ(never.failure_kind, "settled") << never.run.summary();
  EXPECT_NE(never.run.message.find("not done within 1000.000 ms"), std::string::npos) << never.run.message;
}

}  // namespace
}  // namespace seedpool::sim
