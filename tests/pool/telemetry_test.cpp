// Telemetry agrees with what the test did: N calls give N call events and
// counters, checkouts, inits and exits are counted by outcome, histograms
// hold the exact virtual durations, and the Prometheus text carries the
// documented names with the same values.

#include "pool/pool_test_support.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace seedpool {
namespace {

using namespace pooltest;

std::string metric_line(std::string_view name, std::string_view labels, std::uint64_t value) {
  return fmt::format("\nseedpool_{}{{pool=\"tele\"{}}} {}\n", name, labels, value);
}

// A mixed workload whose every count is known in advance.
TEST(TelemetryCounts, AgreeWithWhatTheTestDid) {
  constexpr int executes = 25;
  constexpr int leases = 3;
  constexpr int calls_per_lease = 2;
  EventLog log;
  PoolStats stats;
  PoolStats final_stats;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host, [](std::uint64_t) {
      sim::WorkerBehavior behavior;
      behavior.reply_latency = milliseconds(3);
      behavior.on_call = [](std::uint64_t, const Frame& call) {
        sim::CallAction action;
        if (call.payload == "please fail") {
          action.kind = sim::CallAction::Kind::error_frame;
        }
        return action;
      };
      return behavior;
    });
    PoolConfig config = base_config("tele");
    config.size = {2, 2};
    config.min_ready = 2;
    auto pool = make_pool(world, config, {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());

    for (int i = 0; i < executes; ++i) {
      Result<std::string> answer = pool->execute(fmt::format("e{}", i));
      ASSERT_TRUE(answer.ok()) << answer.error().describe();
    }
    for (int i = 0; i < leases; ++i) {
      Result<Lease> lease = pool->checkout();
      ASSERT_TRUE(lease.ok());
      for (int c = 0; c < calls_per_lease; ++c) {
        ASSERT_TRUE(lease.value().call("x").ok());
      }
    }
    // One worker error, one checkout timeout, one idle worker killed.
    Result<std::string> failed = pool->execute("please fail");
    ASSERT_FALSE(failed.ok());
    {
      Result<Lease> a = pool->checkout();
      Result<Lease> b = pool->checkout();
      ASSERT_TRUE(a.ok() && b.ok());
      Result<Lease> none = pool->checkout({.deadline = in(world, milliseconds(20))});
      ASSERT_FALSE(none.ok());
    }
    ASSERT_TRUE(host.kill(launches.pid_of("tele", WorkerRef{0, 1})));
    world.sleep_for(milliseconds(200));  // replaced by now
    stats = pool->stats();
    ASSERT_TRUE(pool->shutdown().ok());
    final_stats = pool->stats();
  });
  ASSERT_TRUE(run.ok()) << run.summary();

  const std::uint64_t ok_calls = executes + leases * calls_per_lease;
  EXPECT_EQ(stats.count(stats.calls, "ok"), ok_calls);
  EXPECT_EQ(stats.count(stats.calls, "worker_error"), 1u);
  EXPECT_EQ(stats.total(stats.calls), ok_calls + 1);
  EXPECT_EQ(log.count(TelemetryKind::call, std::nullopt), ok_calls);
  EXPECT_EQ(log.count(TelemetryKind::call), ok_calls + 1);

  const std::uint64_t ok_checkouts = executes + leases + 1 + 2;
  EXPECT_EQ(stats.count(stats.checkouts, "ok"), ok_checkouts);
  EXPECT_EQ(stats.count(stats.checkouts, "timeout"), 1u);
  EXPECT_EQ(stats.total(stats.checkouts), ok_checkouts + 1);
  EXPECT_EQ(log.count(TelemetryKind::checkout, std::nullopt), ok_checkouts);

  EXPECT_EQ(stats.count(stats.inits, "ok"), 3u);  // two at start, one replacement
  EXPECT_EQ(stats.total(stats.inits), 3u);
  EXPECT_EQ(stats.worker_exits, 1u);
  EXPECT_EQ(stats.workers_in(WorkerState::ready), 2);
  EXPECT_EQ(final_stats.worker_exits, 3u);
  for (std::size_t s = 0; s < worker_state_count; ++s) {
    EXPECT_EQ(final_stats.workers[s], 0) << to_string(static_cast<WorkerState>(s));
  }

  // Histograms observe every event, with exact virtual durations: every
  // call took the worker's 3 ms, every init its 50 ms startup.
  EXPECT_EQ(stats.call_duration.count(), stats.total(stats.calls));
  EXPECT_EQ(stats.call_duration.sum_ns(), static_cast<std::int64_t>(ok_calls + 1) * milliseconds(3).ns());
  EXPECT_EQ(stats.checkout_wait.count(), stats.total(stats.checkouts));
  EXPECT_EQ(stats.init_duration.count(), 3u);
  EXPECT_EQ(stats.init_duration.sum_ns(), 3 * milliseconds(50).ns());

  const std::string text = final_stats.to_prometheus();
  EXPECT_TRUE(contains(text, metric_line("calls_total", ",outcome=\"ok\"", ok_calls))) << text;
  EXPECT_TRUE(contains(text, metric_line("calls_total", ",outcome=\"worker_error\"", 1))) << text;
  EXPECT_TRUE(contains(text, metric_line("checkouts_total", ",outcome=\"ok\"", ok_checkouts))) << text;
  EXPECT_TRUE(contains(text, metric_line("checkouts_total", ",outcome=\"timeout\"", 1))) << text;
  EXPECT_TRUE(contains(text, metric_line("worker_inits_total", ",outcome=\"ok\"", 3))) << text;
  EXPECT_TRUE(contains(text, metric_line("worker_exits_total", "", 3))) << text;
  EXPECT_TRUE(contains(text, metric_line("worker_recycles_total", "", 0))) << text;
  EXPECT_TRUE(contains(text, metric_line("health_failures_total", "", 0))) << text;
  EXPECT_TRUE(contains(text, metric_line("breaker_open", "", 0))) << text;
  EXPECT_TRUE(contains(text, metric_line("call_duration_seconds_count", "", ok_calls + 1))) << text;
  EXPECT_TRUE(contains(text, "\nseedpool_call_duration_seconds_sum{pool=\"tele\"} 0.096\n")) << text;
  EXPECT_TRUE(contains(text, metric_line("call_duration_seconds_bucket", ",le=\"0.0025\"", 0))) << text;
  EXPECT_TRUE(contains(text, metric_line("call_duration_seconds_bucket", ",le=\"0.005\"", ok_calls + 1))) << text;
  EXPECT_TRUE(contains(text, metric_line("worker_init_seconds_bucket", ",le=\"0.05\"", 3))) << text;
  EXPECT_TRUE(contains(text, metric_line("workers", ",state=\"ready\"", 0))) << text;
  for (std::string_view family : {"checkout_wait_seconds", "call_duration_seconds", "worker_init_seconds"}) {
    EXPECT_TRUE(contains(text, fmt::format("# TYPE seedpool_{} histogram\n", family))) << family;
  }
}

// Exact checkout waits: a waiter served when a lease is released after
// 20 ms waited exactly 20 ms.
TEST(TelemetryCounts, CheckoutWaitIsTheVirtualTimeWaited) {
  EventLog log;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = make_pool(world, base_config(), {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    Result<Lease> holder = pool->checkout();
    ASSERT_TRUE(holder.ok());
    TaskGroup tasks(world);
    tasks.spawn("waiter", [&] { EXPECT_TRUE(pool->checkout().ok()); });
    world.sleep_for(milliseconds(20));
    holder.value().release();
    tasks.join();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  const auto checkouts = log.of(TelemetryKind::checkout);
  ASSERT_EQ(checkouts.size(), 2u);
  EXPECT_EQ(checkouts[0].duration, Duration::zero());
  EXPECT_EQ(checkouts[1].duration, milliseconds(20));
}

// A checkout that times out is counted as a timeout however the caller's
// own timer and the pool's interleave at the deadline.
TEST(TelemetryCounts, TimedOutCheckoutIsCountedAsATimeout) {
  sweep_strategies(40, [](sim::SimWorld& world, sim::SimProcessHost&) {
    EventLog log;
    auto pool = make_pool(world, base_config(), {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    Result<Lease> holder = pool->checkout();
    ASSERT_TRUE(holder.ok());
    for (int i = 0; i < 3; ++i) {
      Result<Lease> none = pool->checkout({.deadline = in(world, milliseconds(10))});
      ASSERT_FALSE(none.ok());
      EXPECT_EQ(none.error().code, ErrorCode::timeout);
    }
    world.sleep_for(milliseconds(1));
    EXPECT_EQ(log.count(TelemetryKind::checkout, ErrorCode::timeout), 3u);
    EXPECT_EQ(log.count(TelemetryKind::checkout, ErrorCode::cancelled), 0u);
    holder.value().release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
}

// Worker state events form a consistent history: every worker arrives from
// dead, leaves through stopping or dead, and the gauges end at zero.
TEST(TelemetryCounts, WorkerStateHistoryIsConsistent) {
  sweep_strategies(20, [](sim::SimWorld& world, sim::SimProcessHost& host) {
    host.set_behavior_for_launch([&world](std::uint64_t, const ProcessSpec&) {
      sim::WorkerBehavior behavior;
      if (world.random_below(4) == 0) {
        behavior.init = sim::WorkerBehavior::Init::crash;
      }
      behavior.on_call = [&world](std::uint64_t, const Frame&) {
        sim::CallAction action;
        if (world.random_below(10) == 0) {
          action.kind = sim::CallAction::Kind::crash;
        }
        return action;
      };
      return behavior;
    });
    EventLog log;
    PoolConfig config = base_config();
    config.size = {2, 3};
    config.min_ready = 1;
    config.breaker_failures = 100;
    config.checkout_timeout = seconds(10);
    auto pool = make_pool(world, config, {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start(in(world, seconds(10))).ok());
    {
      TaskGroup callers(world);
      for (int i = 0; i < 4; ++i) {
        callers.spawn(fmt::format("caller-{}", i), [&] {
          for (int k = 0; k < 10; ++k) {
            (void)pool->execute("x");
          }
        });
      }
    }
    EXPECT_TRUE(pool->shutdown().ok());
    std::map<WorkerRef, WorkerState> state;
    for (const TelemetryEvent& e : log.of(TelemetryKind::worker_state)) {
      ASSERT_TRUE(e.worker.has_value());
      const auto it = state.find(*e.worker);
      const WorkerState from = it == state.end() ? WorkerState::dead : it->second;
      EXPECT_EQ(e.from, from) << e.worker->to_string();
      state[*e.worker] = e.to;
    }
    for (const auto& [worker, last] : state) {
      EXPECT_EQ(last, WorkerState::dead) << worker.to_string();
    }
    EXPECT_EQ(log.active, 0);
    const PoolStats stats = pool->stats();
    EXPECT_EQ(stats.worker_exits, host.launches());
    EXPECT_EQ(log.count(TelemetryKind::worker_exit), host.launches());
  });
}

}  // namespace
}  // namespace seedpool
