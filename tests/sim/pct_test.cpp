// Tests for the scheduling strategies: PCT with depth 2 finds the planted
// depth-2 ordering bug within a bounded number of seeds (random walk is
// measured on the same budget and reported, not judged), a failing seed and
// its decision list both reproduce the failure, PCT's automatic step
// estimate (pct:D) is the same for every shard and job and finds a short
// run's bug about as often as the best hand-chosen K, and strategy names
// parse or are refused with a message that names the bad text.

#include <seedpool/sim/seed_file.hpp>
#include <seedpool/sim/sim_world.hpp>
#include <seedpool/sim/strategy.hpp>
#include <seedpool/sim/sweeper.hpp>
#include <seedpool/sim/toys.hpp>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace seedpool::sim {

static void PrintTo(Outcome outcome, std::ostream* out) { *out << to_string(outcome); }

namespace {

constexpr std::uint64_t seeds_max = 5'000;

void ordering_bug_default(SimWorld& world) { toys::ordering_bug(world); }

StrategySpec pct_depth_two() {
  StrategySpec spec;
  spec.kind = StrategySpec::Kind::pct;
  spec.depth = 2;
  spec.steps_estimate = toys::ordering_bug_steps;
  return spec;
}

// A sweep up to the first failure, and that failure run again.
struct Search {
  SweepReport report;
  std::optional<std::uint64_t> first_failing_seed;
  std::optional<RunResult> first_failure;
};

Search sweep_ordering_bug(const StrategySpec& strategy) {
  SimConfig config;
  config.strategy = strategy;
  SweepPlan plan;
  plan.seeds = seeds_max;
  plan.max_failures = 1;
  Search search;
  search.report = run_sweep(plan, [&config](std::uint64_t seed) {
    return run_program_seed(config, ordering_bug_default, seed);
  });
  if (!search.report.failed.empty()) {
    config.seed = search.report.failed.front().seed;
    search.first_failing_seed = config.seed;
    search.first_failure = simulate(config, ordering_bug_default);
  }
  return search;
}

// "found it after N seeds" or "did not find it in N seeds", for the
// measurement report.
std::string describe_search(const Search& search) {
  const std::string seeds = std::to_string(search.report.seeds_run);
  return search.first_failing_seed ? "found it after " + seeds + " seeds" : "did not find it in " + seeds + " seeds";
}

TEST(Pct, DepthTwoFindsTheOrderingBugWithinTheBound) {
  const Search pct = sweep_ordering_bug(pct_depth_two());
  const Search random = sweep_ordering_bug(StrategySpec{});
  const std::string line = "depth-2 ordering bug, budget " + std::to_string(seeds_max) + " seeds: PCT (depth 2) " +
                           describe_search(pct) + "; random walk " + describe_search(random);
  std::printf("%s\n", line.c_str());
  RecordProperty("pct_seeds", std::to_string(pct.report.seeds_run));
  RecordProperty("random_walk_seeds", std::to_string(random.report.seeds_run));
  RecordProperty("random_walk_found", random.first_failing_seed ? "yes" : "no");

  ASSERT_TRUE(pct.first_failing_seed.has_value()) << line;
  ASSERT_TRUE(pct.first_failure.has_value());
  EXPECT_LT(pct.report.seeds_run, seeds_max) << line;
  EXPECT_EQ(pct.report.failed.size(), 1U);
  EXPECT_EQ(pct.first_failure->trace_hash, pct.report.failed.front().trace_hash);
  EXPECT_EQ(*pct.first_failing_seed, pct.report.seeds_run);
  EXPECT_EQ(pct.first_failure->outcome, Outcome::invariant) << pct.first_failure->summary();
  EXPECT_NE(pct.first_failure->message.find("ordering bug"), std::string::npos) << pct.first_failure->message;
}

TEST(Pct, FailingSeedAndItsDecisionsReproduceTheFailure) {
  const Search pct = sweep_ordering_bug(pct_depth_two());
  ASSERT_TRUE(pct.first_failure.has_value());
  const RunResult& failure = *pct.first_failure;

  SimConfig config;
  config.strategy = pct_depth_two();
  config.seed = *pct.first_failing_seed;
  const RunResult again = simulate(config, ordering_bug_default);
  EXPECT_EQ(again.outcome, failure.outcome) << again.summary();
  EXPECT_EQ(again.trace_hash, failure.trace_hash);
  EXPECT_EQ(again.message, failure.message);
  EXPECT_EQ(again.decisions, failure.decisions);

  SimConfig replay;
  replay.strategy = pct_depth_two();
  replay.seed = 0;  // ignored when replaying; a wrong seed proves it
  replay.decisions = failure.decisions;
  const RunResult replayed = simulate(replay, ordering_bug_default);
  EXPECT_EQ(replayed.outcome, failure.outcome) << replayed.summary();
  EXPECT_EQ(replayed.trace_hash, failure.trace_hash);
  EXPECT_EQ(replayed.message, failure.message);
}

TEST(Pct, SeedsBeforeTheFailingOneRunClean) {
  const Search pct = sweep_ordering_bug(pct_depth_two());
  ASSERT_TRUE(pct.first_failing_seed.has_value());
  // The sweep's report must match what simulate says seed by seed.
  SimConfig config;
  config.strategy = pct_depth_two();
  const std::uint64_t checked = std::min<std::uint64_t>(*pct.first_failing_seed - 1, 20);
  for (std::uint64_t seed = *pct.first_failing_seed - checked; seed < *pct.first_failing_seed; ++seed) {
    config.seed = seed;
    EXPECT_TRUE(simulate(config, ordering_bug_default).ok()) << "seed " << seed;
  }
}

TEST(Pct, PrioritiesScheduleOneTaskAtATime) {
  // Depth 1 has no change points: the highest-priority task runs until it
  // finishes, so the three toy tasks run one after another, never
  // interleaved, and the bug (which needs B inside A) cannot happen.
  SimConfig config;
  config.strategy = StrategySpec{StrategySpec::Kind::pct, 1, toys::ordering_bug_steps};
  config.keep_trace_events = true;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    config.seed = seed;
    const RunResult run = simulate(config, ordering_bug_default);
    ASSERT_TRUE(run.ok()) << "seed " << seed << ": " << run.summary();
    std::vector<std::uint32_t> order;
    for (const TraceEvent& event : run.trace.events()) {
      if (event.kind == EventKind::schedule && event.task != 0 && (order.empty() || order.back() != event.task)) {
        order.push_back(event.task);
      }
    }
    EXPECT_EQ(order.size(), 3U) << "seed " << seed;
  }
}

// ---------------------------------------------------------------------------
// PCT's automatic step estimate.

StrategySpec pct_depth_two_with(std::uint64_t steps_estimate) {
  StrategySpec spec = pct_depth_two();
  spec.steps_estimate = steps_estimate;
  return spec;
}

// Failing seeds of the ordering bug among the first `seeds` under `strategy`
// (resolved by the Sweeper when it has no K), and the strategy it ran.
struct Finds {
  std::uint64_t failing = 0;
  std::string strategy;
};

Finds count_finds(const StrategySpec& strategy, std::uint64_t seeds) {
  SimConfig config;
  config.strategy = strategy;
  SweepPlan plan;
  plan.seeds = seeds;
  const SweepReport report = sweep_program(config, ordering_bug_default, plan);
  EXPECT_TRUE(report.strategy.has_value());
  EXPECT_EQ(report.seeds_run, seeds);
  return Finds{report.failed.size(), report.strategy ? report.strategy->describe() : std::string()};
}

TEST(PctAutoK, EstimateIsHalfTheWarmupsLargestStepCountRoundedUp) {
  EXPECT_EQ(steps_estimate_from(0), 1U);
  EXPECT_EQ(steps_estimate_from(1), 1U);
  EXPECT_EQ(steps_estimate_from(8), 4U);
  EXPECT_EQ(steps_estimate_from(9), 5U);
  EXPECT_EQ(steps_estimate_from(151), 76U);
  EXPECT_EQ(steps_estimate_from(152), 76U);

  // The rule, by hand: the random walk's largest step count over the plan's
  // first 16 seeds.
  std::uint64_t steps_max = 0;
  for (std::uint64_t seed = 1; seed <= steps_warmup_seeds; ++seed) {
    SimConfig walk;
    walk.seed = seed;
    steps_max = std::max(steps_max, simulate(walk, ordering_bug_default).steps);
  }
  SimConfig config;
  config.strategy = parse_strategy("pct:2").value();
  SweepPlan plan;
  const ResolvedStrategy resolved = resolve_program_strategy(config, ordering_bug_default, plan);
  EXPECT_EQ(resolved.warmup_runs, steps_warmup_seeds);
  EXPECT_EQ(resolved.warmup_steps_max, steps_max);
  EXPECT_EQ(resolved.strategy.kind, StrategySpec::Kind::pct);
  EXPECT_EQ(resolved.strategy.depth, 2U);
  EXPECT_EQ(resolved.strategy.steps_estimate, steps_estimate_from(steps_max));
  EXPECT_EQ(resolved.describe(), "pct:2 (K = " + std::to_string(steps_estimate_from(steps_max)) +
                                     ", estimated from 16 warm-up runs)");
  std::printf("ordering bug: random-walk warm-up's largest step count %llu, so pct:2 runs as %s\n",
              static_cast<unsigned long long>(steps_max), resolved.strategy.to_string().c_str());

  // A given K, and other strategies, are left as they are, with no warm-up.
  for (const char* given : {"pct:2:77", "random", "dfs:preemptions=1"}) {
    config.strategy = parse_strategy(given).value();
    const ResolvedStrategy kept = resolve_program_strategy(config, ordering_bug_default, plan);
    EXPECT_EQ(kept.strategy.to_string(), given);
    EXPECT_EQ(kept.warmup_runs, 0U);
    EXPECT_EQ(kept.describe(), given);
  }
}

TEST(PctAutoK, EveryShardAndJobOfAPlanSettlesOnTheSameK) {
  // A program whose step count varies with the seed, so that another
  // warm-up would give another K.
  const auto varied = [](SimWorld& world) {
    const std::uint64_t tasks = 1 + world.decide(4);
    for (std::uint64_t t = 0; t < tasks; ++t) {
      world.spawn("t", [&world] {
        for (std::uint64_t i = world.decide(200); i > 0; --i) {
          world.yield();
        }
      });
    }
  };
  SimConfig config;
  config.strategy = parse_strategy("pct:3").value();
  SweepPlan plan;
  plan.first_seed = 1'000;
  plan.seeds = 10'000;
  const std::uint64_t k = resolve_program_strategy(config, varied, plan).strategy.steps_estimate;
  for (const auto& [shard_index, shard_count, jobs, seeds] :
       std::vector<std::tuple<std::uint64_t, std::uint64_t, unsigned, std::uint64_t>>{
           {0, 4, 1, 10'000}, {3, 4, 1, 10'000}, {0, 1, 3, 10'000}, {2, 7, 2, 10'000}, {0, 1, 1, 1}}) {
    SweepPlan part = plan;
    part.shard_index = shard_index;
    part.shard_count = shard_count;
    part.jobs = jobs;
    part.seeds = seeds;
    const ResolvedStrategy resolved = resolve_program_strategy(config, varied, part);
    EXPECT_EQ(resolved.strategy.steps_estimate, k) << "shard " << shard_index << "/" << shard_count << ", " << jobs
                                                   << " jobs, " << seeds << " seeds";
    EXPECT_EQ(resolved.warmup_runs, steps_warmup_seeds);
  }
  std::printf("varied program, plan from seed 1000: pct:3 runs as pct:3:%llu in every shard and job\n",
              static_cast<unsigned long long>(k));
}

// The point of the estimate. The ordering bug is a depth-2 bug in a run of
// about 50 steps: PCT's bound 1 / (n k) makes K = 2000 some 40 times worse
// than a K near 50. The automatic K must do about as well as the best of
// the hand-chosen Ks within a factor of two of the run's length, and far
// better than the old fixed K = 2000.
TEST(PctAutoK, FindsTheShortRunsBugAboutAsOftenAsTheBestHandChosenK) {
  constexpr std::uint64_t seeds = 4'000;
  const Finds automatic = count_finds(parse_strategy("pct:2").value(), seeds);
  std::uint64_t best_hand = 0;
  std::string line = "ordering bug, failing seeds of " + std::to_string(seeds) + ": " + automatic.strategy + " " +
                     std::to_string(automatic.failing);
  for (const std::uint64_t k : {25U, 35U, 50U, 70U, 100U}) {
    const Finds hand = count_finds(pct_depth_two_with(k), seeds);
    best_hand = std::max(best_hand, hand.failing);
    line += "; pct:2:" + std::to_string(k) + " " + std::to_string(hand.failing);
  }
  const Finds fixed = count_finds(pct_depth_two_with(2'000), seeds);
  line += "; pct:2:2000 " + std::to_string(fixed.failing);
  std::printf("%s\n", line.c_str());
  RecordProperty("auto_k_finds", std::to_string(automatic.failing));
  RecordProperty("best_hand_k_finds", std::to_string(best_hand));
  RecordProperty("k_2000_finds", std::to_string(fixed.failing));

  EXPECT_GE(2 * automatic.failing, best_hand) << line;
  EXPECT_GE(automatic.failing, 10 * std::max<std::uint64_t>(fixed.failing, 1)) << line;
}

TEST(PctAutoK, SeedFilesAndReplaysNameTheResolvedK) {
  SimConfig config;
  config.strategy = parse_strategy("pct:2").value();
  SweepPlan plan;
  plan.seeds = seeds_max;
  plan.max_failures = 1;
  const SweepReport report = sweep_program(config, ordering_bug_default, plan);
  ASSERT_TRUE(report.strategy.has_value());
  ASSERT_EQ(report.failed.size(), 1U);
  const StrategySpec& ran = report.strategy->strategy;
  EXPECT_FALSE(ran.steps_estimate_is_auto());

  // The failing seed replays under the resolved name, and only under it.
  SimConfig replay;
  replay.seed = report.failed.front().seed;
  replay.strategy = parse_strategy(ran.to_string()).value();
  const RunResult again = simulate(replay, ordering_bug_default);
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(again.trace_hash, report.failed.front().trace_hash);

  SeedFile file;
  file.scenario = "ordering-bug";
  file.seed = replay.seed;
  file.strategy = ran;
  EXPECT_NE(file.replay_command().find("--strategy " + ran.to_string()), std::string::npos) << file.replay_command();
  const Result<SeedFile> back = parse_seed_file(to_json(file));
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(back.value().strategy.to_string(), ran.to_string());

  // A seed file without its K is refused: it could not replay exactly.
  std::string unresolved = to_json(file);
  const std::string named = "\"" + ran.to_string() + "\"";
  unresolved.replace(unresolved.find(named), named.size(), "\"pct:2\"");
  const Result<SeedFile> refused = parse_seed_file(unresolved);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("pct:D:K"), std::string::npos) << refused.error().message;
}

TEST(PctAutoKDeathTest, ARunRefusesAStrategyWithoutK) {
  const StrategySpec unresolved = parse_strategy("pct:3").value();
  EXPECT_DEATH((void)make_strategy(unresolved), "resolve");
}

// ---------------------------------------------------------------------------
// Strategy names.

TEST(ParseStrategy, AcceptsEveryForm) {
  const auto random = parse_strategy("random");
  ASSERT_TRUE(random.ok()) << random.error().describe();
  EXPECT_EQ(random.value().kind, StrategySpec::Kind::random_walk);
  EXPECT_EQ(random.value().to_string(), "random");

  const auto pct3 = parse_strategy("pct:3");
  ASSERT_TRUE(pct3.ok()) << pct3.error().describe();
  EXPECT_EQ(pct3.value().kind, StrategySpec::Kind::pct);
  EXPECT_EQ(pct3.value().depth, 3U);
  EXPECT_TRUE(pct3.value().steps_estimate_is_auto());
  EXPECT_EQ(pct3.value().to_string(), "pct:3");

  const auto pct2 = parse_strategy("pct:2:500");
  ASSERT_TRUE(pct2.ok()) << pct2.error().describe();
  EXPECT_EQ(pct2.value().kind, StrategySpec::Kind::pct);
  EXPECT_EQ(pct2.value().depth, 2U);
  EXPECT_EQ(pct2.value().steps_estimate, 500U);
  EXPECT_FALSE(pct2.value().steps_estimate_is_auto());
  EXPECT_EQ(pct2.value().to_string(), "pct:2:500");

  const auto dfs = parse_strategy("dfs:preemptions=2");
  ASSERT_TRUE(dfs.ok()) << dfs.error().describe();
  EXPECT_EQ(dfs.value().kind, StrategySpec::Kind::preemption_bounded);
  EXPECT_EQ(dfs.value().bound, 2U);
  EXPECT_TRUE(dfs.value().systematic());
  EXPECT_EQ(dfs.value().to_string(), "dfs:preemptions=2");

  const auto delay = parse_strategy("delay:1");
  ASSERT_TRUE(delay.ok()) << delay.error().describe();
  EXPECT_EQ(delay.value().kind, StrategySpec::Kind::delay_bounded);
  EXPECT_EQ(delay.value().bound, 1U);
  EXPECT_TRUE(delay.value().systematic());
  EXPECT_EQ(delay.value().to_string(), "delay:1");

  for (const std::string_view good :
       {"pct:1", "pct:64", "pct:64:1", "dfs:preemptions=0", "dfs:preemptions=64", "delay:0", "delay:64"}) {
    EXPECT_TRUE(parse_strategy(good).ok()) << good;
  }
  EXPECT_FALSE(random.value().systematic());
  EXPECT_FALSE(pct3.value().systematic());
}

TEST(ParseStrategy, RejectsBadTextNamingIt) {
  for (const std::string_view bad :
       {"pct:0", "pct:65", "pct:x", "walk", "pct:", "pct", "pct:2:0", "pct:2:", "pct:2:x", "pct:-1", "pct:3 ",
        "Random", "", "pct:2:500:1", "pct:18446744073709551617", "dfs", "dfs:", "dfs:preemptions=",
        "dfs:preemptions=65", "dfs:preemptions=-1", "dfs:preemptions=x", "dfs:delays=1", "dfs:2", "delay",
        "delay:", "delay:65", "delay:1:2", "delay:x", "delays:1"}) {
    const auto parsed = parse_strategy(bad);
    ASSERT_FALSE(parsed.ok()) << "accepted '" << bad << "'";
    EXPECT_EQ(parsed.error().code, ErrorCode::invalid_argument);
    const std::string& message = parsed.error().message;
    EXPECT_NE(message.find("'" + std::string(bad) + "'"), std::string::npos) << message;
    // The message says what would have been accepted.
    for (const char* form : {"'random'", "'pct:D'", "'pct:D:K'", "'dfs:preemptions=P'", "'delay:D'"}) {
      EXPECT_NE(message.find(form), std::string::npos) << form << " in " << message;
    }
  }
}

RC_GTEST_PROP(ParseStrategyProperty, ToStringRoundTrips, ()) {
  StrategySpec spec;
  spec.kind = *rc::gen::element(StrategySpec::Kind::random_walk, StrategySpec::Kind::pct,
                                StrategySpec::Kind::preemption_bounded, StrategySpec::Kind::delay_bounded);
  if (spec.kind == StrategySpec::Kind::pct) {
    spec.depth = *rc::gen::inRange(1U, StrategySpec::depth_max + 1);
    spec.steps_estimate = *rc::gen::inRange<std::uint64_t>(0, 1'000'000'000);  // 0: automatic
  }
  if (spec.systematic()) {
    spec.bound = *rc::gen::inRange(0U, StrategySpec::bound_max + 1);
  }
  const auto parsed = parse_strategy(spec.to_string());
  RC_ASSERT(parsed.ok());
  RC_ASSERT(parsed.value().kind == spec.kind);
  RC_ASSERT(parsed.value().to_string() == spec.to_string());
  if (spec.kind == StrategySpec::Kind::pct) {
    RC_ASSERT(parsed.value().depth == spec.depth);
    RC_ASSERT(parsed.value().steps_estimate == spec.steps_estimate);
  }
  RC_ASSERT(parsed.value().bound == spec.bound);
}

}  // namespace
}  // namespace seedpool::sim
