// Shutdown: waiters are answered at once, leases may finish within the
// grace period, then workers are terminated and killed, every process is
// reaped, and everything afterwards fails with pool_shutting_down.

#include "pool/pool_test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace seedpool {
namespace {

using namespace pooltest;

PoolConfig two_workers() {
  PoolConfig config = base_config("closing");
  config.size = {2, 2};
  config.min_ready = 2;
  config.shutdown_grace = seconds(1);
  config.checkout_timeout = seconds(10);
  return config;
}

// Workers that never answer a call.
sim::WorkerBehavior hanging_on_calls() {
  sim::WorkerBehavior behavior;
  behavior.on_call = [](std::uint64_t, const Frame&) {
    sim::CallAction action;
    action.kind = sim::CallAction::Kind::hang;
    return action;
  };
  return behavior;
}

TEST(Shutdown, WithLeasesOutAndWaitersQueued) {
  EventLog log;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    auto pool = make_pool(world, two_workers(), {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    Result<Lease> finishing = pool->checkout();
    Result<Lease> overstaying = pool->checkout();
    ASSERT_TRUE(finishing.ok() && overstaying.ok());

    const Instant shutdown_at = in(world, milliseconds(100));
    std::vector<std::pair<Instant, Result<Lease>>> waiters;
    Instant shutdown_returned;
    {
      TaskGroup tasks(world);
      for (int i = 0; i < 3; ++i) {
        tasks.spawn(fmt::format("waiter-{}", i), [&] {
          Result<Lease> lease = pool->checkout();
          waiters.emplace_back(world.now(), std::move(lease));
        });
      }
      tasks.spawn("finishing-lease", [&] {
        // Within the grace period a lease can still do its work.
        world.sleep_until(shutdown_at + milliseconds(200));
        Result<std::string> answer = finishing.value().call("during grace");
        ASSERT_TRUE(answer.ok()) << answer.error().describe();
        EXPECT_EQ(answer.value(), "during grace");
        finishing.value().release();
      });
      tasks.spawn("overstaying-lease", [&] {
        world.sleep_until(shutdown_at + seconds(3));
        Result<std::string> answer = overstaying.value().call("after grace");
        ASSERT_FALSE(answer.ok());
        EXPECT_EQ(answer.error().code, ErrorCode::pool_shutting_down) << answer.error().describe();
        overstaying.value().release();
      });
      world.sleep_until(shutdown_at);
      const Status shut = pool->shutdown();
      EXPECT_TRUE(shut.ok()) << shut.error().describe();
      shutdown_returned = world.now();
      EXPECT_EQ(host.alive(), 0u) << "shutdown returned before every process was reaped";
    }
    ASSERT_EQ(waiters.size(), 3u);
    for (const auto& [answered_at, lease] : waiters) {
      EXPECT_EQ(answered_at, shutdown_at) << "a waiter was not answered at once";
      ASSERT_FALSE(lease.ok());
      EXPECT_EQ(lease.error().code, ErrorCode::pool_shutting_down);
    }
    // The overstaying lease's worker was stopped when the grace ran out.
    EXPECT_GE(shutdown_returned, shutdown_at + seconds(1));
    EXPECT_LE(shutdown_returned, shutdown_at + seconds(1) + milliseconds(250));

    Result<Lease> late = pool->checkout();
    ASSERT_FALSE(late.ok());
    EXPECT_EQ(late.error().code, ErrorCode::pool_shutting_down);
    Result<std::string> executed = pool->execute("late");
    ASSERT_FALSE(executed.ok());
    EXPECT_EQ(executed.error().code, ErrorCode::pool_shutting_down);
    EXPECT_TRUE(pool->shutdown().ok()) << "shutdown is idempotent";
    // Stats survive the pool task.
    const PoolStats stats = pool->stats();
    EXPECT_EQ(stats.count(stats.calls, "ok"), 1u);
    EXPECT_EQ(stats.count(stats.checkouts, "pool_shutting_down"), 3u);
    EXPECT_EQ(stats.worker_exits, 2u);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  // The finishing worker was asked to exit; the overstaying one was killed.
  std::vector<std::string> exits;
  for (const TelemetryEvent& event : log.of(TelemetryKind::worker_exit)) {
    exits.push_back(event.detail);
  }
  std::sort(exits.begin(), exits.end());
  EXPECT_EQ(exits, (std::vector<std::string>{"exit code 0", "killed by signal 9"}));
}

// A worker that takes its time exiting after the shutdown frame, and ignores
// terminate, is terminated after terminate_grace and killed after another.
TEST(Shutdown, EscalatesFromShutdownFrameToTerminateToKill) {
  EventLog log;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    sim::WorkerBehavior behavior;
    behavior.shutdown_latency = seconds(60);
    behavior.ignore_terminate = true;
    host.set_behavior(behavior);
    PoolConfig config = base_config();
    config.terminate_grace = milliseconds(100);
    auto pool = make_pool(world, config, {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    const Instant asked = world.now();
    EXPECT_TRUE(pool->shutdown().ok());
    EXPECT_EQ(world.now() - asked, milliseconds(200));
    EXPECT_EQ(host.alive(), 0u);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  const auto exits = log.of(TelemetryKind::worker_exit);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits.front().detail, "killed by signal 9");
}

// A worker busy answering a slow ping does not read the shutdown frame; the
// terminate that follows after terminate_grace ends it.
TEST(Shutdown, WorkerThatMissesTheShutdownFrameIsTerminated) {
  EventLog log;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    sim::WorkerBehavior behavior;
    behavior.pong_latency = seconds(5);  // busy, not reading stdin
    host.set_behavior(behavior);
    PoolConfig config = base_config();
    config.health_interval = seconds(1);
    config.health_timeout = seconds(10);
    config.terminate_grace = milliseconds(100);
    auto pool = make_pool(world, config, {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    world.sleep_for(milliseconds(1500));  // the ping went out at 1 s
    const Instant asked = world.now();
    EXPECT_TRUE(pool->shutdown().ok());
    EXPECT_EQ(world.now() - asked, milliseconds(100) + behavior.shutdown_latency);
    EXPECT_EQ(host.alive(), 0u);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  const auto exits = log.of(TelemetryKind::worker_exit);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits.front().detail, "killed by signal 15");
}

// A lease still busy when the grace period ends: its worker is killed, and
// the call it was waiting for is answered with pool_shutting_down.
TEST(Shutdown, CallStillInFlightAtTheEndOfGraceIsAnswered) {
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    host.set_behavior(hanging_on_calls());
    PoolConfig config = base_config();
    config.shutdown_grace = milliseconds(300);
    config.call_timeout = seconds(10);
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    TaskGroup tasks(world);
    std::optional<Result<std::string>> hung;
    Instant answered_at;
    tasks.spawn("hung-caller", [&] {
      Result<Lease> lease = pool->checkout();
      ASSERT_TRUE(lease.ok());
      hung.emplace(lease.value().call("never answered"));
      answered_at = world.now();
    });
    world.sleep_for(milliseconds(10));
    const Instant asked = world.now();
    EXPECT_TRUE(pool->shutdown().ok());
    EXPECT_EQ(host.alive(), 0u);
    tasks.join();
    ASSERT_TRUE(hung.has_value());
    ASSERT_FALSE(hung->ok());
    EXPECT_EQ(hung->error().code, ErrorCode::pool_shutting_down) << hung->error().describe();
    EXPECT_EQ(answered_at, asked + milliseconds(300));
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// Two tasks shut the pool down at once. Both return only after the end.
TEST(Shutdown, ConcurrentCallersAllWaitForTheEnd) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    auto pool = make_pool(world, two_workers());
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    Result<Lease> lease = pool->checkout();
    ASSERT_TRUE(lease.ok());
    const Instant release_at = in(world, milliseconds(500));
    std::vector<Instant> returned;
    {
      TaskGroup tasks(world);
      tasks.spawn("holder", [&] {
        world.sleep_until(release_at);
        lease.value().release();
      });
      for (int i = 0; i < 2; ++i) {
        tasks.spawn(fmt::format("shutdown-{}", i), [&, i] {
          world.sleep_for(milliseconds(10 * (i + 1)));
          const Status shut = pool->shutdown();
          EXPECT_TRUE(shut.ok()) << shut.error().describe();
          EXPECT_EQ(host.alive(), 0u) << "shutdown() returned with processes alive";
          returned.push_back(world.now());
        });
      }
    }
    ASSERT_EQ(returned.size(), 2u);
    for (const Instant at : returned) {
      EXPECT_GE(at, release_at);
    }
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// A second shutdown with an earlier grace deadline ends the grace then: a
// call hung in its lease is cut at the second deadline, not the first, and
// a third with a later deadline does not lengthen it again.
TEST(Shutdown, ALaterShutdownCanEndTheGraceSoonerNeverLater) {
  EventLog log;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    host.set_behavior(hanging_on_calls());
    PoolConfig config = base_config();
    config.call_timeout = seconds(100);
    auto pool = make_pool(world, config, {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    TaskGroup tasks(world);
    Instant answered_at;
    tasks.spawn("hung-caller", [&] {
      Result<Lease> lease = pool->checkout();
      ASSERT_TRUE(lease.ok());
      const Result<std::string> hung = lease.value().call("never answered");
      EXPECT_EQ(hung.error().code, ErrorCode::pool_shutting_down) << hung.error().describe();
      answered_at = world.now();
    });
    const Instant first = in(world, milliseconds(10));
    Instant second;
    tasks.spawn("first-shutdown", [&] {
      world.sleep_until(first);
      EXPECT_TRUE(pool->shutdown(first + seconds(60)).ok());
    });
    tasks.spawn("second-shutdown", [&] {
      world.sleep_until(first + seconds(1));
      second = world.now() + milliseconds(200);
      EXPECT_TRUE(pool->shutdown(second).ok());
    });
    tasks.spawn("third-shutdown", [&] {
      world.sleep_until(first + seconds(1) + milliseconds(50));
      EXPECT_TRUE(pool->shutdown(world.now() + seconds(30)).ok());
    });
    tasks.join();
    EXPECT_EQ(host.alive(), 0u);
    EXPECT_EQ(answered_at, second);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(log.count(TelemetryKind::pool_shutdown), 2u) << "the first shutdown and the one that shortened it";
}

// Shutdown while workers are still launching and initializing: start() is
// answered, and every process, however far it got, is reaped.
TEST(Shutdown, WhileWorkersAreStartingReapsEveryProcess) {
  sweep_strategies(60, [](sim::SimWorld& world, sim::SimProcessHost& host) {
    host.set_behavior_for_launch([&world](std::uint64_t, const ProcessSpec&) {
      sim::WorkerBehavior behavior;
      behavior.startup = milliseconds(static_cast<std::int64_t>(world.random_below(40)));
      return behavior;
    });
    PoolConfig config = base_config();
    config.size = {3, 3};
    config.min_ready = 3;
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    std::optional<Status> started;
    {
      TaskGroup tasks(world);
      tasks.spawn("starter", [&] { started.emplace(pool->start()); });
      world.sleep_for(milliseconds(static_cast<std::int64_t>(world.random_below(30))));
      world.yield();
      EXPECT_TRUE(pool->shutdown().ok());
      EXPECT_EQ(host.alive(), 0u);
    }
    ASSERT_TRUE(started.has_value());
    if (!started->ok()) {
      EXPECT_EQ(started->error().code, ErrorCode::pool_shutting_down) << started->error().describe();
    }
  });
}

// A pool shut down before it started stays shut: start() refuses, and no
// worker is ever launched that nobody would reap.
TEST(Shutdown, StartAfterShutdownIsRefused) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    auto pool = make_pool(world, two_workers());
    ASSERT_NE(pool, nullptr);
    EXPECT_TRUE(pool->shutdown().ok());
    const Status started = pool->start();
    ASSERT_FALSE(started.ok()) << "a shut-down pool started";
    EXPECT_EQ(started.error().code, ErrorCode::pool_shutting_down);
    Result<Lease> lease = pool->checkout();
    ASSERT_FALSE(lease.ok());
    EXPECT_EQ(lease.error().code, ErrorCode::pool_shutting_down);
    pool.reset();
    EXPECT_EQ(host.launches(), 0u);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// Destroying a started pool shuts it down and reaps its processes.
TEST(Shutdown, DestroyingThePoolShutsItDown) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    auto pool = make_pool(world, two_workers());
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    ASSERT_TRUE(pool->execute("x").ok());
    EXPECT_EQ(host.alive(), 2u);
    pool.reset();
    EXPECT_EQ(host.alive(), 0u);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

}  // namespace
}  // namespace seedpool
