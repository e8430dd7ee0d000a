// The circuit breaker inside the pool: repeated init failures open it;
// while open, checkouts fail fast with pool_unavailable carrying the last
// failure and its stderr tail and nothing is launched; after the cooldown one
// probe starts (half-open); its success closes the breaker, its failure
// opens it again.

#include "pool/pool_test_support.hpp"

#include <gtest/gtest.h>

#include <string>

namespace seedpool {
namespace {

using namespace pooltest;

// The first `failures` launches crash during init, each with its own stderr
// line; every later launch is healthy.
LaunchLog::Choose failing_first(std::uint64_t failures) {
  return [failures](std::uint64_t index) {
    sim::WorkerBehavior behavior;
    if (index < failures) {
      behavior.init = sim::WorkerBehavior::Init::crash;
      behavior.stderr_before_crash = {fmt::format("RuntimeError: boom {}", index)};
    }
    return behavior;
  };
}

PoolConfig breaker_config() {
  PoolConfig config = base_config("breaker");
  config.breaker_failures = 3;
  config.breaker_window = seconds(10);
  config.breaker_cooldown = seconds(2);
  config.restart_backoff_base = milliseconds(10);
  return config;
}

std::size_t transitions(const PoolStats& stats, std::string_view state) {
  const auto it = stats.breaker_transitions.find(std::string(state));
  return it == stats.breaker_transitions.end() ? 0 : it->second;
}

TEST(Breaker, OpensFailsFastThenProbesHalfOpenAndCloses) {
  EventLog log;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host, failing_first(3));
    auto pool = make_pool(world, breaker_config(), {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    const Status started = pool->start();
    ASSERT_FALSE(started.ok());
    EXPECT_TRUE(contains(started.error().message, "circuit breaker opened")) << started.error().message;
    ASSERT_EQ(launches.size(), 3u);
    const auto opened = log.of(TelemetryKind::breaker);
    ASSERT_EQ(opened.size(), 1u);
    EXPECT_EQ(opened.front().breaker, BreakerState::open);
    const Instant opened_at = opened.front().at;
    EXPECT_EQ(pool->stats().breaker, BreakerState::open);

    // Open: fail fast, with the last failure and its stderr tail.
    world.sleep_for(milliseconds(500));
    const Instant asked = world.now();
    Result<Lease> refused = pool->checkout({.deadline = in(world, seconds(5))});
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::pool_unavailable);
    EXPECT_EQ(world.now(), asked) << "an open breaker must fail checkouts fast";
    EXPECT_TRUE(contains(refused.error().message, "circuit breaker is open")) << refused.error().message;
    EXPECT_TRUE(contains(refused.error().message, "exited during init")) << refused.error().message;
    EXPECT_EQ(refused.error().stderr_tail, "RuntimeError: boom 2");
    Result<std::string> executed = pool->execute("x");
    ASSERT_FALSE(executed.ok());
    EXPECT_EQ(executed.error().code, ErrorCode::pool_unavailable);

    // Nothing launches during the cooldown; one probe right after it.
    world.sleep_until(opened_at + seconds(2) - milliseconds(1));
    EXPECT_EQ(launches.size(), 3u) << "launched while the breaker was open";
    world.sleep_until(opened_at + seconds(2) + milliseconds(100));
    ASSERT_EQ(launches.size(), 4u);
    EXPECT_EQ(launches.at[3], opened_at + seconds(2));

    // The probe succeeded: closed, serving.
    const PoolStats stats = pool->stats();
    EXPECT_EQ(stats.breaker, BreakerState::closed);
    EXPECT_EQ(transitions(stats, "open"), 1u);
    EXPECT_EQ(transitions(stats, "half_open"), 1u);
    EXPECT_EQ(transitions(stats, "closed"), 1u);
    Result<std::string> answer = pool->execute("after recovery");
    ASSERT_TRUE(answer.ok()) << answer.error().describe();
    EXPECT_EQ(answer.value(), "after recovery");
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// While half-open only one worker starts, even though size.min asks for more.
TEST(Breaker, HalfOpenStartsExactlyOneProbe) {
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host, [](std::uint64_t index) {
      sim::WorkerBehavior behavior;
      if (index < 3) {
        behavior.init = sim::WorkerBehavior::Init::crash;
      } else {
        behavior.startup = milliseconds(500);  // the probe takes a while
      }
      return behavior;
    });
    PoolConfig config = breaker_config();
    config.size = {3, 3};
    config.min_ready = 3;
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    ASSERT_FALSE(pool->start().ok());
    const std::size_t before = launches.size();
    world.sleep_for(seconds(2) + milliseconds(250));  // half-open, probe starting
    EXPECT_EQ(launches.size(), before + 1) << "half-open must start exactly one probe";
    world.sleep_for(seconds(1));  // the probe is ready: the rest follow
    EXPECT_EQ(launches.size(), before + 3);
    EXPECT_EQ(pool->stats().workers_in(WorkerState::ready), 3);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(Breaker, FailedProbeOpensItAgain) {
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host, failing_first(4));
    auto pool = make_pool(world, breaker_config());
    ASSERT_NE(pool, nullptr);
    ASSERT_FALSE(pool->start().ok());
    ASSERT_EQ(launches.size(), 3u);
    const Instant first_open = world.now();
    world.sleep_until(first_open + seconds(2) + milliseconds(100));
    // The probe (launch 3) failed: open again, for another cooldown.
    EXPECT_EQ(launches.size(), 4u);
    PoolStats stats = pool->stats();
    EXPECT_EQ(stats.breaker, BreakerState::open);
    Result<Lease> refused = pool->checkout();
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::pool_unavailable);
    EXPECT_EQ(refused.error().stderr_tail, "RuntimeError: boom 3");
    world.sleep_for(seconds(2) + milliseconds(100));
    EXPECT_EQ(launches.size(), 5u);
    stats = pool->stats();
    EXPECT_EQ(stats.breaker, BreakerState::closed);
    EXPECT_EQ(transitions(stats, "open"), 2u);
    EXPECT_EQ(transitions(stats, "half_open"), 2u);
    EXPECT_EQ(transitions(stats, "closed"), 1u);
    EXPECT_TRUE(pool->execute("recovered").ok());
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// A lazy pool has no size.min to restart, and a half-open breaker fails
// checkouts fast, so no demand ever reaches the start logic. The probe must
// still run after the cooldown, or the pool stays unavailable forever.
TEST(Breaker, LazyPoolProbesAfterTheCooldownAndRecovers) {
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host, failing_first(3));
    PoolConfig config = breaker_config();
    config.init = InitMode::lazy;
    config.size = {0, 2};
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    Result<Lease> first = pool->checkout({.deadline = in(world, seconds(5))});
    ASSERT_FALSE(first.ok());
    EXPECT_EQ(first.error().code, ErrorCode::pool_unavailable);
    EXPECT_EQ(launches.size(), 3u);
    world.sleep_for(seconds(3));
    Result<std::string> answer = pool->execute("recovered?", {.deadline = in(world, seconds(1))});
    ASSERT_TRUE(answer.ok()) << "still unavailable long after the cooldown: " << answer.error().describe();
    EXPECT_EQ(pool->stats().breaker, BreakerState::closed);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// Five failed starts spaced 150 ms apart (50 ms startup + 100 ms backoff,
// no jitter), then a healthy one. Returns how often the breaker opened.
std::size_t opens_with_window(Duration window) {
  std::size_t opened = 0;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    PoolConfig config = breaker_config();
    config.breaker_window = window;
    config.breaker_cooldown = milliseconds(10);
    config.restart_backoff_base = milliseconds(100);
    config.restart_backoff_max = milliseconds(100);
    config.restart_backoff_jitter_percent = 0;
    host.set_behavior_for_launch([](std::uint64_t index, const ProcessSpec&) {
      sim::WorkerBehavior behavior;
      if (index < 5) {
        behavior.init = sim::WorkerBehavior::Init::crash;
      }
      return behavior;
    });
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    (void)pool->start(in(world, seconds(2)));
    world.sleep_for(seconds(2));
    const PoolStats stats = pool->stats();
    EXPECT_EQ(host.launches(), 6u);
    EXPECT_EQ(stats.count(stats.inits, "worker_crashed"), 5u);
    EXPECT_EQ(stats.breaker, BreakerState::closed);
    opened = transitions(stats, "open");
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  return opened;
}

// The breaker counts failures within its window only: spaced 150 ms apart,
// a 150 ms window never holds more than one, while a 400 ms window holds
// three and opens.
TEST(Breaker, CountsOnlyFailuresWithinTheWindow) {
  EXPECT_EQ(opens_with_window(milliseconds(150)), 0u);
  EXPECT_GE(opens_with_window(milliseconds(400)), 1u);
}

}  // namespace
}  // namespace seedpool
