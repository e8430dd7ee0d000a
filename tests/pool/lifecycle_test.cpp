// Worker lifecycle: eager start (concurrent, outside the pool loop), init
// failures of every kind (crash, error frame, garbage, hang, launch failure)
// with their reason and stderr tail, replacement with backoff, lazy start,
// crashes of idle and busy workers, call timeouts and protocol errors, and
// stderr forwarding.

#include "pool/pool_test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace seedpool {
namespace {

using namespace pooltest;

sim::WorkerBehavior with_startup(Duration startup) {
  sim::WorkerBehavior behavior;
  behavior.startup = startup;
  return behavior;
}

TEST(EagerStart, LaunchesSizeMinWorkersConcurrently) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host, [](std::uint64_t) { return with_startup(milliseconds(500)); });
    PoolConfig config = base_config();
    config.size = {3, 4};
    config.min_ready = 3;
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    const Status started = pool->start();
    ASSERT_TRUE(started.ok()) << started.error().describe();
    // Three 500 ms starts in 500 ms: concurrent, not one after another.
    EXPECT_EQ(world.now(), Instant::zero() + milliseconds(500));
    ASSERT_EQ(launches.size(), 3u);
    for (const Instant at : launches.at) {
      EXPECT_EQ(at, Instant::zero());
    }
    EXPECT_EQ(pool->stats().workers_in(WorkerState::ready), 3);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// One worker takes 5 s to start. The pool keeps serving with the other one
// meanwhile: init does not run inside the pool loop.
TEST(EagerStart, ASlowInitDoesNotHoldUpCheckouts) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host, [](std::uint64_t index) {
      return with_startup(index == 1 ? seconds(5) : milliseconds(10));
    });
    PoolConfig config = base_config();
    config.size = {2, 2};
    config.min_ready = 1;
    config.init_timeout = seconds(10);
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    EXPECT_EQ(world.now(), Instant::zero() + milliseconds(10));
    for (int i = 0; i < 20; ++i) {
      Result<std::string> answer = pool->execute(fmt::format("call-{}", i));
      ASSERT_TRUE(answer.ok()) << answer.error().describe();
    }
    EXPECT_LT(world.now(), Instant::zero() + seconds(1));
    EXPECT_EQ(pool->stats().workers_in(WorkerState::initializing), 1);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// Every launch crashes during init after writing a traceback. start() fails
// with each reason and the stderr tail; replacements are spaced by an
// exponential backoff with at most 20% jitter.
TEST(InitFailure, CrashDuringInitFailsStartWithReasonAndStderrTailAndBacksOff) {
  constexpr Duration startup = milliseconds(50);
  constexpr Duration base = milliseconds(100);
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host, [&](std::uint64_t index) {
      sim::WorkerBehavior behavior = with_startup(startup);
      behavior.init = sim::WorkerBehavior::Init::crash;
      behavior.exit_code_on_crash = 3;
      behavior.stderr_before_crash = {"Traceback (most recent call last):",
                                      fmt::format("ImportError: no module named numpy ({})", index)};
      return behavior;
    });
    PoolConfig config = base_config("crashy");
    config.restart_backoff_base = base;
    config.breaker_failures = 4;
    config.init_timeout = seconds(10);
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    const Status started = pool->start();
    ASSERT_FALSE(started.ok());
    const Error& error = started.error();
    EXPECT_EQ(error.code, ErrorCode::launch_failed);
    EXPECT_TRUE(contains(error.message, "failed to start")) << error.message;
    EXPECT_TRUE(contains(error.message, "exited during init (exit code 3)")) << error.message;
    EXPECT_TRUE(contains(error.message, "ImportError: no module named numpy (0)")) << error.message;
    EXPECT_TRUE(contains(error.stderr_tail, "ImportError: no module named numpy (3)")) << error.stderr_tail;
    EXPECT_TRUE(contains(error.stderr_tail, "Traceback")) << error.stderr_tail;

    ASSERT_EQ(launches.size(), 4u);
    for (std::size_t k = 0; k + 1 < launches.size(); ++k) {
      const Duration delay = launches.at[k + 1] - launches.at[k] - startup;
      const Duration full = base * (std::int64_t{1} << k);
      EXPECT_LE(delay, full) << "replacement " << k;
      EXPECT_GE(delay, full - nanoseconds(full.ns() / 100 * 20)) << "replacement " << k;
    }
    EXPECT_EQ(host.alive(), 0u);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// Builds a one-worker pool whose every launch behaves as `behavior`, starts
// it with the breaker set to open at the first failure, and returns start()'s
// error.
Error start_failure(sim::WorkerBehavior behavior, PoolConfig config = base_config()) {
  Error error;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    host.set_behavior(behavior);
    config.breaker_failures = 1;
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    const Status started = pool->start(in(world, config.init_timeout * 5));
    ASSERT_FALSE(started.ok()) << "start() succeeded with a failing worker";
    error = started.error();
    // The failed worker is gone before shutdown: no orphan.
    world.sleep_for(milliseconds(1));
    EXPECT_EQ(host.alive(), 0u);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  return error;
}

TEST(InitFailure, ErrorFrameDuringInit) {
  sim::WorkerBehavior behavior;
  behavior.init = sim::WorkerBehavior::Init::error_frame;
  behavior.init_error = "config file missing";
  behavior.stderr_on_init = {"reading /etc/worker.toml"};
  const Error error = start_failure(behavior);
  EXPECT_TRUE(contains(error.message, "answered init with an error: config file missing")) << error.message;
  EXPECT_EQ(error.stderr_tail, "reading /etc/worker.toml");
}

TEST(InitFailure, GarbageDuringInitIsAProtocolError) {
  sim::WorkerBehavior behavior;
  behavior.init = sim::WorkerBehavior::Init::garbage;
  const Error error = start_failure(behavior);
  EXPECT_TRUE(contains(error.message, "protocol_error")) << error.message;
  EXPECT_TRUE(contains(error.message, "broke the protocol during init")) << error.message;
}

// A worker that never answers init is killed at init_timeout; the error says
// so, and its process does not outlive the failure.
TEST(InitFailure, InitTimeoutKillsTheHangingWorker) {
  sim::WorkerBehavior behavior;
  behavior.init = sim::WorkerBehavior::Init::hang;
  behavior.stderr_on_init = {"waiting for a GPU"};
  PoolConfig config = base_config();
  config.init_timeout = milliseconds(300);
  const Error error = start_failure(behavior, config);
  EXPECT_TRUE(contains(error.message, "did not answer init within 300 ms")) << error.message;
  EXPECT_EQ(error.stderr_tail, "waiting for a GPU");
}

// With the default start deadline (init_timeout), start() and the worker's
// init deadline expire at the same instant. The error must still say why
// the worker is not ready.
TEST(InitFailure, InitTimeoutAtTheDefaultStartDeadlineStillNamesTheReason) {
  sweep_strategies(10, [](sim::SimWorld& world, sim::SimProcessHost& host) {
    sim::WorkerBehavior behavior;
    behavior.init = sim::WorkerBehavior::Init::hang;
    behavior.stderr_on_init = {"waiting for a GPU"};
    host.set_behavior(behavior);
    PoolConfig config = base_config();
    config.init_timeout = milliseconds(300);
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    const Status started = pool->start();
    ASSERT_FALSE(started.ok());
    // Either the worker's timeout was reported first, or the worker is
    // described as still initializing; both name the 300 ms init timeout.
    EXPECT_TRUE(contains(started.error().message, "300 ms")) << started.error().message;
    EXPECT_TRUE(contains(started.error().message, "w0.1")) << started.error().message;
    // The tail goes with its worker: the failure's own, or under the line
    // that says the worker is still initializing.
    const Error& error = started.error();
    if (error.stderr_tail.empty()) {
      EXPECT_TRUE(contains(error.message, "is still initializing after")) << error.message;
      EXPECT_TRUE(contains(error.message, "--- stderr of worker w0.1 (still initializing), last 1 line ---\n"
                                          "waiting for a GPU"))
          << error.message;
    } else {
      EXPECT_EQ(error.stderr_tail, "waiting for a GPU");
    }
    EXPECT_TRUE(pool->shutdown().ok());
  });
}

TEST(InitFailure, LaunchFailureNamesTheProgramAndReason) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    host.set_launch_failure([](std::uint64_t, const ProcessSpec&) -> std::optional<std::string> {
      return "No such file or directory";
    });
    PoolConfig config = base_config();
    config.breaker_failures = 2;
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    const Status started = pool->start();
    ASSERT_FALSE(started.ok());
    EXPECT_TRUE(contains(started.error().message, std::string(worker_program))) << started.error().message;
    EXPECT_TRUE(contains(started.error().message, "No such file or directory")) << started.error().message;
    EXPECT_EQ(host.launches(), 2u);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// Lazy mode starts a worker per waiting caller, concurrently: four callers
// of a pool whose workers take 1 s to start are all served after 1 s.
TEST(LazyStart, StartsWorkersOnDemandConcurrently) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host, [](std::uint64_t) { return with_startup(seconds(1)); });
    PoolConfig config = base_config();
    config.init = InitMode::lazy;
    config.size = {0, 4};
    config.init_timeout = seconds(5);
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    EXPECT_EQ(launches.size(), 0u) << "a lazy pool launched before anyone asked";
    std::vector<Instant> served;
    {
      TaskGroup callers(world);
      for (int i = 0; i < 4; ++i) {
        callers.spawn(fmt::format("caller-{}", i), [&, i] {
          Result<std::string> answer =
              pool->execute(fmt::format("c{}", i), {.deadline = in(world, seconds(3))});
          ASSERT_TRUE(answer.ok()) << answer.error().describe();
          served.push_back(world.now());
        });
      }
    }
    ASSERT_EQ(served.size(), 4u);
    for (const Instant at : served) {
      EXPECT_LT(at, Instant::zero() + milliseconds(1100));
    }
    EXPECT_EQ(launches.size(), 4u);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// Many concurrent callers of a lazy pool: the number of active workers (by
// telemetry) and of live processes (by the host) never exceeds size.max.
TEST(LazyStart, NeverExceedsSizeMax) {
  static constexpr std::size_t max = 3;
  sweep_strategies(40, [](sim::SimWorld& world, sim::SimProcessHost& host) {
    host.set_behavior_for_launch([&world](std::uint64_t, const ProcessSpec&) {
      sim::WorkerBehavior behavior;
      behavior.startup = milliseconds(1 + static_cast<std::int64_t>(world.random_below(100)));
      behavior.on_call = [&world](std::uint64_t, const Frame&) {
        sim::CallAction action;
        action.latency = milliseconds(1 + static_cast<std::int64_t>(world.random_below(30)));
        return action;
      };
      return behavior;
    });
    EventLog log;
    PoolConfig config = base_config();
    config.init = InitMode::lazy;
    config.size = {0, max};
    config.max_calls = 4;  // recycling makes workers come and go under load
    auto pool = make_pool(world, config, {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    std::size_t alive_max = 0;
    bool done = false;
    int ok = 0;
    {
      TaskGroup tasks(world);
      tasks.spawn("alive-sampler", [&] {
        while (!done) {
          alive_max = std::max(alive_max, host.alive());
          world.sleep_for(microseconds(500));
        }
      });
      {
        TaskGroup callers(world);
        for (int i = 0; i < 12; ++i) {
          callers.spawn(fmt::format("caller-{}", i), [&, i] {
            world.sleep_for(milliseconds(static_cast<std::int64_t>(world.random_below(50))));
            for (int k = 0; k < 4; ++k) {
              Result<std::string> answer =
                  pool->execute(fmt::format("{}/{}", i, k), {.deadline = in(world, seconds(10))});
              EXPECT_TRUE(answer.ok()) << answer.error().describe();
              ok += answer.ok() ? 1 : 0;
            }
          });
        }
      }
      done = true;
    }
    EXPECT_EQ(ok, 48);
    EXPECT_LE(log.active_max, static_cast<std::int64_t>(max));
    EXPECT_GE(log.active_max, 2) << "the load should have needed more than one worker";
    // A recycled worker's process may still be exiting while its replacement
    // starts; the active count above is the bound the pool promises, and
    // processes may exceed it only by the ones already told to stop.
    EXPECT_LE(alive_max, 2 * max);
    EXPECT_TRUE(pool->shutdown().ok());
  });
}

// Without recycling or faults, no process ever outlives its worker slot:
// the host never sees more than size.max processes of a lazy pool.
TEST(LazyStart, NeverRunsMoreProcessesThanSizeMax) {
  static constexpr std::size_t max = 2;
  sweep_strategies(30, [](sim::SimWorld& world, sim::SimProcessHost& host) {
    PoolConfig config = base_config();
    config.init = InitMode::lazy;
    config.size = {0, max};
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    std::size_t alive_max = 0;
    {
      TaskGroup callers(world);
      for (int i = 0; i < 8; ++i) {
        callers.spawn(fmt::format("caller-{}", i), [&, i] {
          for (int k = 0; k < 3; ++k) {
            Result<std::string> answer = pool->execute(fmt::format("{}/{}", i, k));
            EXPECT_TRUE(answer.ok()) << answer.error().describe();
            alive_max = std::max(alive_max, host.alive());
          }
        });
      }
    }
    EXPECT_LE(alive_max, max);
    EXPECT_EQ(host.launches(), max);
    EXPECT_TRUE(pool->shutdown().ok());
  });
}

// An idle worker killed from outside is noticed at once and replaced after
// the backoff; callers never see it.
TEST(WorkerExit, IdleWorkerExitIsNoticedPromptlyAndReplaced) {
  EventLog log;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host);
    auto pool = make_pool(world, base_config("idle"), {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    Result<Lease> lease = pool->checkout();
    ASSERT_TRUE(lease.ok());
    const WorkerRef first = lease.value().worker();
    lease.value().release();

    const Instant killed_at = world.now();
    ASSERT_TRUE(host.kill(launches.pid_of("idle", first)));
    world.sleep_for(microseconds(1));
    PoolStats stats = pool->stats();
    EXPECT_EQ(stats.worker_exits, 1u) << "the exit of an idle worker went unnoticed";
    EXPECT_EQ(stats.workers_in(WorkerState::ready), 0);

    Result<Lease> next = pool->checkout();
    ASSERT_TRUE(next.ok()) << next.error().describe();
    EXPECT_EQ(next.value().worker().slot, first.slot);
    EXPECT_EQ(next.value().worker().generation, first.generation + 1);
    // Backoff (at most restart_backoff_base here) plus the 50 ms startup.
    EXPECT_LE(world.now() - killed_at, milliseconds(10) + milliseconds(50));
    EXPECT_EQ(next.value().call("after").value(), "after");
    next.value().release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  const auto exits = log.of(TelemetryKind::worker_exit);
  ASSERT_GE(exits.size(), 1u);
  EXPECT_EQ(exits.front().detail, "killed by signal 9");
}

// The worker crashes while serving a call: the caller gets worker_crashed
// with the exit status and the stderr tail, the lease is spent, and the pool
// replaces the worker.
TEST(WorkerExit, CrashDuringACallGivesWorkerCrashedWithStatusAndStderrTail) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host, [](std::uint64_t index) {
      sim::WorkerBehavior behavior;
      behavior.exit_code_on_crash = 7;
      behavior.stderr_before_crash = {"Traceback (most recent call last):", "ZeroDivisionError: division by zero"};
      if (index == 0) {
        behavior.on_call = [](std::uint64_t call, const Frame&) {
          sim::CallAction action;
          if (call == 1) {
            action.kind = sim::CallAction::Kind::crash;
          }
          return action;
        };
      }
      return behavior;
    });
    auto pool = make_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    Result<Lease> lease = pool->checkout();
    ASSERT_TRUE(lease.ok());
    EXPECT_EQ(lease.value().call("fine").value(), "fine");
    Result<std::string> crashed = lease.value().call("1/0");
    ASSERT_FALSE(crashed.ok());
    EXPECT_EQ(crashed.error().code, ErrorCode::worker_crashed);
    EXPECT_TRUE(contains(crashed.error().message, "exit code 7")) << crashed.error().message;
    EXPECT_TRUE(contains(crashed.error().stderr_tail, "ZeroDivisionError")) << crashed.error().stderr_tail;
    // The lease's worker is gone; later calls on it say so.
    Result<std::string> again = lease.value().call("again");
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, ErrorCode::worker_crashed);
    lease.value().release();

    Result<Lease> next = pool->checkout();
    ASSERT_TRUE(next.ok()) << next.error().describe();
    EXPECT_EQ(next.value().worker().generation, 2u);
    EXPECT_EQ(next.value().call("healthy").value(), "healthy");
    next.value().release();
    EXPECT_EQ(launches.size(), 2u);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// A call times out with its reply still in flight. The worker must never
// serve anyone again: it is killed at the timeout, not whenever its late
// reply shows up, and the next caller gets its own answer from a new worker.
TEST(CallTimeout, KillsTheWorkerSoTheNextCallerNeverGetsALateReply) {
  EventLog log;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host, [](std::uint64_t index) {
      sim::WorkerBehavior behavior;
      if (index == 0) {
        behavior.on_call = [](std::uint64_t, const Frame&) {
          sim::CallAction action;
          action.latency = seconds(5);  // far past the 100 ms call timeout
          return action;
        };
      }
      return behavior;
    });
    PoolConfig config = base_config("late");
    config.call_timeout = milliseconds(100);
    auto pool = make_pool(world, config, {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    Result<Lease> a = pool->checkout();
    ASSERT_TRUE(a.ok());
    const WorkerRef slow = a.value().worker();
    const Instant called = world.now();
    Result<std::string> timed_out = a.value().call("from-A");
    ASSERT_FALSE(timed_out.ok());
    EXPECT_EQ(timed_out.error().code, ErrorCode::timeout);
    EXPECT_EQ(world.now() - called, milliseconds(100));
    // The lease is spent: its worker is gone.
    Result<std::string> again = a.value().call("from-A again");
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, ErrorCode::timeout);
    a.value().release();

    Result<Lease> b = pool->checkout({.deadline = in(world, milliseconds(200))});
    ASSERT_TRUE(b.ok()) << "no replacement soon after the timeout: " << b.error().describe();
    EXPECT_NE(b.value().worker(), slow) << "a worker with a reply in flight went back to the pool";
    Result<std::string> answer = b.value().call("from-B");
    ASSERT_TRUE(answer.ok()) << answer.error().describe();
    EXPECT_EQ(answer.value(), "from-B");
    b.value().release();
    EXPECT_EQ(launches.size(), 2u);
    EXPECT_TRUE(pool->shutdown().ok());

    const auto exits = log.of(TelemetryKind::worker_exit);
    ASSERT_GE(exits.size(), 1u);
    EXPECT_EQ(exits.front().worker, slow);
    EXPECT_EQ(exits.front().at, called + milliseconds(100)) << "not killed at the timeout";
    EXPECT_EQ(exits.front().detail, "killed by signal 9");
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  // The call that timed out and the one the line then refused: every call
  // is counted under the outcome its caller saw.
  EXPECT_EQ(log.count(TelemetryKind::call, ErrorCode::timeout), 2u);
}

// The reply arrives at the very instant the call's deadline passes. Whoever
// wins, every caller sees only its own answer (or a timeout), never another
// caller's.
TEST(CallTimeout, ReplyAtTheDeadlineNeverReachesAnotherCaller) {
  int timeouts = 0;
  int answered = 0;
  sweep_strategies(100, [&](sim::SimWorld& world, sim::SimProcessHost& host) {
    sim::WorkerBehavior behavior;
    behavior.reply_latency = milliseconds(100);
    host.set_behavior(behavior);
    PoolConfig config = base_config();
    config.size = {2, 2};
    config.min_ready = 2;
    config.call_timeout = milliseconds(100);
    config.checkout_timeout = seconds(5);
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    TaskGroup callers(world);
    for (int i = 0; i < 4; ++i) {
      callers.spawn(fmt::format("caller-{}", i), [&, i] {
        for (int k = 0; k < 3; ++k) {
          const std::string mine = fmt::format("caller {} call {}", i, k);
          // A generous deadline: this call always gets its answer.
          Result<std::string> answer = pool->execute(mine, {.deadline = in(world, seconds(5))});
          ASSERT_TRUE(answer.ok()) << answer.error().describe();
          EXPECT_EQ(answer.value(), mine) << "a caller received another caller's reply";
          ++answered;
          // The default deadline: the reply lands exactly on it.
          Result<Lease> lease = pool->checkout();
          ASSERT_TRUE(lease.ok()) << lease.error().describe();
          Result<std::string> raced = lease.value().call(mine + " (raced)");
          if (raced.ok()) {
            EXPECT_EQ(raced.value(), mine + " (raced)");
            ++answered;
          } else {
            EXPECT_EQ(raced.error().code, ErrorCode::timeout) << raced.error().describe();
            ++timeouts;
          }
        }
      });
    }
    callers.join();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_GT(timeouts, 0) << "the sweep never let the deadline win";
  EXPECT_GT(answered, 0);
}

sim::WorkerBehavior first_call_does(sim::CallAction::Kind kind) {
  sim::WorkerBehavior behavior;
  behavior.stderr_before_crash = {"bye"};
  behavior.on_call = [kind](std::uint64_t call, const Frame&) {
    sim::CallAction action;
    if (call == 0) {
      action.kind = kind;
      action.stderr_lines = {"handling the first call"};
    }
    return action;
  };
  return behavior;
}

// Runs one call on a worker whose first call does `kind`, then checks that
// the worker was replaced and a fresh worker serves the next call.
Error first_call_error(sim::CallAction::Kind kind) {
  Error error;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host, [kind](std::uint64_t index) {
      return index == 0 ? first_call_does(kind) : sim::WorkerBehavior{};
    });
    auto pool = make_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    Result<Lease> lease = pool->checkout();
    ASSERT_TRUE(lease.ok());
    Result<std::string> answer = lease.value().call("first");
    ASSERT_FALSE(answer.ok());
    error = answer.error();
    lease.value().release();
    Result<Lease> next = pool->checkout();
    ASSERT_TRUE(next.ok()) << next.error().describe();
    EXPECT_EQ(next.value().worker().generation, 2u) << "the broken worker was not replaced";
    EXPECT_EQ(next.value().call("second").value(), "second");
    next.value().release();
    EXPECT_EQ(launches.size(), 2u);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  return error;
}

TEST(ProtocolError, StaleReplyIdIsAProtocolErrorAndTheWorkerIsReplaced) {
  const Error error = first_call_error(sim::CallAction::Kind::wrong_request_id);
  EXPECT_EQ(error.code, ErrorCode::protocol_error);
  EXPECT_TRUE(contains(error.message, "unexpected reply frame")) << error.message;
  EXPECT_EQ(error.stderr_tail, "handling the first call");
}

TEST(ProtocolError, GarbageOnStdoutDuringACallIsAProtocolError) {
  const Error error = first_call_error(sim::CallAction::Kind::garbage);
  EXPECT_EQ(error.code, ErrorCode::protocol_error);
  EXPECT_TRUE(contains(error.message, "broke the protocol")) << error.message;
}

TEST(ProtocolError, TruncatedReplyThenExitIsReportedOnce) {
  const Error error = first_call_error(sim::CallAction::Kind::truncated_then_exit);
  EXPECT_TRUE(error.code == ErrorCode::protocol_error || error.code == ErrorCode::worker_crashed)
      << error.describe();
}

// An error frame answers the call; the worker is fine and keeps serving.
TEST(WorkerError, ErrorFrameFailsTheCallButKeepsTheWorker) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    host.set_behavior(first_call_does(sim::CallAction::Kind::error_frame));
    auto pool = make_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    Result<Lease> lease = pool->checkout();
    ASSERT_TRUE(lease.ok());
    Result<std::string> failed = lease.value().call("bad input");
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code, ErrorCode::worker_error);
    EXPECT_TRUE(contains(failed.error().message, "simulated call failure")) << failed.error().message;
    EXPECT_EQ(lease.value().call("good input").value(), "good input");
    lease.value().release();
    EXPECT_EQ(host.launches(), 1u);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// A pool run is a function of its seed: the same seed gives the same trace
// (and so the same interleaving), another seed another one. Without this no
// failing seed above could be replayed.
TEST(Determinism, SameSeedSameTraceDifferentSeedDifferentTrace) {
  const SimBody workload = [](sim::SimWorld& world, sim::SimProcessHost& host) {
    host.set_behavior_for_launch([&world](std::uint64_t, const ProcessSpec&) {
      sim::WorkerBehavior behavior;
      behavior.startup = milliseconds(static_cast<std::int64_t>(world.random_below(50)));
      return behavior;
    });
    PoolConfig config = base_config();
    config.size = {2, 3};
    config.min_ready = 2;
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    TaskGroup callers(world);
    for (int i = 0; i < 4; ++i) {
      callers.spawn(fmt::format("caller-{}", i), [&, i] {
        for (int k = 0; k < 5; ++k) {
          EXPECT_TRUE(pool->execute(fmt::format("{}/{}", i, k)).ok());
        }
      });
    }
    callers.join();
    EXPECT_TRUE(pool->shutdown().ok());
  };
  for (const sim::StrategySpec& strategy : {random_walk(), pct(3)}) {
    const sim::RunResult a = run_sim(workload, 11, strategy);
    const sim::RunResult b = run_sim(workload, 11, strategy);
    const sim::RunResult c = run_sim(workload, 12, strategy);
    ASSERT_TRUE(a.ok() && b.ok() && c.ok()) << a.summary();
    EXPECT_EQ(a.trace_hash, b.trace_hash) << strategy.to_string();
    EXPECT_EQ(a.decisions, b.decisions) << strategy.to_string();
    EXPECT_NE(a.trace_hash, c.trace_hash) << strategy.to_string();
  }
}

class StderrCollector final : public LogSink {
 public:
  void on_stderr(std::string_view pool, WorkerRef worker, std::string_view line) override {
    lines.push_back(fmt::format("{} {} {}", pool, worker.to_string(), line));
  }
  std::vector<std::string> lines;
};

TEST(Stderr, EveryLineReachesTheLogSinkTaggedWithItsWorker) {
  StderrCollector collector;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost& host) {
    sim::WorkerBehavior behavior;
    behavior.stderr_on_init = {"loading"};
    behavior.on_call = [](std::uint64_t call, const Frame&) {
      sim::CallAction action;
      action.stderr_lines = {fmt::format("call {}", call)};
      return action;
    };
    host.set_behavior(behavior);
    auto pool = make_pool(world, base_config("logged"), {.log = &collector});
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    ASSERT_TRUE(pool->execute("a").ok());
    ASSERT_TRUE(pool->execute("b").ok());
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(collector.lines, (std::vector<std::string>{"logged w0.1 loading", "logged w0.1 call 0",
                                                       "logged w0.1 call 1"}));
}

// The stderr tail attached to errors is bounded by stderr_lines_kept and
// holds the newest lines.
TEST(Stderr, TailAttachedToErrorsKeepsTheNewestLines) {
  sim::WorkerBehavior behavior;
  behavior.init = sim::WorkerBehavior::Init::crash;
  for (int i = 0; i < 10; ++i) {
    behavior.stderr_before_crash.push_back(fmt::format("line {}", i));
  }
  PoolConfig config = base_config();
  config.stderr_lines_kept = 3;
  const Error error = start_failure(behavior, config);
  EXPECT_EQ(error.stderr_tail, "line 7\nline 8\nline 9");
}

}  // namespace
}  // namespace seedpool
