// The pool's reference model (sim/pool_model.hpp): each rule fails on the
// event sequence that breaks it, a sweep fed a broken pool fails naming the
// rule, and every rule is exercised by the built-in scenarios' sweeps — a
// rule no sweep reaches is not yet a rule.

#include <seedpool/sim/pool_model.hpp>
#include <seedpool/sim/pool_scenario.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

namespace seedpool::sim {
namespace {

PoolConfig config_of(std::size_t size) {
  PoolConfig c;
  c.size = {size, size};
  c.health_interval = Duration::zero();
  c.restart_backoff_base = milliseconds(10);
  c.restart_backoff_max = seconds(1);
  return c;
}

Instant at_ms(std::int64_t ms) { return Instant::zero() + milliseconds(ms); }

TelemetryEvent state(WorkerRef w, WorkerState from, WorkerState to, Instant t) {
  return {.kind = TelemetryKind::worker_state, .at = t, .worker = w, .from = from, .to = to};
}

TelemetryEvent request(std::uint64_t id, Instant t, Instant deadline) {
  return {.kind = TelemetryKind::checkout_request, .at = t, .checkout = id, .deadline = deadline};
}

// A grant of checkout `id`, requested at `requested`: its wait runs from then.
TelemetryEvent grant(std::uint64_t id, WorkerRef w, Instant t, Instant requested = Instant::zero()) {
  return {.kind = TelemetryKind::checkout, .at = t, .duration = t - requested, .worker = w, .checkout = id};
}

// Checkout `id`, requested at `requested`, failed with `error` at `t`.
TelemetryEvent refusal(std::uint64_t id, ErrorCode error, Instant t, Instant requested = Instant::zero()) {
  return {.kind = TelemetryKind::checkout, .at = t, .duration = t - requested, .error = error, .checkout = id};
}

// Brings `w` from nothing to ready at `t`.
void make_ready(PoolModel& model, WorkerRef w, Instant t) {
  model.on_event(state(w, WorkerState::dead, WorkerState::starting, t));
  model.on_event(state(w, WorkerState::starting, WorkerState::initializing, t));
  model.on_event({.kind = TelemetryKind::worker_init, .at = t, .worker = w});
  model.on_event(state(w, WorkerState::initializing, WorkerState::ready, t));
}

std::string rule_of(const PoolModel& model) {
  return model.violation() ? std::string(rule_name(model.violation()->rule)) : std::string("none");
}

TEST(PoolModelRules, NamesRoundTrip) {
  for (std::size_t i = 0; i < rule_count; ++i) {
    const Rule rule = static_cast<Rule>(i);
    ASSERT_EQ(rule_from_name(rule_name(rule)), rule) << rule_name(rule);
  }
  EXPECT_FALSE(rule_from_name("no-such-rule").has_value());
}

TEST(PoolModelRules, AGrantPastAnEarlierWaiterBreaksFifo) {
  PoolModel model(config_of(1));
  const WorkerRef w{0, 1};
  model.on_event(request(1, at_ms(0), at_ms(100)));
  model.on_event(request(2, at_ms(0), at_ms(100)));
  make_ready(model, w, at_ms(1));
  model.on_event(grant(2, w, at_ms(1)));
  EXPECT_EQ(rule_of(model), "fifo");
}

TEST(PoolModelRules, AnIdleWorkerBesideAWaiterWhenTimeMovesBreaksGrantPrompt) {
  PoolModel model(config_of(1));
  const WorkerRef w{0, 1};
  make_ready(model, w, at_ms(0));
  model.on_event(request(1, at_ms(1), at_ms(100)));
  EXPECT_EQ(rule_of(model), "none") << "the pool may still be handling the request";
  model.before_time_advance(at_ms(1), at_ms(2));
  EXPECT_EQ(rule_of(model), "grant-prompt");
}

TEST(PoolModelRules, AWaiterPastItsDeadlineBreaksExpiryPrompt) {
  PoolModel model(config_of(0));
  model.on_event(request(1, at_ms(0), at_ms(10)));
  model.before_time_advance(at_ms(5), at_ms(10));
  EXPECT_EQ(rule_of(model), "none");
  model.before_time_advance(at_ms(10), at_ms(11));
  EXPECT_EQ(rule_of(model), "expiry-prompt");
}

TEST(PoolModelRules, ATimeoutBeforeTheDeadlineBreaksExpiryPrompt) {
  PoolModel model(config_of(0));
  model.on_event(request(1, at_ms(0), at_ms(10)));
  model.on_event(refusal(1, ErrorCode::timeout, at_ms(9)));
  EXPECT_EQ(rule_of(model), "expiry-prompt");
}

TEST(PoolModelRules, CancelledWithoutACancelBreaksCancelPrompt) {
  PoolModel model(config_of(0));
  model.on_event(request(1, at_ms(0), at_ms(10)));
  model.on_event(refusal(1, ErrorCode::cancelled, at_ms(1)));
  EXPECT_EQ(rule_of(model), "cancel-prompt");
}

TEST(PoolModelRules, AWaitThatIsNotRequestToAnswerBreaksTelemetryCounts) {
  PoolModel model(config_of(0));
  model.on_event(request(1, at_ms(0), at_ms(10)));
  model.on_event({.kind = TelemetryKind::checkout, .at = at_ms(10), .error = ErrorCode::timeout, .checkout = 1});
  EXPECT_EQ(rule_of(model), "telemetry-counts") << "a wait of 0 for a checkout that waited 10 ms";
}

TEST(PoolModelRules, RefusingACheckoutAnIdleWorkerCouldServeBreaksSaturation) {
  PoolConfig c = config_of(1);
  c.waiters_max = 1;
  PoolModel model(c);
  const WorkerRef w{0, 1};
  model.on_event(request(1, at_ms(0), at_ms(10)));  // the queue is full
  model.on_event(request(2, at_ms(0), at_ms(10)));
  make_ready(model, w, at_ms(0));
  model.on_event(refusal(2, ErrorCode::pool_saturated, at_ms(0)));
  ASSERT_EQ(rule_of(model), "saturation");
  EXPECT_NE(model.violation()->message.find("an idle worker could serve it"), std::string::npos)
      << model.violation()->message;
}

TEST(PoolModelRules, SaturatedBelowTheLimitBreaksSaturation) {
  PoolConfig c = config_of(0);
  c.waiters_max = 2;
  PoolModel model(c);
  model.on_event(request(1, at_ms(0), at_ms(10)));
  model.on_event(request(2, at_ms(0), at_ms(10)));
  model.on_event({.kind = TelemetryKind::checkout, .at = at_ms(0), .error = ErrorCode::pool_saturated, .checkout = 2});
  EXPECT_EQ(rule_of(model), "saturation");
}

TEST(PoolModelRules, AMissingWorkerPastItsBackoffBreaksRestartPrompt) {
  PoolModel model(config_of(1));
  const WorkerRef w{0, 1};
  make_ready(model, w, at_ms(0));
  model.on_event({.kind = TelemetryKind::worker_exit, .at = at_ms(5), .worker = w});
  model.on_event(state(w, WorkerState::ready, WorkerState::dead, at_ms(5)));
  model.before_time_advance(at_ms(5), at_ms(15));
  EXPECT_EQ(rule_of(model), "none") << "within the backoff (10 ms after one failure)";
  model.before_time_advance(at_ms(15), at_ms(16));
  EXPECT_EQ(rule_of(model), "restart-prompt");
}

// Exits of workers that served: each slot restarts at once, no backoff.
TEST(PoolModelRules, ABurstOfHealthyExitsNotReplacedAtOnceBreaksRestartPrompt) {
  PoolConfig config = config_of(2);
  config.ready_exit_window = milliseconds(100);
  PoolModel model(config);
  for (const WorkerRef w : {WorkerRef{0, 1}, WorkerRef{1, 1}}) {
    make_ready(model, w, at_ms(0));
  }
  for (const WorkerRef w : {WorkerRef{0, 1}, WorkerRef{1, 1}}) {
    model.on_event({.kind = TelemetryKind::worker_exit, .at = at_ms(200), .worker = w});
    model.on_event(state(w, WorkerState::ready, WorkerState::dead, at_ms(200)));
  }
  model.on_event(state(WorkerRef{0, 2}, WorkerState::dead, WorkerState::starting, at_ms(200)));
  EXPECT_EQ(rule_of(model), "none");
  model.before_time_advance(at_ms(200), at_ms(201));
  EXPECT_EQ(rule_of(model), "restart-prompt") << "slot 1 served and was not restarted before time moved";
}

// A slot that failed keeps its backoff: its replacement does not move to a
// free slot without one.
TEST(PoolModelRules, AReplacementMovedPastABackingOffSlotBreaksRestartBackoff) {
  PoolConfig config = config_of(2);
  config.size = {2, 3};
  PoolModel model(config);
  make_ready(model, WorkerRef{0, 1}, at_ms(0));
  make_ready(model, WorkerRef{1, 1}, at_ms(0));
  model.on_event({.kind = TelemetryKind::worker_exit, .at = at_ms(5), .worker = WorkerRef{0, 1}});
  model.on_event(state(WorkerRef{0, 1}, WorkerState::ready, WorkerState::dead, at_ms(5)));
  model.on_event(state(WorkerRef{2, 1}, WorkerState::dead, WorkerState::starting, at_ms(5)));
  EXPECT_EQ(rule_of(model), "restart-backoff");
}

// An exit within ready_exit_window after ready is a failed start: two of
// them open a breaker of breaker_failures 2, though each worker got ready.
TEST(PoolModelRules, ExitsSoonAfterReadyCountTowardTheBreaker) {
  PoolConfig config = config_of(1);
  config.breaker_failures = 2;
  PoolModel model(config);
  make_ready(model, WorkerRef{0, 1}, at_ms(0));
  model.on_event({.kind = TelemetryKind::worker_exit, .at = at_ms(5), .worker = WorkerRef{0, 1}});
  model.on_event(state(WorkerRef{0, 1}, WorkerState::ready, WorkerState::dead, at_ms(5)));
  model.before_time_advance(at_ms(5), at_ms(15));
  EXPECT_EQ(rule_of(model), "none");
  make_ready(model, WorkerRef{0, 2}, at_ms(15));
  model.on_event({.kind = TelemetryKind::worker_exit, .at = at_ms(20), .worker = WorkerRef{0, 2}});
  model.on_event(state(WorkerRef{0, 2}, WorkerState::ready, WorkerState::dead, at_ms(20)));
  model.before_time_advance(at_ms(20), at_ms(21));
  EXPECT_EQ(rule_of(model), "breaker-opens");
}

TEST(PoolModelRules, AnIllegalTransitionBreaksStateTransition) {
  PoolModel model(config_of(1));
  const WorkerRef w{0, 1};
  model.on_event(state(w, WorkerState::dead, WorkerState::starting, at_ms(0)));
  model.on_event(state(w, WorkerState::starting, WorkerState::busy, at_ms(0)));
  EXPECT_EQ(rule_of(model), "state-transition");
}

TEST(PoolModelRules, TheBreakerOpeningEarlyBreaksBreakerOpens) {
  PoolModel model(config_of(1));
  model.on_event({.kind = TelemetryKind::breaker, .at = at_ms(0), .breaker = BreakerState::open});
  EXPECT_EQ(rule_of(model), "breaker-opens");
}

TEST(PoolModelRules, CountsThatDifferFromTheCallersBreakAccounting) {
  PoolModel model(config_of(0));
  model.on_event(request(1, at_ms(0), at_ms(10)));
  model.on_event(refusal(1, ErrorCode::timeout, at_ms(10)));
  model.checkout_answered(1, ErrorCode::timeout, at_ms(10));
  PoolStats stats;
  stats.checkouts["timeout"] = 2;  // counted twice
  model.check_accounting(stats);
  EXPECT_EQ(rule_of(model), "checkout-accounting");
}

TelemetryEvent shutdown_event(Instant t, Instant deadline) {
  return {.kind = TelemetryKind::pool_shutdown, .at = t, .deadline = deadline};
}

// A worker leased at 1 ms; a shutdown with grace until 100 ms begins at
// 2 ms; then a second shutdown asks for an end at 20 ms.
void lease_then_shut_down_twice(PoolModel& model) {
  const WorkerRef w{0, 1};
  make_ready(model, w, at_ms(0));
  model.on_event(request(1, at_ms(1), at_ms(100)));
  model.on_event(grant(1, w, at_ms(1), at_ms(1)));
  model.on_event(state(w, WorkerState::ready, WorkerState::busy, at_ms(1)));
  model.shutdown_requested(at_ms(100));
  model.on_event(shutdown_event(at_ms(2), at_ms(100)));
  model.shutdown_requested(at_ms(20));
}

TEST(PoolModelRules, ALeaseHeldPastTheEarliestAskedDeadlineBreaksShutdownGrace) {
  PoolModel model(config_of(1));
  lease_then_shut_down_twice(model);  // and the pool ignores the second
  model.before_time_advance(at_ms(2), at_ms(20));
  EXPECT_EQ(rule_of(model), "none") << "not yet past the earlier deadline";
  model.before_time_advance(at_ms(20), at_ms(21));
  EXPECT_EQ(rule_of(model), "shutdown-grace");
}

TEST(PoolModelRules, ALaterShutdownThatLengthensTheGraceBreaksShutdownGrace) {
  PoolModel model(config_of(1));
  model.shutdown_requested(at_ms(100));
  model.on_event(shutdown_event(at_ms(0), at_ms(100)));
  model.shutdown_requested(at_ms(200));
  model.on_event(shutdown_event(at_ms(1), at_ms(200)));
  EXPECT_EQ(rule_of(model), "shutdown-grace");
}

TEST(PoolModelRules, AGraceEndingBeforeAnyAskedDeadlineBreaksShutdownGrace) {
  PoolModel model(config_of(1));
  model.shutdown_requested(at_ms(100));
  model.on_event(shutdown_event(at_ms(0), at_ms(50)));
  EXPECT_EQ(rule_of(model), "shutdown-grace");
}

TEST(PoolModelRules, AShorterGraceFromALaterShutdownIsKept) {
  PoolModel model(config_of(1));
  lease_then_shut_down_twice(model);
  model.on_event(shutdown_event(at_ms(3), at_ms(20)));
  EXPECT_EQ(rule_of(model), "none");
  model.before_time_advance(at_ms(3), at_ms(20));
  EXPECT_EQ(rule_of(model), "none");
}

// A pool whose telemetry says it served a later waiter first: the sweep
// fails, and its failure names the rule.
TEST(PoolModelRules, ASweepOfABrokenPoolFailsNamingTheRule) {
  Scenario s;
  s.name = "fifo-broken";
  s.body = [](ScenarioContext& ctx) {
    PoolConfig c = config_of(1);
    c.size.max = 2;  // room for the worker the broken pool reports
    c.name = "broken";
    c.command.program = "/opt/test/worker";
    PoolHarness harness(ctx);
    Pool& pool = harness.make_pool(c);
    (void)harness.start_pool();
    // What a pool serving newest first would report, fed to the checker.
    const WorkerRef w{1, 1000};  // the free slot, a generation of its own
    const Instant now = ctx.world.now();
    harness.checker().on_event(request(1001, now, now + seconds(1)));
    harness.checker().on_event(request(1002, now, now + seconds(1)));
    harness.checker().on_event(state(w, WorkerState::dead, WorkerState::starting, now));
    harness.checker().on_event(state(w, WorkerState::starting, WorkerState::initializing, now));
    harness.checker().on_event(state(w, WorkerState::initializing, WorkerState::ready, now));
    harness.checker().on_event(grant(1002, w, now, now));
    ctx.world.yield();
    (void)pool.shutdown();
  };
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    ScenarioOptions options;
    options.sim.seed = seed;
    const ScenarioResult result = run_scenario(s, options);
    ASSERT_FALSE(result.run.ok()) << "seed " << seed;
    EXPECT_EQ(result.failure_kind, "fifo") << result.run.message;
    EXPECT_NE(result.run.message.find("[fifo] checkout 1002 was granted"), std::string::npos) << result.run.message;
  }
}

// Every rule is exercised — its check ran on a case that could break it —
// by a short sweep of the built-in scenarios, random walk and PCT + swarm.
TEST(PoolModelRules, EveryRuleIsExercisedByTheBuiltInSweeps) {
  std::map<std::string, std::uint64_t> runs;
  for (const Scenario& scenario : ScenarioRegistry::instance().all()) {
    if (!scenario.builtin) {
      continue;
    }
    for (const bool pct : {false, true}) {
      for (std::uint64_t i = 0; i < 150; ++i) {
        ScenarioOptions options;
        options.sim.seed = (pct ? 1'000'000 : 1) + i;
        if (pct) {
          options.sim.strategy = parse_strategy("pct:3:2000").value();
          options.swarm = true;
        }
        const ScenarioResult result = run_scenario(scenario, options);
        ASSERT_TRUE(result.run.ok()) << scenario.name << ": " << result.run.summary();
        for (const auto& [key, hits] : result.coverage) {
          runs[key] += hits > 0 ? 1 : 0;
        }
      }
    }
  }
  for (std::size_t i = 0; i < rule_count; ++i) {
    const std::string key = fmt::format("rule:{}", rule_name(static_cast<Rule>(i)));
    EXPECT_GT(runs[key], 0U) << "no sweep exercises the rule " << rule_name(static_cast<Rule>(i));
  }
  EXPECT_GT(runs["instant:grant_crossed_cancel"], 0U) << "no sweep crosses a grant with a cancel";
}

}  // namespace
}  // namespace seedpool::sim
