// The classic-bug suite (classics.cpp) under every strategy. For each
// program the buggy variant is found by PCT at the program's depth with an
// automatic K within ceil(3 / p) seeds, where p = 1 / (n k^(d-1)) is PCT's
// guarantee for n tasks, k steps and depth d, and by dfs:preemptions=P at
// the program's preemption count; the fixed variant is exhausted by that
// search, or by the program's proof bound (Classic::proof). The random
// walk's seeds to the first failure are measured and printed, not required.
// Every failure found is the program's own bug (Classic::shows) and replays,
// from its seed and from its decision list. The table of figures is printed
// for the README.

#include "classics.hpp"

#include <seedpool/sim/explore.hpp>
#include <seedpool/sim/sim_world.hpp>
#include <seedpool/sim/sweeper.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

namespace seedpool::classics {
namespace {

using sim::SimWorld;

constexpr std::uint64_t random_seeds_max = 20'000;
constexpr std::uint64_t schedules_max = 200'000;

std::function<void(SimWorld&)> body_of(const Classic& c, bool fixed) {
  return [&c, fixed](SimWorld& world) { c.program(world, fixed); };
}

// Seeds to the first failure under `strategy` (0: none within `seeds`), and
// the strategy the sweep resolved (its K).
struct Swept {
  std::uint64_t first = 0;
  std::string strategy;
};

Swept first_failing(const Classic& c, const std::string& strategy, std::uint64_t seeds) {
  sim::SimConfig config;
  config.strategy = sim::parse_strategy(strategy).value();
  sim::SweepPlan plan;
  plan.seeds = seeds;
  plan.max_failures = 1;
  const sim::SweepReport report = sim::sweep_program(config, body_of(c, false), plan);
  Swept swept;
  const sim::StrategySpec resolved = report.strategy ? report.strategy->strategy : config.strategy;
  swept.strategy = resolved.to_string();
  if (!report.failed.empty()) {
    swept.first = report.failed.front().seed;
    // It is the program's bug, not some other failure.
    EXPECT_NE(report.failed.front().message.find(c.shows), std::string::npos)
        << c.name << " under " << strategy << ": " << report.failed.front().message;
    // The failure replays: the same seed, the same hash.
    config.strategy = resolved;
    config.seed = swept.first;
    const sim::RunResult again = sim::simulate(config, body_of(c, false));
    EXPECT_EQ(again.trace_hash, report.failed.front().trace_hash) << c.name;
    // And from its decision list alone.
    sim::SimConfig from_list;
    from_list.strategy = resolved;
    from_list.decisions = again.decisions;
    EXPECT_EQ(sim::simulate(from_list, body_of(c, false)).trace_hash, again.trace_hash) << c.name;
  }
  return swept;
}

std::uint64_t steps_of(const Classic& c) {
  sim::SimConfig config;
  config.seed = 1;
  return sim::simulate(config, body_of(c, true)).steps;
}

class Classics : public ::testing::TestWithParam<std::size_t> {};

TEST_P(Classics, FoundWithinTheBoundsAndTheFixExhausted) {
  const Classic& c = all()[GetParam()];
  const std::uint64_t n = c.threads + 1;  // and main
  const Swept random = first_failing(c, "random", random_seeds_max);

  // PCT at the bug's depth, K estimated from the warm-up.
  const std::string pct_name = "pct:" + std::to_string(c.depth);
  const Swept probe = first_failing(c, pct_name, 1);  // resolves K
  const std::uint64_t k = sim::parse_strategy(probe.strategy).value().steps_estimate;
  const double p = 1.0 / (static_cast<double>(n) * std::pow(static_cast<double>(k), c.depth - 1.0));
  const auto bound = static_cast<std::uint64_t>(std::ceil(3.0 / p));
  const Swept pct = first_failing(c, pct_name, bound);

  // Systematic: the buggy variant fails within its preemption count; the
  // fixed one is exhausted at it, or at the program's proof bound.
  sim::ExploreSpec spec;
  spec.strategy = sim::parse_strategy("dfs:preemptions=" + std::to_string(c.preemptions)).value();
  spec.schedules_max = schedules_max;
  sim::ExploreSpec proof = spec;
  if (!c.proof.empty()) {
    proof.strategy = sim::parse_strategy(c.proof).value();
  }
  const sim::ExploreReport buggy = sim::explore_program(sim::SimConfig{}, body_of(c, false), spec);
  const sim::ExploreReport fixed = sim::explore_program(sim::SimConfig{}, body_of(c, true), proof);

  std::printf("| %s | %llu | %llu | %s | 1/%.0f | %s | %s | %s: %s | %s: %s |\n", c.name.c_str(),
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(steps_of(c)),
              probe.strategy.c_str(), 1.0 / p, random.first ? std::to_string(random.first).c_str() : "none",
              pct.first ? std::to_string(pct.first).c_str() : "none", spec.strategy.to_string().c_str(),
              buggy.failure ? std::to_string(buggy.failure->schedule).c_str() : "none",
              proof.strategy.to_string().c_str(),
              fixed.exhausted ? ("exhausted, " + std::to_string(fixed.schedules)).c_str() : "NOT exhausted");

  EXPECT_NE(pct.first, 0U) << c.name << ": " << probe.strategy << " found nothing within its bound of " << bound
                           << " seeds";
  EXPECT_TRUE(fixed.exhausted) << c.name << ": " << fixed.describe();
  ASSERT_TRUE(buggy.failure.has_value()) << c.name << ": " << buggy.describe();

  EXPECT_NE(buggy.failure->message.find(c.shows), std::string::npos) << c.name << ": " << buggy.failure->message;

  // The systematic failure replays from its decision list.
  sim::SimConfig replay;
  replay.strategy = spec.strategy;
  replay.decisions = buggy.failure->decisions;
  EXPECT_EQ(sim::simulate(replay, body_of(c, false)).trace_hash, buggy.failure->trace_hash) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Suite, Classics, ::testing::Range<std::size_t>(0, all().size()),
                         [](const ::testing::TestParamInfo<std::size_t>& param) { return all()[param.param].name; });

}  // namespace
}  // namespace seedpool::classics

namespace seedpool::classics {
namespace {

std::uint64_t failures_of(const Classic& c, const std::string& strategy, std::uint64_t seeds) {
  sim::SimConfig config;
  config.strategy = sim::parse_strategy(strategy).value();
  sim::SweepPlan plan;
  plan.seeds = seeds;
  return sim::sweep_program(config, body_of(c, false), plan).failed.size();
}

// pct:3 with its K estimated finds each bug at least half as often as the
// best of a range of hand-chosen K around the estimate (K/4 .. 4K, and
// 2000, the old default), over the same seeds. The programs of a dozen
// tasks fail in about 1 seed in 2,000 to 5,000, so they get 100,000 seeds:
// with 20,000 the counts are a handful and the comparison is noise.
// twostage_100 is left out: at depth 3 its guarantee is 1 / (n k^2), about
// one seed in six million, and 100,000 seeds gave 0 or 1 failure at every
// K of the range, so no comparison can be made (its depth-2 bound is
// checked by the Classics test above).
TEST(ClassicsAutoK, FindsEachBugAtLeastHalfAsOftenAsTheBestHandChosenK) {
  for (const Classic& c : all()) {
    if (c.threads > 50) {
      continue;
    }
    // Enough seeds for a few failures at the program's PCT bound.
    const std::uint64_t seeds = c.threads > 10 ? 100'000 : 2'000;
    const std::string pct = "pct:3";
    const std::uint64_t automatic = failures_of(c, pct, seeds);
    sim::SimConfig probe;
    probe.strategy = sim::parse_strategy(pct).value();
    sim::SweepPlan one;
    one.seeds = 1;
    const std::uint64_t k = sim::resolve_program_strategy(probe, body_of(c, false), one).strategy.steps_estimate;
    std::uint64_t best = 0;
    std::uint64_t best_k = 0;
    std::string row;
    for (const std::uint64_t hand : {std::max<std::uint64_t>(1, k / 4), std::max<std::uint64_t>(1, k / 2), k, 2 * k,
                                     4 * k, std::uint64_t{2000}}) {
      const std::uint64_t found = failures_of(c, pct + ":" + std::to_string(hand), seeds);
      row += " K=" + std::to_string(hand) + ":" + std::to_string(found);
      if (found > best) {
        best = found;
        best_k = hand;
      }
    }
    std::printf("| %s | %s (K = %llu): %llu | best K = %llu: %llu |%s\n", c.name.c_str(), pct.c_str(),
                static_cast<unsigned long long>(k), static_cast<unsigned long long>(automatic),
                static_cast<unsigned long long>(best_k), static_cast<unsigned long long>(best), row.c_str());
    EXPECT_GE(2 * automatic, best) << c.name << ": automatic K found " << automatic << ", K = " << best_k << " found "
                                   << best;
  }
}

}  // namespace
}  // namespace seedpool::classics
