// The pool's life cycle with the echo worker (workers/echo): eager start and
// exact echoes; a worker killed during init or inside a call; init timeout;
// health checks; a call timeout; recycling by calls and by lifetime; shutdown
// with calls in flight; and a worker whose grandchild must die with its group.

#include "integration/integration_support.hpp"

#include <seedpool/core/codec.hpp>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace seedpool::integration {
namespace {

using EchoWorker = PoolIntegrationTest;

// Every byte value, so that the payload is opaque all the way through.
std::string all_bytes(std::size_t repeat) {
  std::string out;
  for (std::size_t r = 0; r < repeat; ++r) {
    for (int b = 0; b < 256; ++b) {
      out.push_back(static_cast<char>(b));
    }
  }
  return out;
}

TEST_F(EchoWorker, EagerStartOfSeveralWorkersThenEveryPayloadComesBackExactly) {
  constexpr std::size_t size = 4;
  start_pool(config("echo-start", echo_command(), size));
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(pool().stats().workers_in(WorkerState::ready), static_cast<std::int64_t>(size));
  const std::vector<pid_t> pids = worker_pids(echo_worker);
  EXPECT_EQ(pids.size(), size) << describe(children());

  for (int i = 0; i < 50; ++i) {
    const std::string payload = "payload " + std::to_string(i);
    Result<std::string> r = pool().execute(payload);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r.value(), payload);
  }
  Result<std::string> empty = pool().execute("");
  ASSERT_TRUE(empty.ok()) << empty.error().describe();
  EXPECT_EQ(empty.value(), "");
  // Several MiB: partial writes and reads on both pipes.
  const std::string big = all_bytes(4 * 4096);
  Result<std::string> echoed = pool().execute(big);
  ASSERT_TRUE(echoed.ok()) << echoed.error().describe();
  EXPECT_TRUE(echoed.value() == big) << "a " << big.size() << "-byte payload came back altered";

  // One lease, several calls in order, all to the same worker.
  Result<Lease> lease = pool().checkout();
  ASSERT_TRUE(lease.ok()) << lease.error().describe();
  for (int i = 0; i < 5; ++i) {
    Result<std::string> r = lease.value().call("on the lease " + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r.value(), "on the lease " + std::to_string(i));
  }
  lease.value().release();
  EXPECT_EQ(worker_pids(echo_worker), pids);
  shutdown_and_check(std::set<pid_t>(pids.begin(), pids.end()));
}

// The protocol's 16 MiB frame limit, which the echo worker enforces (it
// exits 4 on a larger frame): one byte over it is refused by the pool,
// naming the limit, and the worker never sees it.
TEST_F(EchoWorker, APayloadOverFrameBytesMaxIsRefusedAndTheWorkerStays) {
  start_pool(config("echo-frame-limit", echo_command(), 1));
  ASSERT_FALSE(HasFatalFailure());
  const pid_t pid = worker_pids(echo_worker).at(0);
  const std::uint64_t limit = pool().config().frame_bytes_max;
  ASSERT_EQ(limit, 16u * 1024 * 1024);
  Result<std::string> over = pool().execute(std::string(limit - kFrameHeaderBytes + 1, 'x'));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(over.error().message.find("frame_bytes_max 16777216"), std::string::npos) << over.error().message;
  const std::string largest(limit - kFrameHeaderBytes, 'y');
  Result<std::string> at = pool().execute(largest);
  ASSERT_TRUE(at.ok()) << at.error().describe();
  EXPECT_TRUE(at.value() == largest);
  const PoolStats stats = pool().stats();
  EXPECT_EQ(stats.worker_exits, 0u);
  EXPECT_EQ(stats.count(stats.calls, "invalid_argument"), 1u);
  EXPECT_EQ(stats.count(stats.calls, "ok"), 1u);
  EXPECT_EQ(worker_pids(echo_worker), std::vector<pid_t>{pid});
  shutdown_and_check({pid});
}

TEST_F(EchoWorker, WorkerKilledWhileInitializingIsRetriedAndThePoolStarts) {
  // Only the first start is slow, so the test does not wait twice: the
  // replacement of the killed worker starts at once.
  const WorkerCommand command =
      first_start_runs(scratch_dir() + "/claimed", echo_command({"--slow-init", "60000"}), echo_command());
  create_pool(config("echo-init-kill", command, 1));
  ASSERT_FALSE(HasFatalFailure());

  std::optional<Status> started;
  std::thread starter([&] { started = pool().start(world().now() + hang_guard); });
  // The slow worker, once it runs the echo worker (past the shell's exec).
  std::vector<pid_t> slow;
  const bool found = eventually(world(), [&] {
    slow.clear();
    for (const pid_t pid : worker_pids(echo_worker)) {
      if (contains(proc_cmdline(pid), "--slow-init") && !contains(proc_cmdline(pid), "mkdir")) {
        slow.push_back(pid);
      }
    }
    return !slow.empty();
  });
  if (found) {
    EXPECT_TRUE(kill_child(slow[0]));
  }
  starter.join();
  ASSERT_TRUE(found) << "the slow worker never appeared:" << describe(children());
  ASSERT_TRUE(started.has_value());
  ASSERT_TRUE(started->ok()) << started->error().describe();

  const std::vector<TelemetryEvent> inits = recorder_.events(TelemetryKind::worker_init);
  ASSERT_EQ(inits.size(), 2u);
  EXPECT_EQ(inits[0].error, ErrorCode::worker_crashed);
  EXPECT_TRUE(contains(inits[0].detail, "exited during init (killed by signal 9)")) << inits[0].detail;
  EXPECT_FALSE(inits[1].error.has_value()) << inits[1].detail;

  const std::vector<pid_t> now_running = worker_pids(echo_worker);
  ASSERT_EQ(now_running.size(), 1u);
  EXPECT_NE(now_running[0], slow[0]);
  Result<std::string> r = pool().execute("after the retry");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r.value(), "after the retry");
  shutdown_and_check({slow[0], now_running[0]});
}

TEST_F(EchoWorker, WorkerKilledInsideACallFailsThatCallWithItsStderrTailAndIsReplaced) {
  // Each process answers its first call and hangs in its second.
  start_pool(config("echo-call-kill", echo_command({"--hang-after", "2"}), 1));
  ASSERT_FALSE(HasFatalFailure());
  const std::vector<pid_t> before = worker_pids(echo_worker);
  ASSERT_EQ(before.size(), 1u);

  Result<Lease> lease = pool().checkout();
  ASSERT_TRUE(lease.ok()) << lease.error().describe();
  Result<std::string> first = lease.value().call("first");
  ASSERT_TRUE(first.ok()) << first.error().describe();

  std::optional<Result<std::string>> second;
  std::thread caller([&] { second = lease.value().call("second"); });
  const bool inside = eventually(world(), [&] { return recorder_.line_with("call 2 received").has_value(); });
  if (inside) {
    EXPECT_TRUE(kill_child(before[0]));
  }
  caller.join();
  ASSERT_TRUE(inside) << "the second call never reached the worker";
  ASSERT_TRUE(second.has_value());
  ASSERT_FALSE(second->ok());
  const Error& error = second->error();
  EXPECT_EQ(error.code, ErrorCode::worker_crashed) << error.describe();
  EXPECT_TRUE(contains(error.message, "killed by signal 9")) << error.describe();
  EXPECT_TRUE(contains(error.stderr_tail, "call 2 received; answering nothing")) << error.describe();

  // The lease is lost with its worker: later calls on it say so.
  Result<std::string> third = lease.value().call("third");
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, ErrorCode::worker_crashed) << third.error().describe();
  lease.value().release();

  ASSERT_TRUE(settles_at(1));
  const std::vector<pid_t> after = worker_pids(echo_worker);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0], before[0]);
  Result<std::string> r = pool().execute("to the replacement");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r.value(), "to the replacement");
  shutdown_and_check({before[0], after[0]});
}

TEST_F(EchoWorker, InitTimeoutAgainstAHangingWorkerFailsStartAndLeavesNoProcess) {
  PoolConfig c = config("echo-hang-init", echo_command({"--hang-init"}), 1);
  c.init_timeout = milliseconds(300);
  c.breaker_failures = 2;
  create_pool(c);
  ASSERT_FALSE(HasFatalFailure());

  const Status started = pool().start(world().now() + hang_guard);
  ASSERT_FALSE(started.ok());
  const Error& error = started.error();
  EXPECT_TRUE(contains(error.message, "did not answer init within 300 ms")) << error.describe();
  EXPECT_TRUE(contains(error.stderr_tail, "never answering it (--hang-init)")) << error.describe();
  const PoolStats stats = pool().stats();
  EXPECT_EQ(stats.count(stats.inits, "timeout"), 2u);
  EXPECT_EQ(stats.breaker, BreakerState::open);
  // The breaker is open: nothing restarts, and the hung workers were killed.
  EXPECT_TRUE(eventually(world(), [] { return worker_pids(echo_worker).empty(); }))
      << "a worker that timed out in init is still running:" << describe(children());
  shutdown_and_check();
}

TEST_F(EchoWorker, HealthCheckReplacesAWorkerThatStopsAnsweringPings) {
  PoolConfig c = config("echo-no-pong", echo_command({"--no-pong"}), 1);
  c.health_interval = milliseconds(100);
  c.health_timeout = milliseconds(300);
  start_pool(c);
  ASSERT_FALSE(HasFatalFailure());
  const std::vector<pid_t> before = worker_pids(echo_worker);
  ASSERT_EQ(before.size(), 1u);

  ASSERT_TRUE(eventually(world(), [&] {
    const std::vector<pid_t> now_running = worker_pids(echo_worker);
    const PoolStats stats = pool().stats();
    return stats.health_failures >= 1 && stats.worker_exits >= 1 && now_running.size() == 1 &&
           now_running[0] != before[0];
  })) << "health failures: " << pool().stats().health_failures << "; workers:" << describe(children());
  const std::vector<TelemetryEvent> failures = recorder_.events(TelemetryKind::health_failure);
  ASSERT_FALSE(failures.empty());
  EXPECT_EQ(failures[0].detail, "no pong within 300 ms");
  const std::vector<TelemetryEvent> exits = recorder_.events(TelemetryKind::worker_exit);
  ASSERT_FALSE(exits.empty());
  EXPECT_EQ(exits[0].detail, "killed by signal 9");
  shutdown_and_check({before[0]});
}

TEST_F(EchoWorker, HealthyWorkersAnswerPingsAndStay) {
  PoolConfig c = config("echo-pong", echo_command(), 2);
  c.health_interval = milliseconds(20);
  c.health_timeout = seconds(10);
  start_pool(c);
  ASSERT_FALSE(HasFatalFailure());
  const std::vector<pid_t> before = worker_pids(echo_worker);
  // Calls between pings: the request ids of pings and calls share one counter.
  for (int i = 0; i < 20; ++i) {
    Result<std::string> r = pool().execute("between pings " + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r.value(), "between pings " + std::to_string(i));
    world().sleep_for(milliseconds(10));
  }
  EXPECT_EQ(pool().stats().health_failures, 0u);
  EXPECT_EQ(pool().stats().worker_exits, 0u);
  EXPECT_EQ(worker_pids(echo_worker), before);
  shutdown_and_check(std::set<pid_t>(before.begin(), before.end()));
}

TEST_F(EchoWorker, CallTimeoutKillsAndReplacesAWorkerThatStoppedAnswering) {
  start_pool(config("echo-hang-call", echo_command({"--hang-after", "1"}), 1));
  ASSERT_FALSE(HasFatalFailure());
  const std::vector<pid_t> before = worker_pids(echo_worker);
  ASSERT_EQ(before.size(), 1u);

  ExecuteOptions options;
  options.deadline = world().now() + milliseconds(300);
  Result<std::string> r = pool().execute("never answered", options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::timeout) << r.error().describe();

  ASSERT_TRUE(eventually(world(), [&] { return pool().stats().worker_exits >= 1; }));
  ASSERT_TRUE(settles_at(1));
  const std::vector<pid_t> after = worker_pids(echo_worker);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0], before[0]) << "a worker that owes a reply must never serve again";
  EXPECT_EQ(recorder_.events(TelemetryKind::worker_exit).at(0).detail, "killed by signal 9");
  shutdown_and_check({before[0], after[0]});
}

TEST_F(EchoWorker, RecyclingAfterMaxCallsReplacesWorkersGracefullyWithoutFailingACall) {
  PoolConfig c = config("echo-recycle", echo_command(), 2);
  c.max_calls = 3;
  start_pool(c);
  ASSERT_FALSE(HasFatalFailure());

  std::set<pid_t> seen;
  constexpr int calls = 30;
  for (int i = 0; i < calls; ++i) {
    const std::string payload = "recycle " + std::to_string(i);
    Result<std::string> r = pool().execute(payload);
    ASSERT_TRUE(r.ok()) << "call " << i << ": " << r.error().describe();
    EXPECT_EQ(r.value(), payload);
    for (const pid_t pid : worker_pids(echo_worker)) {
      seen.insert(pid);
    }
  }
  ASSERT_TRUE(settles_at(2));
  const PoolStats stats = pool().stats();
  // Each worker serves exactly max_calls calls; at most two are part-way.
  EXPECT_GE(stats.recycles, static_cast<std::uint64_t>((calls - 2 * 2) / 3 + 1));
  EXPECT_EQ(stats.count(stats.calls, "ok"), static_cast<std::uint64_t>(calls));
  EXPECT_GE(seen.size(), 4u) << "recycling should have brought new processes";
  for (const TelemetryEvent& recycle : recorder_.events(TelemetryKind::worker_recycle)) {
    EXPECT_EQ(recycle.detail, "max_calls");
  }
  // A recycled worker is asked to leave with a shutdown frame and does.
  for (const TelemetryEvent& exit : recorder_.events(TelemetryKind::worker_exit)) {
    EXPECT_EQ(exit.detail, "exit code 0");
  }
  shutdown_and_check(seen);
}

TEST_F(EchoWorker, RecyclingAfterMaxLifetimeFailsNoCall) {
  PoolConfig c = config("echo-lifetime", echo_command(), 1);
  c.max_lifetime = milliseconds(150);
  c.max_lifetime_jitter = milliseconds(50);
  start_pool(c);
  ASSERT_FALSE(HasFatalFailure());

  std::set<pid_t> seen;
  int calls = 0;
  const bool recycled = eventually(world(), [&] {
    const std::string payload = "lifetime " + std::to_string(calls++);
    Result<std::string> r = pool().execute(payload);
    EXPECT_TRUE(r.ok()) << r.error().describe();
    EXPECT_TRUE(!r.ok() || r.value() == payload);
    for (const pid_t pid : worker_pids(echo_worker)) {
      seen.insert(pid);
    }
    return pool().stats().recycles >= 3;
  });
  ASSERT_TRUE(recycled) << "recycles: " << pool().stats().recycles;
  for (const TelemetryEvent& recycle : recorder_.events(TelemetryKind::worker_recycle)) {
    EXPECT_EQ(recycle.detail, "max_lifetime");
  }
  EXPECT_GE(seen.size(), 2u);
  shutdown_and_check(seen);
}

// Callers loop until the pool turns them away; every answer must be their own
// payload or pool_shutting_down.
struct ShutdownCallers {
  std::atomic<int> replies{0};
  std::atomic<int> turned_away{0};
  std::atomic<int> wrong{0};
  std::vector<std::string> wrong_errors;
  std::mutex wrong_mutex;

  void run(Pool& pool, int caller, std::optional<int> calls_max) {
    for (int seq = 0; !calls_max || seq < *calls_max; ++seq) {
      const std::string payload = "caller " + std::to_string(caller) + " seq " + std::to_string(seq);
      Result<std::string> r = pool.execute(payload);
      if (r.ok() && r.value() == payload) {
        ++replies;
        continue;
      }
      if (!r.ok() && r.error().code == ErrorCode::pool_shutting_down) {
        ++turned_away;
        return;
      }
      ++wrong;
      std::lock_guard<std::mutex> lock(wrong_mutex);
      wrong_errors.push_back(r.ok() ? "wrong reply '" + r.value() + "' for '" + payload + "'" : r.error().describe());
      return;
    }
  }
};

TEST_F(EchoWorker, ShutdownWithCallsInFlightLetsThemFinishThenReapsEveryProcess) {
  start_pool(config("echo-shutdown", echo_command({"--reply-delay-ms", "100"}), 3));
  ASSERT_FALSE(HasFatalFailure());
  const std::vector<pid_t> pids = worker_pids(echo_worker);

  ShutdownCallers callers;
  std::vector<std::thread> threads;
  for (int caller = 0; caller < 6; ++caller) {
    threads.emplace_back([&, caller] { callers.run(pool(), caller, std::nullopt); });
  }
  ASSERT_TRUE(eventually(world(), [&] {
    return callers.replies.load() >= 6 && pool().stats().workers_in(WorkerState::busy) >= 1;
  }));
  shutdown_and_check(std::set<pid_t>(pids.begin(), pids.end()));
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(callers.wrong.load(), 0) << ::testing::PrintToString(callers.wrong_errors);
  EXPECT_EQ(callers.turned_away.load(), 6);
  const PoolStats stats = pool().stats();  // the final snapshot, after shutdown
  EXPECT_EQ(stats.count(stats.calls, "ok"), static_cast<std::uint64_t>(callers.replies.load()));
  EXPECT_EQ(stats.total(stats.calls), stats.count(stats.calls, "ok")) << "a call in flight was cut short";
}

TEST_F(EchoWorker, ShutdownGraceEndsCallsThatOutliveIt) {
  start_pool(config("echo-shutdown-grace", echo_command({"--reply-delay-ms", "600000"}), 2));
  ASSERT_FALSE(HasFatalFailure());
  const std::vector<pid_t> pids = worker_pids(echo_worker);

  ShutdownCallers callers;
  std::vector<std::thread> threads;
  for (int caller = 0; caller < 2; ++caller) {
    threads.emplace_back([&, caller] { callers.run(pool(), caller, 1); });
  }
  ASSERT_TRUE(eventually(world(), [&] { return pool().stats().workers_in(WorkerState::busy) == 2; }));
  const Status down = pool().shutdown(world().now() + milliseconds(200));
  EXPECT_TRUE(down.ok()) << down.error().describe();
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(callers.turned_away.load(), 2) << ::testing::PrintToString(callers.wrong_errors);
  EXPECT_EQ(callers.replies.load(), 0);
  EXPECT_TRUE(children().empty()) << describe(children());
  EXPECT_TRUE(eventually(world(), [&] { return live_in_groups({pids.begin(), pids.end()}).empty(); }));
}

TEST_F(EchoWorker, ShutdownWhileWorkersInitializeKillsThemAndReturns) {
  PoolConfig c = config("echo-shutdown-init", echo_command({"--slow-init", "600000"}), 3);
  c.min_ready = 0;  // start() returns while the workers are still in init
  start_pool(c);
  ASSERT_FALSE(HasFatalFailure());
  std::vector<pid_t> pids;
  ASSERT_TRUE(eventually(world(), [&] {
    pids = worker_pids("--slow-init");
    return pids.size() == 3 && pool().stats().workers_in(WorkerState::initializing) == 3;
  })) << describe(children());
  shutdown_and_check(std::set<pid_t>(pids.begin(), pids.end()));
  EXPECT_EQ(pool().stats().count(pool().stats().inits, "ok"), 0u);
}

TEST_F(EchoWorker, ShutdownFromAnotherThreadEndsAStartThatWaitsForAHangingWorker) {
  create_pool(config("echo-shutdown-start", echo_command({"--hang-init"}), 2));
  ASSERT_FALSE(HasFatalFailure());
  std::optional<Status> started;
  std::thread starter([&] { started = pool().start(world().now() + hang_guard); });
  // Both workers are hanging in init and start() is waiting for them.
  const bool hanging = eventually(world(), [&] {
    return recorder_.events(TelemetryKind::worker_state).size() >= 4 && worker_pids("--hang-init").size() == 2;
  });
  std::vector<pid_t> pids = worker_pids("--hang-init");
  const Status down = pool().shutdown();
  starter.join();
  ASSERT_TRUE(hanging) << describe(children());
  EXPECT_TRUE(down.ok()) << down.error().describe();
  ASSERT_TRUE(started.has_value());
  ASSERT_FALSE(started->ok());
  EXPECT_EQ(started->error().code, ErrorCode::pool_shutting_down) << started->error().describe();
  EXPECT_TRUE(children().empty()) << describe(children());
  EXPECT_TRUE(eventually(world(), [&] { return live_in_groups({pids.begin(), pids.end()}).empty(); }));
}

TEST_F(EchoWorker, GrandchildrenDieWithTheirWorkersGroup) {
  start_pool(config("echo-grandchild", echo_command({"--fork-grandchild"}), 2));
  ASSERT_FALSE(HasFatalFailure());
  const std::vector<pid_t> workers = worker_pids(echo_worker);
  ASSERT_EQ(workers.size(), 2u);
  std::map<pid_t, pid_t> grandchild_of;
  for (const pid_t worker : workers) {
    ASSERT_TRUE(eventually(world(), [&] { return !live_children_of(worker).empty(); }))
        << "worker " << worker << " forked no grandchild";
    const ProcInfo grandchild = live_children_of(worker).at(0);
    EXPECT_EQ(grandchild.pgrp, worker) << "the grandchild should share its worker's process group";
    grandchild_of[worker] = grandchild.pid;
  }

  // A crash takes the grandchild with it.
  ASSERT_TRUE(kill_child(workers[0]));
  EXPECT_TRUE(eventually(world(), [&] { return live_in_groups({workers[0]}).empty(); }))
      << "left in the killed worker's group:" << describe(live_in_groups({workers[0]}));
  ASSERT_TRUE(eventually(world(), [&] { return pool().stats().worker_exits >= 1; }));
  ASSERT_TRUE(settles_at(2));
  Result<std::string> r = pool().execute("still serving");
  ASSERT_TRUE(r.ok()) << r.error().describe();

  // Shutdown (a shutdown frame, which the worker obeys, leaving its
  // grandchild behind) takes every group down.
  std::set<pid_t> groups(workers.begin(), workers.end());
  for (const pid_t pid : worker_pids(echo_worker)) {
    groups.insert(pid);
  }
  EXPECT_EQ(groups.size(), 3u) << "workers " << workers[0] << ", " << workers[1] << "; now:" << describe(children());
  EXPECT_FALSE(live_in_groups(groups).empty());
  shutdown_and_check(groups);
  const std::optional<ProcInfo> grandchild = proc_info(grandchild_of[workers[1]]);
  EXPECT_FALSE(grandchild.has_value() && is_live(*grandchild)) << "the grandchild of the worker that was shut down";
}

}  // namespace
}  // namespace seedpool::integration
