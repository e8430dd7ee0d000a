// Tests for the scheduling strategies: PCT with depth 2 finds the planted
// depth-2 ordering bug within a bounded number of seeds (random walk is
// measured on the same budget and reported, not judged), a failing seed and
// its decision list both reproduce the failure, and strategy names parse or
// are refused with a message that names the bad text.

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

TEST(ParseStrategy, AcceptsRandomAndPctForms) {
  const auto random = parse_strategy("random");
  ASSERT_TRUE(random.ok()) << random.error().describe();
  EXPECT_EQ(random.value().kind, StrategySpec::Kind::random_walk);
  EXPECT_EQ(random.value().to_string(), "random");

  const auto pct3 = parse_strategy("pct:3");
  ASSERT_TRUE(pct3.ok()) << pct3.error().describe();
  EXPECT_EQ(pct3.value().kind, StrategySpec::Kind::pct);
  EXPECT_EQ(pct3.value().depth, 3U);
  EXPECT_EQ(pct3.value().steps_estimate, StrategySpec{}.steps_estimate);

  const auto pct2 = parse_strategy("pct:2:500");
  ASSERT_TRUE(pct2.ok()) << pct2.error().describe();
  EXPECT_EQ(pct2.value().kind, StrategySpec::Kind::pct);
  EXPECT_EQ(pct2.value().depth, 2U);
  EXPECT_EQ(pct2.value().steps_estimate, 500U);
  EXPECT_EQ(pct2.value().to_string(), "pct:2:500");

  EXPECT_TRUE(parse_strategy("pct:1").ok());
  EXPECT_TRUE(parse_strategy("pct:64").ok());
  EXPECT_TRUE(parse_strategy("pct:64:1").ok());
}

TEST(ParseStrategy, RejectsBadTextNamingIt) {
  for (const std::string_view bad :
       {"pct:0", "pct:65", "pct:x", "walk", "pct:", "pct", "pct:2:0", "pct:2:", "pct:2:x", "pct:-1", "pct:3 ",
        "Random", "", "pct:2:500:1", "pct:18446744073709551617"}) {
    const auto parsed = parse_strategy(bad);
    ASSERT_FALSE(parsed.ok()) << "accepted '" << bad << "'";
    EXPECT_EQ(parsed.error().code, ErrorCode::invalid_argument);
    const std::string& message = parsed.error().message;
    EXPECT_NE(message.find("'" + std::string(bad) + "'"), std::string::npos) << message;
    // The message says what would have been accepted.
    EXPECT_NE(message.find("random"), std::string::npos) << message;
    EXPECT_NE(message.find("pct:"), std::string::npos) << message;
  }
}

RC_GTEST_PROP(ParseStrategyProperty, ToStringRoundTrips, ()) {
  StrategySpec spec;
  spec.kind = StrategySpec::Kind::pct;
  spec.depth = *rc::gen::inRange(1U, StrategySpec::depth_max + 1);
  spec.steps_estimate = *rc::gen::inRange<std::uint64_t>(1, 1'000'000'000);
  const auto parsed = parse_strategy(spec.to_string());
  RC_ASSERT(parsed.ok());
  RC_ASSERT(parsed.value().kind == spec.kind);
  RC_ASSERT(parsed.value().depth == spec.depth);
  RC_ASSERT(parsed.value().steps_estimate == spec.steps_estimate);
}

}  // namespace
}  // namespace seedpool::sim
