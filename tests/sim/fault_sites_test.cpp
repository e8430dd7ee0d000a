// Named fault sites as a user declares them: at the use site, by name, with
// a rate; on or off per run in swarm mode; counted, traced and described by
// name; removed by shrinking; and silent (no decision) at rate 0 or in the
// quiet period.

#include <seedpool/core/channel.hpp>
#include <seedpool/sim/faults.hpp>
#include <seedpool/sim/pool_faults.hpp>
#include <seedpool/sim/scenario.hpp>
#include <seedpool/sim/shrink.hpp>
#include <seedpool/sim/sweeper.hpp>
#include <seedpool/sim/testing/gtest.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace seedpool::sim {
namespace {

constexpr std::size_t relay_clients = 3;
constexpr std::size_t messages_per_client = 12;

// What the relay did, shared with its client tasks.
struct Relayed {
  std::size_t acked = 0;
  std::size_t lost = 0;
};

// A component's test double that has only the injector at hand: a slow
// acknowledgement, which the client simply waits for.
Duration ack_delay(FaultInjector& faults) {
  return SEEDPOOL_FAULT(faults, "relay.slow_ack", 200'000) ? milliseconds(3) : Duration::zero();
}

void relay_client(ScenarioContext& ctx, Relayed& relayed) {
  for (std::size_t i = 0; i < messages_per_client; ++i) {
    ctx.world.sleep_for(ack_delay(ctx.faults));
    // The planted bug: a dropped acknowledgement is never resent.
    if (SEEDPOOL_FAULT(ctx, "relay.drop_ack", 10'000)) {
      ++relayed.lost;
      continue;
    }
    ++relayed.acked;
  }
}

}  // namespace

// A user's scenario with two fault sites of its own and an empty profile:
// the sites declare their rates. Only relay.drop_ack can fail it.
SEEDPOOL_SCENARIO(user_ack_relay, "user-ack-relay", "clients whose acknowledgements come late or not at all",
                  FaultOptions{}) {
  auto relayed = std::make_shared<Relayed>();
  auto done = std::make_shared<Channel<int>>(ctx.world, "clients-done", relay_clients);
  for (std::size_t c = 0; c < relay_clients; ++c) {
    ctx.world.spawn("client " + std::to_string(c), [&ctx, relayed, done] {
      relay_client(ctx, *relayed);
      (void)done->send(1);
    });
  }
  for (std::size_t c = 0; c < relay_clients; ++c) {
    (void)done->receive();
  }
  if (relayed->lost > 0) {
    ctx.world.fail(SEEDPOOL_INVARIANT("every-ack"), std::to_string(relayed->lost) + " message(s) never acknowledged");
  }
}

namespace {

const Scenario& ack_relay() {
  const Scenario* scenario = ScenarioRegistry::instance().find("user-ack-relay");
  SEEDPOOL_ASSERT(scenario != nullptr);
  return *scenario;
}

std::uint64_t hits(const Coverage& coverage, const std::string& key) {
  const auto it = coverage.find(key);
  return it == coverage.end() ? 0 : it->second;
}

// The first seed from `first` whose run fails with both sites fired.
std::optional<ScenarioResult> failing_run_with_both_sites(ScenarioOptions options, std::uint64_t first) {
  for (std::uint64_t seed = first; seed < first + 2000; ++seed) {
    options.sim.seed = seed;
    ScenarioResult result = run_scenario(ack_relay(), options);
    if (!result.run.ok() && hits(result.coverage, "fault:relay.slow_ack") > 0) {
      return result;
    }
  }
  return std::nullopt;
}

// A scenario whose body is `body`, without a profile.
Scenario scenario_of(std::function<void(ScenarioContext&)> body, FaultOptions profile = {}) {
  Scenario s;
  s.name = "fault-sites-test";
  s.description = "a fault sites test body";
  s.faults = std::move(profile);
  s.body = std::move(body);
  return s;
}

TEST(FaultSites, ANameIsOneSiteWhereverItIsUsed) {
  const FaultSite first = SEEDPOOL_FAULT_SITE("test.same_name");
  const FaultSite second = FaultSite::named("test.same_name");
  EXPECT_EQ(first, second);
  EXPECT_EQ(first.name(), "test.same_name");
  EXPECT_EQ(fault_site_name(first.index()), "test.same_name");
  EXPECT_FALSE(first == SEEDPOOL_FAULT_SITE("test.other_name"));
  // The pool's sites are registered sites too, at the indices they reserve.
  EXPECT_EQ(FaultSite::named("call_crash"), pool_faults::call_crash);
  for (const FaultSite site : pool_faults::all) {
    EXPECT_EQ(fault_site_name(site.index()), site.name());
  }
}

TEST(FaultSites, NamesFitCoverageKeysAndDescriptions) {
  EXPECT_TRUE(valid_fault_site_name("queue.drop_ack"));
  EXPECT_TRUE(valid_fault_site_name("disk/torn-write_2"));
  EXPECT_FALSE(valid_fault_site_name(""));
  EXPECT_FALSE(valid_fault_site_name("drop ack"));
  EXPECT_FALSE(valid_fault_site_name("drop=ack"));
  EXPECT_FALSE(valid_fault_site_name(std::string(fault_site_name_bytes_max + 1, 'a')));
}

TEST(FaultSites, TheProfileDescribesItselfInTheOrderSet) {
  FaultOptions profile;
  EXPECT_EQ(profile.describe(), "none");
  profile.set("queue.drop_ack", 20'000);
  profile[pool_faults::call_crash] = 5'000;
  profile["queue.slow"] = 0;
  EXPECT_EQ(profile.describe(), "queue.drop_ack=20000 call_crash=5000 queue.slow=0");
  EXPECT_EQ(profile.rate("queue.drop_ack"), 20'000u);
  EXPECT_EQ(profile.rate(pool_faults::call_crash), 5'000u);
  EXPECT_EQ(profile.rate("queue.unknown"), std::nullopt);
}

// A site at rate 0 is free: the run's decisions are those of the same body
// without it, with and without swarm.
TEST(FaultSites, ASiteAtRateZeroNeverFiresAndMakesNoDecision) {
  const Scenario with_site = scenario_of([](ScenarioContext& ctx) {
    for (int i = 0; i < 50; ++i) {
      if (SEEDPOOL_FAULT(ctx, "test.rate_zero", 0)) {
        ctx.world.fail(SEEDPOOL_INVARIANT("fired"), "a site at rate 0 fired");
      }
      (void)ctx.world.decide(1000);
    }
    EXPECT_EQ(ctx.faults.fired(SEEDPOOL_FAULT_SITE("test.rate_zero")), 0u);
    EXPECT_EQ(ctx.faults.rate(SEEDPOOL_FAULT_SITE("test.rate_zero")), 0u);
  });
  const Scenario without_site = scenario_of([](ScenarioContext& ctx) {
    for (int i = 0; i < 50; ++i) {
      (void)ctx.world.decide(1000);
    }
  });
  for (const bool swarm : {false, true}) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      ScenarioOptions options;
      options.sim.seed = seed;
      options.swarm = swarm;
      const ScenarioResult a = run_scenario(with_site, options);
      const ScenarioResult b = run_scenario(without_site, options);
      ASSERT_TRUE(a.run.ok()) << a.run.summary();
      EXPECT_EQ(a.run.decisions, b.run.decisions) << "seed " << seed << " swarm " << swarm;
      EXPECT_EQ(a.run.trace_hash, b.run.trace_hash);
      EXPECT_EQ(hits(a.coverage, "fault:test.rate_zero"), 0u);
      EXPECT_EQ(a.faults.describe(), "none");
    }
  }
}

// The quiet period of a liveness check switches every site off: checks then
// make no decision, and a site first met there is not settled.
TEST(FaultSites, TheQuietPeriodMakesNoDecision) {
  const Scenario quiet = scenario_of([](ScenarioContext& ctx) {
    ctx.faults.set_enabled(false);
    for (int i = 0; i < 50; ++i) {
      if (SEEDPOOL_FAULT(ctx, "test.quiet", ppm_one)) {
        ctx.world.fail(SEEDPOOL_INVARIANT("fired"), "a site fired in the quiet period");
      }
    }
    EXPECT_EQ(ctx.faults.pick({{SEEDPOOL_FAULT_SITE("test.quiet_a"), ppm_one}, {SEEDPOOL_FAULT_SITE("test.quiet_b")}}),
              std::nullopt);
    EXPECT_EQ(ctx.faults.rate(SEEDPOOL_FAULT_SITE("test.quiet")), std::nullopt);
  });
  ScenarioOptions options;
  options.swarm = true;
  const ScenarioResult result = run_scenario(quiet, options);
  ASSERT_TRUE(result.run.ok()) << result.run.summary();
  EXPECT_EQ(result.run.decisions.size(), 1u);  // the latency grid, drawn by the injector
}

// Every check is one decision whose 0 never fires: the all-zero run (an
// empty decision list) fires nothing, however high the rate.
TEST(FaultSites, ADecisionOfZeroNeverFires) {
  const Scenario always = scenario_of([](ScenarioContext& ctx) {
    std::size_t fired = 0;
    for (int i = 0; i < 20; ++i) {
      fired += SEEDPOOL_FAULT(ctx, "test.nearly_always", ppm_one - 1) ? 1u : 0u;
    }
    EXPECT_EQ(fired, 0u);
  });
  ScenarioOptions options;
  options.sim.decisions = std::vector<std::uint64_t>{};
  const ScenarioResult result = run_scenario(always, options);
  ASSERT_TRUE(result.run.ok()) << result.run.summary();
  EXPECT_EQ(result.run.decisions, std::vector<std::uint64_t>(21, 0));  // the grid, then one per check
}

// The profile overrides a rate a use site declares, switches a site off, or
// switches on a site declared at 0.
TEST(FaultSites, TheProfileOverridesTheDeclaredRate) {
  const auto body = [](ScenarioContext& ctx) {
    for (int i = 0; i < 200; ++i) {
      (void)SEEDPOOL_FAULT(ctx, "test.declared_often", 500'000);
      (void)SEEDPOOL_FAULT(ctx, "test.declared_never", 0);
    }
  };
  FaultOptions profile;
  profile.set("test.declared_often", 0);
  profile.set("test.declared_never", ppm_one);
  const ScenarioResult overridden = run_scenario(scenario_of(body, profile), ScenarioOptions{});
  ASSERT_TRUE(overridden.run.ok());
  EXPECT_EQ(hits(overridden.coverage, "fault:test.declared_often"), 0u);
  EXPECT_EQ(hits(overridden.coverage, "fault:test.declared_never"), 200u);
  EXPECT_EQ(overridden.faults.describe(), "test.declared_never=1000000");

  const ScenarioResult declared = run_scenario(scenario_of(body), ScenarioOptions{});
  EXPECT_GT(hits(declared.coverage, "fault:test.declared_often"), 50u);
  EXPECT_EQ(hits(declared.coverage, "fault:test.declared_never"), 0u);
  EXPECT_EQ(declared.faults.describe(), "test.declared_often=500000");
}

// pick draws one of several sites that exclude one another from a single
// decision: the top of its range goes to the first site.
TEST(FaultSites, PickDrawsOneOfSeveralSitesFromOneDecision) {
  const auto body = [](ScenarioContext& ctx) {
    const std::optional<std::size_t> which = ctx.faults.pick(
        {{SEEDPOOL_FAULT_SITE("test.torn_write"), 100'000}, {SEEDPOOL_FAULT_SITE("test.lost_write"), 100'000}});
    ctx.world.note(which ? (*which == 0 ? "torn" : "lost") : "none");
  };
  struct Case {
    std::uint64_t decision;
    std::uint64_t torn;  // firings expected of each site
    std::uint64_t lost;
  };
  for (const Case c : {Case{ppm_one - 1, 1, 0}, Case{ppm_one - 150'000, 0, 1}, Case{ppm_one - 250'000, 0, 0}}) {
    ScenarioOptions options;
    options.sim.decisions = std::vector<std::uint64_t>{0, c.decision};
    const ScenarioResult result = run_scenario(scenario_of(body), options);
    ASSERT_TRUE(result.run.ok());
    EXPECT_EQ(result.run.decisions.size(), 2u);  // the grid and the one pick
    EXPECT_EQ(hits(result.coverage, "fault:test.torn_write"), c.torn) << c.decision;
    EXPECT_EQ(hits(result.coverage, "fault:test.lost_write"), c.lost) << c.decision;
  }
}

// The sweep `run --swarm` makes: its coverage report counts both sites by
// name, and each site is on in some runs and off in others.
TEST(UserFaultSites, ASwarmSweepCoversBothSitesByName) {
  ScenarioOptions options;
  options.swarm = true;
  std::size_t slow_ack_off = 0;
  std::size_t drop_ack_off = 0;
  const auto count_off = [&](const SeedOutcome& o, const SweepReport&) {
    slow_ack_off += o.faults.find("relay.slow_ack=") == std::string::npos ? 1u : 0u;
    drop_ack_off += o.faults.find("relay.drop_ack=") == std::string::npos ? 1u : 0u;
  };
  const SweepReport report = sweep_scenario(ack_relay(), options, SweepPlan{.seeds = 200}, false, count_off);
  ASSERT_EQ(report.seeds_run, 200u);
  ASSERT_TRUE(report.coverage.contains("fault:relay.slow_ack"));
  ASSERT_TRUE(report.coverage.contains("fault:relay.drop_ack"));
  EXPECT_GT(report.coverage.at("fault:relay.slow_ack").first, 20u);  // runs in which it fired
  EXPECT_GT(report.coverage.at("fault:relay.drop_ack").first, 0u);
  EXPECT_GT(slow_ack_off, 20u);
  EXPECT_LT(slow_ack_off, 180u);
  EXPECT_GT(drop_ack_off, 20u);
  EXPECT_LT(drop_ack_off, 180u);
}

// A failure names the user's sites with their rates in that run.
TEST(UserFaultSites, AFailureDescribesTheSitesAndTheirRates) {
  const std::optional<ScenarioResult> failing = failing_run_with_both_sites(ScenarioOptions{}, 1);
  ASSERT_TRUE(failing.has_value());
  EXPECT_EQ(failing->failure_kind, "every-ack");
  EXPECT_EQ(failing->faults.describe(), "relay.slow_ack=200000 relay.drop_ack=10000");

  ScenarioOptions swarm;
  swarm.swarm = true;
  const std::optional<ScenarioResult> swarm_failing = failing_run_with_both_sites(swarm, 1);
  ASSERT_TRUE(swarm_failing.has_value());
  const std::optional<std::uint32_t> drop_rate = swarm_failing->faults.rate("relay.drop_ack");
  ASSERT_TRUE(drop_rate.has_value());
  EXPECT_GE(*drop_rate, 1u);
  EXPECT_LE(*drop_rate, 10'000u);
  EXPECT_NE(swarm_failing->faults.describe().find("relay.drop_ack=" + std::to_string(*drop_rate)), std::string::npos);

  const auto dir = std::filesystem::temp_directory_path() / "seedpool-fault-sites-test";
  std::filesystem::remove_all(dir);
  const ::testing::AssertionResult swept =
      testing::sweep_passes(ack_relay(), {.seeds = 200, .swarm = true, .failure_dir = dir.string()});
  ASSERT_FALSE(swept);
  EXPECT_NE(std::string(swept.message()).find("faults: relay."), std::string::npos) << swept.message();
  std::filesystem::remove_all(dir);
}

// Shrinking keeps the firing that fails the run and removes the others.
TEST(UserFaultSites, ShrinkingRemovesTheIrrelevantSite) {
  for (const bool swarm : {false, true}) {
    ScenarioOptions options;
    options.swarm = swarm;
    const std::optional<ScenarioResult> failing = failing_run_with_both_sites(options, 1);
    ASSERT_TRUE(failing.has_value());
    ASSERT_GT(hits(failing->coverage, "fault:relay.slow_ack"), 0u);

    const ShrinkResult shrunk = shrink(ack_relay(), options, failing->run.decisions, "every-ack", 2000);
    ScenarioOptions replay = options;
    replay.sim.decisions = shrunk.decisions;
    const ScenarioResult replayed = run_scenario(ack_relay(), replay);
    EXPECT_EQ(replayed.failure_kind, "every-ack") << "swarm " << swarm;
    EXPECT_EQ(hits(replayed.coverage, "fault:relay.slow_ack"), 0u) << "swarm " << swarm;
    EXPECT_GE(hits(replayed.coverage, "fault:relay.drop_ack"), 1u) << "swarm " << swarm;
    EXPECT_LT(count_nonzero(shrunk.decisions), count_nonzero(failing->run.decisions));
    std::printf("swarm %d: shrunk from %zu decisions (%zu non-zero, %llu slow acks) to %zu (%zu non-zero)"
                " in %zu replays\n",
                swarm ? 1 : 0, shrunk.original_size, shrunk.original_nonzero,
                static_cast<unsigned long long>(hits(failing->coverage, "fault:relay.slow_ack")),
                shrunk.decisions.size(), count_nonzero(shrunk.decisions), shrunk.runs);
  }
}

// The same seed gives the same run, user sites and swarm included; a firing
// is in the trace under the site's name.
TEST(UserFaultSites, SameSeedSameTraceHash) {
  for (const bool swarm : {false, true}) {
    for (std::uint64_t seed = 1; seed <= 30; ++seed) {
      ScenarioOptions options;
      options.sim.seed = seed;
      options.swarm = swarm;
      const ScenarioResult first = run_scenario(ack_relay(), options);
      const ScenarioResult second = run_scenario(ack_relay(), options);
      EXPECT_EQ(first.run.trace_hash, second.run.trace_hash) << "seed " << seed;
      EXPECT_EQ(first.run.decisions, second.run.decisions);
      EXPECT_EQ(first.coverage, second.coverage);
      EXPECT_EQ(first.faults.describe(), second.faults.describe());

      ScenarioOptions replay = options;
      replay.sim.decisions = first.run.decisions;
      EXPECT_EQ(run_scenario(ack_relay(), replay).run.trace_hash, first.run.trace_hash);
    }
  }
  ScenarioOptions traced;
  traced.sim.keep_trace_events = true;
  const std::optional<ScenarioResult> failing = failing_run_with_both_sites(traced, 1);
  ASSERT_TRUE(failing.has_value());
  const Trace& trace = failing->run.trace;
  const auto noted = [&trace](std::string_view label) {
    return std::count_if(trace.events().begin(), trace.events().end(), [&](const TraceEvent& e) {
      return e.kind == EventKind::note && trace.labels()[e.label] == label;
    });
  };
  EXPECT_EQ(static_cast<std::uint64_t>(noted("relay.drop_ack")), hits(failing->coverage, "fault:relay.drop_ack"));
  EXPECT_EQ(static_cast<std::uint64_t>(noted("relay.slow_ack")), hits(failing->coverage, "fault:relay.slow_ack"));
}

}  // namespace
}  // namespace seedpool::sim
