// Health checks and recycling: a missed pong kills and replaces the worker;
// answered pings keep it; workers are recycled after max_calls and after
// max_lifetime (with jitter), never failing a call in flight.

#include "pool/pool_test_support.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace seedpool {
namespace {

using namespace pooltest;

PoolConfig health_config() {
  PoolConfig config = base_config("health");
  config.health_interval = seconds(1);
  config.health_timeout = milliseconds(200);
  return config;
}

TEST(Health, MissedPongKillsAndReplacesTheWorker) {
  EventLog log;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host, [](std::uint64_t index) {
      sim::WorkerBehavior behavior;
      behavior.answer_pings = index != 0;
      return behavior;
    });
    auto pool = make_pool(world, health_config(), {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    const Instant ready_at = world.now();
    world.sleep_for(milliseconds(1500));
    const PoolStats stats = pool->stats();
    EXPECT_EQ(stats.health_failures, 1u);
    EXPECT_EQ(stats.worker_exits, 1u);
    EXPECT_EQ(launches.size(), 2u);
    EXPECT_EQ(stats.workers_in(WorkerState::ready), 1);
    const auto failures = log.of(TelemetryKind::health_failure);
    ASSERT_EQ(failures.size(), 1u);
    // Pinged one interval after it became ready; failed one timeout later.
    EXPECT_EQ(failures.front().at, ready_at + seconds(1) + milliseconds(200));
    EXPECT_EQ(failures.front().worker, (WorkerRef{0, 1}));

    Result<Lease> lease = pool->checkout();
    ASSERT_TRUE(lease.ok()) << lease.error().describe();
    EXPECT_EQ(lease.value().worker(), (WorkerRef{0, 2}));
    EXPECT_EQ(lease.value().call("alive").value(), "alive");
    lease.value().release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(Health, AnsweredPingsKeepTheWorker) {
  EventLog log;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    auto pool = make_pool(world, health_config(), {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    for (int i = 0; i < 10; ++i) {
      world.sleep_for(milliseconds(700));
      ASSERT_TRUE(pool->execute("between pings").ok());
    }
    world.sleep_for(seconds(10));
    const PoolStats stats = pool->stats();
    EXPECT_EQ(stats.health_failures, 0u);
    EXPECT_EQ(stats.worker_exits, 0u);
    EXPECT_EQ(host.launches(), 1u);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// Idle workers are pinged every interval, not just once. A worker that
// takes 150 ms over each pong cannot read a call meanwhile, so a call that
// arrives 50 ms after a ping went out is answered 100 ms late; that is how
// the test sees the fourth ping.
TEST(Health, IdleWorkersArePingedEveryInterval) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    sim::WorkerBehavior behavior;
    behavior.pong_latency = milliseconds(150);
    behavior.reply_latency = milliseconds(1);
    host.set_behavior(behavior);
    auto pool = make_pool(world, health_config());
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    const Instant ready_at = world.now();
    // Ping n goes out at ready + 1 s + (n - 1) * 1.15 s: each pong restarts
    // the interval.
    const Instant fourth_ping = ready_at + seconds(1) + milliseconds(3 * 1150);
    world.sleep_until(fourth_ping + milliseconds(50));
    Instant asked = world.now();
    ASSERT_TRUE(pool->execute("behind a ping").ok());
    EXPECT_EQ(world.now() - asked, milliseconds(101)) << "the fourth ping was not sent";
    // Between pings a call is served at once.
    world.sleep_for(milliseconds(300));
    asked = world.now();
    ASSERT_TRUE(pool->execute("between pings").ok());
    EXPECT_EQ(world.now() - asked, milliseconds(1));
    EXPECT_EQ(pool->stats().health_failures, 0u);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// A worker that stops answering pings while idle, then is leased while the
// ping is unanswered: the lease holder is told the worker failed, and no
// later caller is handed it.
TEST(Health, WorkerLeasedWithAPingOutstandingIsStillReplaced) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host, [](std::uint64_t index) {
      sim::WorkerBehavior behavior;
      behavior.answer_pings = index != 0;
      return behavior;
    });
    auto pool = make_pool(world, health_config());
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    world.sleep_for(milliseconds(1100));  // pinged at 1 s; no pong comes
    Result<Lease> lease = pool->checkout();
    ASSERT_TRUE(lease.ok());
    EXPECT_EQ(lease.value().worker(), (WorkerRef{0, 1}));
    world.sleep_for(milliseconds(200));
    Result<std::string> answer = lease.value().call("too late");
    ASSERT_FALSE(answer.ok());
    EXPECT_EQ(answer.error().code, ErrorCode::worker_crashed);
    EXPECT_TRUE(contains(answer.error().message, "health check")) << answer.error().message;
    lease.value().release();
    Result<Lease> next = pool->checkout();
    ASSERT_TRUE(next.ok()) << next.error().describe();
    EXPECT_EQ(next.value().worker(), (WorkerRef{0, 2}));
    next.value().release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(Recycle, AfterMaxCallsTheWorkerIsReplaced) {
  EventLog log;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    PoolConfig config = base_config();
    config.max_calls = 3;
    auto pool = make_pool(world, config, {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    std::vector<std::uint64_t> generations;
    for (int i = 0; i < 7; ++i) {
      Result<Lease> lease = pool->checkout();
      ASSERT_TRUE(lease.ok()) << lease.error().describe();
      generations.push_back(lease.value().worker().generation);
      EXPECT_EQ(lease.value().call(fmt::format("call {}", i)).value(), fmt::format("call {}", i));
    }
    EXPECT_EQ(generations, (std::vector<std::uint64_t>{1, 1, 1, 2, 2, 2, 3}));
    EXPECT_EQ(host.launches(), 3u);
    const PoolStats stats = pool->stats();
    EXPECT_EQ(stats.recycles, 2u);
    EXPECT_EQ(stats.count(stats.calls, "ok"), 7u);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  for (const TelemetryEvent& event : log.of(TelemetryKind::worker_recycle)) {
    EXPECT_EQ(event.detail, "max_calls");
  }
  // A recycled worker is asked to exit and exits cleanly.
  const auto exits = log.of(TelemetryKind::worker_exit);
  ASSERT_GE(exits.size(), 2u);
  EXPECT_EQ(exits[0].detail, "exit code 0");
  EXPECT_EQ(exits[1].detail, "exit code 0");
}

// Four idle workers with max_lifetime 1 s and jitter 500 ms: each is
// recycled within [ready + 0.5 s, ready + 1 s], and not all at once.
TEST(Recycle, AfterMaxLifetimeWithJitterSpreadOverTime) {
  std::set<std::int64_t> recycle_times;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    EventLog log;
    const auto run = run_sim(
        [&](sim::SimWorld& world, sim::SimProcessHost&) {
          PoolConfig config = base_config("lifetime");
          config.size = {4, 4};
          config.min_ready = 4;
          config.max_lifetime = seconds(1);
          config.max_lifetime_jitter = milliseconds(500);
          auto pool = make_pool(world, config, {.telemetry = &log});
          ASSERT_NE(pool, nullptr);
          ASSERT_TRUE(pool->start().ok());
          const Instant ready_at = world.now();
          world.sleep_for(milliseconds(1010));
          const auto recycles = log.of(TelemetryKind::worker_recycle);
          EXPECT_EQ(recycles.size(), 4u);
          for (const TelemetryEvent& event : recycles) {
            EXPECT_EQ(event.detail, "max_lifetime");
            EXPECT_GE(event.at, ready_at + milliseconds(500));
            EXPECT_LE(event.at, ready_at + seconds(1));
            EXPECT_EQ(event.worker->generation, 1u);
            recycle_times.insert((event.at - ready_at).ns());
          }
          // Every recycled worker was replaced: the pool is back to size.
          world.sleep_for(milliseconds(60));
          const PoolStats stats = pool->stats();
          EXPECT_EQ(stats.workers_in(WorkerState::starting) + stats.workers_in(WorkerState::initializing) +
                        stats.workers_in(WorkerState::ready),
                    4);
          EXPECT_TRUE(pool->shutdown().ok());
        },
        seed);
    EXPECT_TRUE(run.ok()) << run.summary();
  }
  EXPECT_GT(recycle_times.size(), 10u) << "jitter did not spread the recycling";
}

// A busy worker past its lifetime finishes its lease first.
TEST(Recycle, LifetimeEndingDuringALeaseWaitsForTheRelease) {
  EventLog log;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost&) {
    PoolConfig config = base_config();
    config.max_lifetime = milliseconds(100);
    auto pool = make_pool(world, config, {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    Result<Lease> lease = pool->checkout();
    ASSERT_TRUE(lease.ok());
    world.sleep_for(milliseconds(300));
    EXPECT_EQ(log.count(TelemetryKind::worker_recycle), 0u) << "recycled under a lease";
    EXPECT_EQ(lease.value().call("still serving").value(), "still serving");
    const Instant released_at = world.now();
    lease.value().release();
    world.sleep_for(milliseconds(1));
    const auto recycles = log.of(TelemetryKind::worker_recycle);
    ASSERT_EQ(recycles.size(), 1u);
    EXPECT_EQ(recycles.front().at, released_at);
    EXPECT_EQ(recycles.front().detail, "max_lifetime");
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// Load against a pool that recycles constantly, by calls and by lifetime:
// no call in flight ever fails because of recycling.
TEST(Recycle, DuringLoadNeverFailsACallInFlight) {
  std::uint64_t recycles = 0;
  sweep_strategies(25, [&](sim::SimWorld& world, sim::SimProcessHost& host) {
    host.set_behavior_for_launch([&world](std::uint64_t, const ProcessSpec&) {
      sim::WorkerBehavior behavior;
      behavior.startup = milliseconds(5 + static_cast<std::int64_t>(world.random_below(20)));
      behavior.on_call = [&world](std::uint64_t, const Frame&) {
        sim::CallAction action;
        action.latency = milliseconds(5 + static_cast<std::int64_t>(world.random_below(60)));
        return action;
      };
      return behavior;
    });
    EventLog log;
    PoolConfig config = base_config("recycling");
    config.size = {2, 3};
    config.min_ready = 2;
    config.max_calls = 3;
    config.max_lifetime = milliseconds(200);
    config.max_lifetime_jitter = milliseconds(100);
    config.checkout_timeout = seconds(10);
    auto pool = make_pool(world, config, {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    int ok = 0;
    {
      TaskGroup callers(world);
      for (int i = 0; i < 6; ++i) {
        callers.spawn(fmt::format("caller-{}", i), [&, i] {
          for (int k = 0; k < 6; ++k) {
            Result<Lease> lease = pool->checkout();
            ASSERT_TRUE(lease.ok()) << lease.error().describe();
            for (int c = 0; c < 2; ++c) {  // two calls per lease: recycling waits for both
              const std::string mine = fmt::format("{}/{}/{}", i, k, c);
              Result<std::string> answer = lease.value().call(mine);
              ASSERT_TRUE(answer.ok()) << "recycling failed a call in flight: " << answer.error().describe();
              EXPECT_EQ(answer.value(), mine);
              ++ok;
            }
          }
        });
      }
    }
    EXPECT_EQ(ok, 6 * 6 * 2);
    const PoolStats stats = pool->stats();
    EXPECT_EQ(stats.total(stats.calls), stats.count(stats.calls, "ok"));
    EXPECT_GE(stats.recycles, 5u);
    EXPECT_EQ(stats.recycles, log.count(TelemetryKind::worker_recycle));
    recycles += stats.recycles;
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_GT(recycles, 0u);
}

}  // namespace
}  // namespace seedpool
