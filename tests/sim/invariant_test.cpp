// Invariants by identity: a name is one Invariant wherever it is used, a run
// that breaks one carries it as a field of its result, and the failure kind
// comes from that field, never from the text of the message.

#include <seedpool/sim/pool_checker.hpp>
#include <seedpool/sim/pool_model.hpp>
#include <seedpool/sim/scenario.hpp>
#include <seedpool/sim/sim_world.hpp>
#include <seedpool/sim/sweeper.hpp>

#include <gtest/gtest.h>

#include <string>

namespace seedpool::sim {
namespace {

TEST(Invariant, TheSameNameIsTheSameInvariant) {
  const Invariant a = Invariant::named("test.same-name");
  const Invariant b = SEEDPOOL_INVARIANT("test.same-name");
  const Invariant other = SEEDPOOL_INVARIANT("test.other-name");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.index(), b.index());
  EXPECT_FALSE(a == other);
  EXPECT_EQ(a.name(), "test.same-name");
  EXPECT_EQ(other.name(), "test.other-name");
}

TEST(Invariant, NamesAreShortAndFreeOfSpacesAndBrackets) {
  EXPECT_TRUE(valid_invariant_name("lease-exclusive"));
  EXPECT_TRUE(valid_invariant_name("queue.depth_max/2"));
  EXPECT_FALSE(valid_invariant_name(""));
  EXPECT_FALSE(valid_invariant_name("two words"));
  EXPECT_FALSE(valid_invariant_name("[bracketed]"));
  EXPECT_FALSE(valid_invariant_name(std::string(invariant_name_bytes_max + 1, 'a')));
  EXPECT_DEATH((void)Invariant::named("two words"), "an invariant name is");
}

// Each pool rule's invariant has the rule's name.
TEST(Invariant, EveryPoolRuleHasItsOwn) {
  for (std::size_t i = 0; i < rule_count; ++i) {
    const Rule rule = static_cast<Rule>(i);
    EXPECT_EQ(invariant_of(rule).name(), rule_name(rule));
    EXPECT_EQ(invariant_of(rule), Invariant::named(rule_name(rule)));
  }
}

TEST(Invariant, AFailureCarriesItsInvariantAndReadsAsBefore) {
  const RunResult run = simulate(SimConfig{}, [](SimWorld& world) {
    world.fail(SEEDPOOL_INVARIANT("test.carried"), "checkout 7 was granted twice");
    world.fail(SEEDPOOL_INVARIANT("test.later"), "only the first failure is kept");
  });
  EXPECT_EQ(run.outcome, Outcome::invariant);
  ASSERT_TRUE(run.invariant.has_value());
  EXPECT_EQ(*run.invariant, SEEDPOOL_INVARIANT("test.carried"));
  EXPECT_TRUE(run.message.starts_with("[test.carried] checkout 7 was granted twice (step ")) << run.message;
  EXPECT_EQ(failure_kind(run), "test.carried");
}

// A message is only text: brackets in it name nothing.
TEST(Invariant, AMessageAloneNamesNoInvariant) {
  const RunResult run = simulate(SimConfig{}, [](SimWorld& world) { world.fail("[looks-like-a-name] but is text"); });
  EXPECT_EQ(run.outcome, Outcome::invariant);
  EXPECT_FALSE(run.invariant.has_value());
  EXPECT_EQ(failure_kind(run), "invariant");
  const RunResult ok = simulate(SimConfig{}, [](SimWorld&) {});
  EXPECT_FALSE(ok.invariant.has_value());
  EXPECT_EQ(failure_kind(ok), "");
}

// A sweep's outcome keeps whether its kind is an invariant, and prints the
// bracketed kind once either way.
TEST(Invariant, SeedOutcomesDescribeTheirKindOnce) {
  Scenario scenario;
  scenario.name = "test-invariant-outcome";
  scenario.body = [](ScenarioContext& ctx) { ctx.world.fail(SEEDPOOL_INVARIANT("test.outcome"), "broken"); };
  const SeedOutcome named = run_scenario_seed(scenario, {}, 1, false);
  EXPECT_EQ(named.kind, "test.outcome");
  EXPECT_TRUE(named.invariant);
  EXPECT_TRUE(named.describe().starts_with("[test.outcome] broken (step ")) << named.describe();
  SeedOutcome deadlock;
  deadlock.kind = "deadlock";
  deadlock.message = "every task blocked";
  EXPECT_EQ(deadlock.describe(), "[deadlock] every task blocked");
}

}  // namespace
}  // namespace seedpool::sim
