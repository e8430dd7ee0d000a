// Tests of the primitives for code written as threads
// (<seedpool/core/sync.hpp>) on the simulated World: mutual exclusion over
// many seeds and both strategies, a lost update found by a sweep and fixed,
// misuse reported with the task and the object, notify_one, join, latch,
// exit, lock-order cycles in the deadlock report, contenders kept out of the
// run queue, teardown of tasks blocked on them, exact replays, and the same
// bugs found by bounded systematic search.

#include "support/sim_config.hpp"
#include "support/guide_inbox.hpp"
#include "support/ported_idioms.hpp"

#include <seedpool/core/sync.hpp>
#include <seedpool/sim/determinism.hpp>
#include <seedpool/sim/explore.hpp>
#include <seedpool/sim/sim_world.hpp>
#include <seedpool/sim/sweeper.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

namespace seedpool::sim {

static void PrintTo(Outcome outcome, std::ostream* out) { *out << to_string(outcome); }

namespace {

using namespace seedpool::test;

// `workers` tasks each add 1 to a plain int `rounds` times under `mutex`,
// with a scheduling point between the read and the write; fails the run if
// two are ever inside at once or an update is lost.
void count_under_mutex(SimWorld& world, int workers, int rounds) {
  Mutex mutex(world, "counter");
  int inside = 0;
  int total = 0;
  std::vector<Thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back(world, "worker-" + std::to_string(w), [&world, &mutex, &inside, &total, rounds] {
      for (int r = 0; r < rounds; ++r) {
        std::lock_guard<Mutex> held(mutex);
        if (++inside != 1) {
          world.fail("two tasks inside the critical section");
        }
        const int seen = total;
        world.yield();
        total = seen + 1;
        --inside;
      }
    });
  }
  for (Thread& thread : threads) {
    thread.join();
  }
  if (total != workers * rounds) {
    world.fail("an update under the mutex was lost: total " + std::to_string(total));
  }
}

TEST(SimMutex, MutualExclusionHoldsOverManySeedsAndBothStrategies) {
  for (const StrategySpec& strategy : {StrategySpec{}, pct3()}) {
    for (std::uint64_t seed = 1; seed <= 300; ++seed) {
      const RunResult run = simulate(seeded(seed, strategy), [](SimWorld& world) { count_under_mutex(world, 4, 5); });
      ASSERT_TRUE(run.ok()) << strategy.to_string() << " seed " << seed << ": " << run.summary();
    }
  }
}

TEST(SimMutex, TryLockFailsWhileHeldAndTakesAFreeMutex) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Mutex mutex(world, "m");
    ASSERT_TRUE(mutex.try_lock());
    bool other_got_it = true;
    Thread other(world, "other", [&] { other_got_it = mutex.try_lock(); });
    other.join();
    EXPECT_FALSE(other_got_it);
    mutex.unlock();
    const std::uint64_t before = world.steps();
    ASSERT_TRUE(mutex.try_lock());
    EXPECT_EQ(world.steps(), before + 1) << "try_lock is one scheduling point";
    mutex.unlock();
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

// std::scoped_lock over two mutexes taken in opposite orders: the standard
// deadlock-avoidance algorithm (lock one, try the other, back off) works
// on Mutex, whose try_lock is a scheduling point too.
TEST(SimMutex, ScopedLockOfTwoMutexesInEitherOrderNeverDeadlocks) {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    const RunResult run = simulate(seeded(seed), [](SimWorld& world) {
      Mutex a(world, "a");
      Mutex b(world, "b");
      int both = 0;
      Thread forward(world, "forward", [&] {
        for (int i = 0; i < 5; ++i) {
          std::scoped_lock held(a, b);
          ++both;
        }
      });
      Thread backward(world, "backward", [&] {
        for (int i = 0; i < 5; ++i) {
          std::scoped_lock held(b, a);
          ++both;
        }
      });
      forward.join();
      backward.join();
      EXPECT_EQ(both, 10);
    });
    ASSERT_TRUE(run.ok()) << "seed " << seed << ": " << run.summary();
  }
}

// Two tasks each add 1 to an Atomic<int>: as a load and a store (a lost
// update waiting for the right interleaving), or as one fetch_add.
void add_twice(SimWorld& world, bool split) {
  Atomic<int> counter(world, 0);
  const auto add_one = [&counter, split] {
    if (split) {
      const int seen = counter.load();
      counter.store(seen + 1);
    } else {
      counter.fetch_add(1);
    }
  };
  Thread a(world, "a", add_one);
  Thread b(world, "b", add_one);
  a.join();
  b.join();
  const int total = counter.load();
  if (total != 2) {
    world.fail("lost update: counter is " + std::to_string(total) + ", expected 2");
  }
}

TEST(SimAtomic, LostUpdateOfASplitLoadAndStoreIsFoundBySweepAndFixedByFetchAdd) {
  SweepPlan plan;
  plan.seeds = 200;
  const auto split = [](SimWorld& world) { add_twice(world, true); };
  const SweepReport found =
      run_sweep(plan, [&](std::uint64_t seed) { return run_program_seed(SimConfig{}, split, seed); });
  ASSERT_EQ(found.seeds_run, 200U);
  ASSERT_FALSE(found.failed.empty()) << "no seed interleaved the two loads before the stores";
  const SeedOutcome& first = found.failed.front();
  EXPECT_PRED2(has_text, first.message, "lost update: counter is 1");

  // The failing seed replays from its decisions to the same trace.
  const RunResult seeded_run = simulate(seeded(first.seed), split);
  SimConfig replay;
  replay.decisions = seeded_run.decisions;
  const RunResult replayed = simulate(replay, split);
  EXPECT_EQ(replayed.outcome, Outcome::invariant);
  EXPECT_EQ(replayed.trace_hash, seeded_run.trace_hash);
  EXPECT_EQ(replayed.trace_hash, first.trace_hash);

  const auto fixed = [](SimWorld& world) { add_twice(world, false); };
  const SweepReport clean =
      run_sweep(plan, [&](std::uint64_t seed) { return run_program_seed(SimConfig{}, fixed, seed); });
  EXPECT_EQ(clean.seeds_run, 200U);
  EXPECT_TRUE(clean.failed.empty()) << clean.failed.front().message;
}

// The same bugs under systematic search (explore.hpp): every schedule
// within a small preemption bound.
TEST(SimSyncExplore, BoundedSearchFindsTheLostUpdateAndTheLockCycleAndExhaustsTheFixes) {
  ExploreSpec spec;
  spec.strategy = parse_strategy("dfs:preemptions=2").value();
  const ExploreReport split = explore_program(SimConfig{}, [](SimWorld& world) { add_twice(world, true); }, spec);
  ASSERT_FALSE(split.ok()) << split.describe();
  EXPECT_PRED2(has_text, split.failure->message, "lost update");
  const ExploreReport fixed = explore_program(SimConfig{}, [](SimWorld& world) { add_twice(world, false); }, spec);
  EXPECT_TRUE(fixed.exhausted) << fixed.describe();
  const ExploreReport mutex = explore_program(SimConfig{}, [](SimWorld& world) { count_under_mutex(world, 2, 2); },
                                              spec);
  EXPECT_TRUE(mutex.exhausted) << mutex.describe();
}

TEST(SimAtomic, EveryOperationIsOneSchedulingPoint) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Atomic<std::uint64_t> value(world, 5);
    int slot = 0;
    Atomic<int*> pointer(world, nullptr);
    const std::uint64_t before = world.steps();
    EXPECT_EQ(value.load(), 5U);
    value.store(6);
    EXPECT_EQ(value.exchange(7), 6U);
    std::uint64_t expected = 1;
    EXPECT_FALSE(value.compare_exchange_strong(expected, 9));
    EXPECT_EQ(expected, 7U);
    EXPECT_TRUE(value.compare_exchange_strong(expected, 9));
    EXPECT_EQ(value.fetch_add(3), 9U);
    EXPECT_EQ(value.fetch_sub(2), 12U);
    EXPECT_EQ(++value, 11U);
    EXPECT_EQ(value--, 11U);
    EXPECT_EQ(pointer.exchange(&slot), nullptr);
    EXPECT_EQ(pointer.load(), &slot);
    EXPECT_EQ(world.steps(), before + 11);
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

// A run that fails by misuse: the outcome is a failed assertion and the
// message names the task and the object.
void expect_misuse(const std::function<void(SimWorld&)>& body, const std::string& message) {
  const RunResult run = simulate(seeded(1), body);
  EXPECT_EQ(run.outcome, Outcome::assertion) << run.summary();
  EXPECT_PRED2(has_text, run.message, message);
  EXPECT_EQ(run.tasks_abandoned, 1U) << "the misusing task is stopped where it misused";
}

TEST(SimMutexMisuse, UnlockingAMutexHeldByAnotherTaskNamesBoth) {
  expect_misuse(
      [](SimWorld& world) {
        Mutex mutex(world, "table");
        mutex.lock();
        Thread thief(world, "thief", [&] { mutex.unlock(); });
        thief.join();
        mutex.unlock();
      },
      "task 'thief' unlocks mutex 'table', which task 'main' holds");
}

TEST(SimMutexMisuse, UnlockingAFreeMutexIsAFailure) {
  expect_misuse(
      [](SimWorld& world) {
        Mutex mutex(world, "table");
        mutex.unlock();
      },
      "task 'main' unlocks mutex 'table', which is not locked");
}

TEST(SimMutexMisuse, LockingAMutexOneHoldsIsAFailureNotADeadlock) {
  expect_misuse(
      [](SimWorld& world) {
        Mutex mutex(world, "table");
        std::lock_guard<Mutex> outer(mutex);
        std::lock_guard<Mutex> inner(mutex);
      },
      "task 'main' locks mutex 'table', which it already holds");
}

TEST(SimMutexMisuse, DestroyingAHeldMutexIsAFailure) {
  expect_misuse(
      [](SimWorld& world) {
        Thread worker(world, "worker", [&world] {
          auto mutex = std::make_unique<Mutex>(world, "short-lived");
          mutex->lock();
          mutex.reset();
        });
        worker.join();
      },
      "mutex 'short-lived' destroyed by task 'worker' while task 'worker' holds it");
}

TEST(SimMutexMisuse, WaitingWithoutHoldingTheMutexIsAFailure) {
  expect_misuse(
      [](SimWorld& world) {
        Mutex mutex(world, "m");
        ConditionVariable ready(world, "ready");
        std::unique_lock<Mutex> not_really(mutex, std::adopt_lock);
        ready.wait(not_really);
      },
      "task 'main' waits on condition 'ready' without holding mutex 'm'");
}

TEST(SimThreadMisuse, DestroyingAJoinableThreadIsAFailure) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Thread forgotten(world, "forgotten", [&world] { world.sleep_for(seconds(1)); });
  });
  EXPECT_EQ(run.outcome, Outcome::assertion) << run.summary();
  EXPECT_PRED2(has_text, run.message, "Thread 'forgotten' destroyed while joinable");
  EXPECT_PRED2(has_text, run.message, "task 'main'");
}

// As the standard library's thread: a join of oneself throws
// resource_deadlock_would_occur, and the thread can still be joined.
TEST(SimThreadMisuse, JoiningOneselfThrowsResourceDeadlockWouldOccur) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Thread* self = nullptr;
    bool thrown = false;
    Thread narcissus(world, "narcissus", [&world, &self, &thrown] {
      world.sleep_for(milliseconds(1));
      try {
        self->join();
      } catch (const std::system_error& error) {
        thrown = error.code() == std::errc::resource_deadlock_would_occur;
      }
    });
    self = &narcissus;
    narcissus.join();
    EXPECT_TRUE(thrown);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// Under SimConfig::notify_one_fifo: the waiter that began to wait first.
TEST(SimConditionVariable, NotifyOneWakesExactlyOneWaiterTheFirstToWaitUnderFifo) {
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    SimConfig config = seeded(seed);
    config.notify_one_fifo = true;
    const RunResult run = simulate(config, [](SimWorld& world) {
      Mutex mutex(world, "m");
      ConditionVariable bell(world, "bell");
      std::vector<std::string> waiting;
      std::vector<std::string> woken;
      std::vector<Thread> waiters;
      for (int i = 0; i < 3; ++i) {
        const std::string name = "waiter-" + std::to_string(i);
        waiters.emplace_back(world, name, [&, name] {
          std::unique_lock<Mutex> held(mutex);
          waiting.push_back(name);
          bell.wait(held);  // once: no predicate, and no spurious wake-ups in simulation
          woken.push_back(name);
        });
      }
      // Virtual time moves only when nothing can run: every waiter waits now.
      world.sleep_for(milliseconds(1));
      ASSERT_EQ(waiting.size(), 3U);
      bell.notify_one();
      world.sleep_for(milliseconds(1));
      ASSERT_EQ(woken.size(), 1U);
      EXPECT_EQ(woken.front(), waiting.front());
      bell.notify_all();
      for (Thread& waiter : waiters) {
        waiter.join();
      }
      EXPECT_EQ(woken.size(), 3U);
    });
    ASSERT_TRUE(run.ok()) << "seed " << seed << ": " << run.summary();
  }
}

// A waiter notified while the notifier holds the mutex waits for the mutex
// without becoming runnable: the notifier's own steps meanwhile are sole
// picks, one each.
TEST(SimConditionVariable, NotifiedWaitersWaitForTheMutexOutsideTheRunQueue) {
  const RunResult run = simulate(seeded(7), [](SimWorld& world) {
    Mutex mutex(world, "m");
    ConditionVariable bell(world, "bell");
    bool rung = false;
    std::vector<Thread> waiters;
    for (int i = 0; i < 4; ++i) {
      waiters.emplace_back(world, "waiter-" + std::to_string(i), [&] {
        std::unique_lock<Mutex> held(mutex);
        bell.wait(held, [&] { return rung; });
      });
    }
    world.sleep_for(milliseconds(1));
    {
      std::lock_guard<Mutex> held(mutex);
      rung = true;
      bell.notify_all();
      const std::uint64_t before = world.steps();
      for (int i = 0; i < 10; ++i) {
        world.yield();
      }
      EXPECT_EQ(world.steps(), before + 10) << "a notified waiter ran while the mutex was held";
    }
    for (Thread& waiter : waiters) {
      waiter.join();
    }
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(SimConditionVariable, WaitUntilTimesOutAtItsDeadlineWithTheMutexHeld) {
  const RunResult run = simulate(seeded(3), [](SimWorld& world) {
    Mutex mutex(world, "m");
    ConditionVariable never(world, "never");
    std::unique_lock<Mutex> held(mutex);
    const Instant deadline = world.now() + milliseconds(30);
    EXPECT_EQ(never.wait_until(held, deadline), CvStatus::timeout);
    EXPECT_EQ(world.now(), deadline);
    EXPECT_TRUE(held.owns_lock());
    EXPECT_FALSE(never.wait_for(held, milliseconds(5), [] { return false; }));
    EXPECT_EQ(world.now(), deadline + milliseconds(5));
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(SimThread, JoinWaitsForTheTaskAndTheJoinerIsNotRunnableMeanwhile) {
  const RunResult run = simulate(seeded(11), [](SimWorld& world) {
    bool slept = false;
    Thread sleeper(world, "sleeper", [&] {
      world.sleep_for(seconds(1));
      slept = true;
    });
    sleeper.join();
    EXPECT_TRUE(slept);
    EXPECT_EQ(world.now(), Instant::zero() + seconds(1));
    EXPECT_FALSE(sleeper.joinable());

    constexpr int yields = 1000;
    Thread busy(world, "busy", [&world] {
      for (int i = 0; i < yields; ++i) {
        world.yield();
      }
    });
    const std::uint64_t before = world.steps();
    busy.join();
    // A runnable joiner would have been picked about as often as the busy task.
    EXPECT_LE(world.steps() - before, static_cast<std::uint64_t>(yields) + 3);
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(SimThread, ADetachedTaskRunsOn) {
  bool finished = false;
  const RunResult run = simulate(seeded(2), [&finished](SimWorld& world) {
    Thread(world, "detached", [&world, &finished] {
      world.sleep_for(seconds(2));
      finished = true;
    }).detach();
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_TRUE(finished);
}

TEST(SimLatch, WaitReturnsOnceEveryWorkerCountedDown) {
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    const RunResult run = simulate(seeded(seed), [](SimWorld& world) {
      constexpr int workers = 5;
      Latch done(world, "done", workers);
      Latch start(world, "start", workers + 1);
      int finished = 0;
      int started_before_all_arrived = 0;
      int arrived = 0;
      std::vector<Thread> threads;
      for (int i = 0; i < workers; ++i) {
        threads.emplace_back(world, "worker-" + std::to_string(i), [&, i] {
          ++arrived;
          start.arrive_and_wait();
          if (arrived != workers + 1) {
            ++started_before_all_arrived;
          }
          world.sleep_for(milliseconds(i + 1));
          ++finished;
          done.count_down();
        });
      }
      EXPECT_FALSE(done.try_wait());
      ++arrived;
      start.count_down();
      done.wait();
      EXPECT_EQ(finished, workers);
      EXPECT_EQ(started_before_all_arrived, 0);
      EXPECT_TRUE(done.try_wait());
      for (Thread& thread : threads) {
        thread.join();
      }
    });
    ASSERT_TRUE(run.ok()) << "seed " << seed << ": " << run.summary();
  }
}

TEST(SimExit, EndsTheRunOkAndTearsDownEveryOtherTask) {
  int ticks = 0;
  bool ticker_saw_stopping = false;
  bool caller_saw_stopping = false;
  SimConfig config = seeded(5);
  config.keep_trace_events = true;
  const RunResult run = simulate(config, [&](SimWorld& world) {
    auto mutex = std::make_shared<Mutex>(world, "never-free");
    mutex->lock();
    world.spawn("ticker", [&] {
      for (;;) {
        world.sleep_for(milliseconds(10));
        if (world.stopping()) {
          break;
        }
        ++ticks;
      }
      ticker_saw_stopping = true;
    });
    world.spawn("locker", [&world, mutex] {
      std::lock_guard<Mutex> held(*mutex);
      world.fail("the mutex was never to be free");
    });
    world.sleep_for(milliseconds(35));
    world.exit();
    caller_saw_stopping = world.stopping();
    mutex->unlock();
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(run.virtual_time, Instant::zero() + milliseconds(35));
  EXPECT_EQ(ticks, 3);
  EXPECT_TRUE(ticker_saw_stopping);
  EXPECT_TRUE(caller_saw_stopping);
  EXPECT_EQ(run.tasks_abandoned, 0U);
  EXPECT_EQ(run.tasks_ended, 1U) << "the locker, whose lock could neither wait nor fail in teardown";
  ASSERT_FALSE(run.trace.events().empty());
  EXPECT_EQ(run.trace.events().back().kind, EventKind::exit);
}

TEST(SimExit, ATaskOtherThanMainMayEndTheRun) {
  const RunResult run = simulate(seeded(6), [](SimWorld& world) {
    world.spawn("quitter", [&world] {
      world.sleep_for(seconds(1));
      world.exit();
    });
    world.sleep_for(hours(1));
    world.fail("main outlived the exit");
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(run.virtual_time, Instant::zero() + seconds(1));
}

// Two tasks take two mutexes in opposite orders; some interleavings deadlock.
void opposite_orders(SimWorld& world) {
  Mutex m1(world, "m1");
  Mutex m2(world, "m2");
  Thread a(world, "A", [&] {
    std::lock_guard<Mutex> first(m1);
    std::lock_guard<Mutex> second(m2);
  });
  Thread b(world, "B", [&] {
    std::lock_guard<Mutex> first(m2);
    std::lock_guard<Mutex> second(m1);
  });
  a.join();
  b.join();
}

TEST(SimMutex, LockOrderDeadlockIsReportedAsACycle) {
  std::size_t deadlocks = 0;
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    const RunResult run = simulate(seeded(seed), opposite_orders);
    if (run.ok()) {
      continue;
    }
    ++deadlocks;
    ASSERT_EQ(run.outcome, Outcome::deadlock) << run.summary();
    EXPECT_PRED2(has_text, run.message,
                 "lock cycle: task 'A' holds 'm1' and waits for 'm2'; task 'B' holds 'm2' and waits for 'm1'");
    EXPECT_PRED2(has_text, run.message, "task 'A' (#1) waits: lock 'm2'");
    EXPECT_PRED2(has_text, run.message, "task 'main' (#0) waits: join 'A'");
  }
  EXPECT_GT(deadlocks, 0U) << "no seed interleaved the two first locks";
  EXPECT_LT(deadlocks, 100U);
}

TEST(SimSyncExplore, BoundedSearchFindsTheLockOrderDeadlock) {
  ExploreSpec spec;
  spec.strategy = parse_strategy("dfs:preemptions=1").value();
  const ExploreReport report = explore_program(SimConfig{}, opposite_orders, spec);
  ASSERT_FALSE(report.ok()) << report.describe();
  EXPECT_EQ(report.failure->kind, "deadlock");
  EXPECT_PRED2(has_text, report.failure->message,
               "lock cycle: task 'A' holds 'm1' and waits for 'm2'; task 'B' holds 'm2' and waits for 'm1'");
}

TEST(SimMutex, AMutexLeftHeldByAFinishedTaskIsNamedInTheDeadlockReport) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Mutex mutex(world, "forgotten");
    Thread careless(world, "careless", [&] { mutex.lock(); });
    careless.join();
    std::lock_guard<Mutex> held(mutex);
  });
  ASSERT_EQ(run.outcome, Outcome::deadlock) << run.summary();
  EXPECT_PRED2(has_text, run.message,
               "mutex 'forgotten' is held by task 'careless', which finished without unlocking it");
}

// The lock the simulator had before Mutex, built on a Monitor: every
// release wakes every contender, each of which takes a step only to find
// the lock taken again.
class MonitorLoopLock {
 public:
  MonitorLoopLock(World& world) : world_(world), monitor_(world.make_monitor("monitor-lock")) {}
  void lock() {
    world_.yield();
    MonitorLock hold(*monitor_);
    while (held_) {
      monitor_->wait_until(Instant::max(), "lock");
    }
    held_ = true;
  }
  void unlock() {
    MonitorLock hold(*monitor_);
    held_ = false;
    monitor_->notify_all();
  }

 private:
  World& world_;
  std::unique_ptr<Monitor> monitor_;
  bool held_ = false;
};

// `tasks` tasks each take `lock` `rounds` times around one scheduling point.
template <class Lock>
RunResult contend(std::uint64_t seed, int tasks, int rounds) {
  return simulate(seeded(seed), [tasks, rounds](SimWorld& world) {
    Lock lock = [&world]() -> Lock {
      if constexpr (std::is_same_v<Lock, std::unique_ptr<Mutex>>) {
        return std::make_unique<Mutex>(world, "contended");
      } else {
        return std::make_unique<MonitorLoopLock>(world);
      }
    }();
    Latch done(world, "done", tasks);
    for (int t = 0; t < tasks; ++t) {
      world.spawn("contender-" + std::to_string(t), [&world, &lock, &done, rounds] {
        for (int r = 0; r < rounds; ++r) {
          lock->lock();
          world.yield();
          lock->unlock();
        }
        done.count_down();
      });
    }
    done.wait();
  });
}

TEST(SimMutex, ContendersWaitOutOfTheRunQueueAndCostAtMostTwoStepsPerLock) {
  constexpr int tasks = 16;
  constexpr int rounds = 20;
  constexpr std::uint64_t locks = tasks * rounds;
  // The steps the program asks for itself: per round the lock's scheduling
  // point and the yield inside.
  constexpr std::uint64_t asked = 2 * locks;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    const RunResult aware = contend<std::unique_ptr<Mutex>>(seed, tasks, rounds);
    const RunResult loop = contend<std::unique_ptr<MonitorLoopLock>>(seed, tasks, rounds);
    ASSERT_TRUE(aware.ok()) << aware.summary();
    ASSERT_TRUE(loop.ok()) << loop.summary();
    // At most one more step per lock (the pick of a woken contender that
    // takes the mutex), plus a few per task for the spawns, the latch and
    // main's wait: steps <= 3 * locks + 4 * tasks.
    EXPECT_LE(aware.steps, asked + locks + 4 * tasks) << "seed " << seed;
    // The monitor loop spends a step on every contender at every release.
    EXPECT_GE(loop.steps - asked, 4 * (aware.steps - asked))
        << "seed " << seed << ": the monitor loop took " << loop.steps << " steps, the blocking-aware mutex "
        << aware.steps << ", for " << locks << " locks";
  }
}

TEST(SimSyncTeardown, TasksBlockedOnSyncObjectsAreEndedNotAbandoned) {
  const RunResult run = simulate(seeded(4), [](SimWorld& world) {
    auto mutex = std::make_shared<Mutex>(world, "held");
    auto other = std::make_shared<Mutex>(world, "other");
    auto bell = std::make_shared<ConditionVariable>(world, "bell");
    auto latch = std::make_shared<Latch>(world, "latch", 1);
    mutex->lock();
    world.spawn("locker", [mutex] { std::lock_guard<Mutex> held(*mutex); });
    world.spawn("waiter", [other, bell] {
      std::unique_lock<Mutex> held(*other);
      bell->wait(held, [] { return false; });
    });
    world.spawn("latched", [latch] { latch->wait(); });
    auto sleeper = std::make_shared<Thread>(world, "sleeper", [&world] { world.sleep_for(hours(1)); });
    world.spawn("joiner", [sleeper] { sleeper->join(); });
    world.sleep_for(milliseconds(1));
    world.fail("stop here");
    world.yield();
    mutex->unlock();
  });
  ASSERT_EQ(run.outcome, Outcome::invariant) << run.summary();
  EXPECT_EQ(run.tasks_abandoned, 0U);
  EXPECT_GE(run.tasks_ended, 3U);
}

// A workload using every primitive, for the determinism checks.
void everything(SimWorld& world) {
  Mutex mutex(world, "m");
  ConditionVariable changed(world, "changed");
  Atomic<int> hits(world, 0);
  Latch all_in(world, "all-in", 3);
  int queue = 0;
  std::vector<Thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back(world, "producer-" + std::to_string(i), [&, i] {
      all_in.arrive_and_wait();
      for (int k = 0; k < 4; ++k) {
        {
          std::lock_guard<Mutex> held(mutex);
          ++queue;
        }
        changed.notify_one();
        hits.fetch_add(1);
        world.sleep_for(microseconds(static_cast<std::int64_t>(world.random_below(50)) + i));
      }
    });
  }
  int taken = 0;
  while (taken < 12) {
    std::unique_lock<Mutex> held(mutex);
    if (changed.wait_for(held, microseconds(30), [&] { return queue > 0; })) {
      --queue;
      ++taken;
    }
  }
  for (Thread& thread : threads) {
    thread.join();
  }
  if (hits.load() != 12) {
    world.fail("hits lost");
  }
}

TEST(SimSyncDeterminism, SameSeedSameTraceAndDecisionListsReplay) {
  for (const StrategySpec& strategy : {StrategySpec{}, pct3()}) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      const DeterminismReport report = check_determinism(seeded(seed, strategy), everything);
      ASSERT_TRUE(report.deterministic) << report.describe();
      const RunResult first = simulate(seeded(seed, strategy), everything);
      ASSERT_TRUE(first.ok()) << first.summary();
      SimConfig replay = seeded(seed + 1000, strategy);
      replay.decisions = first.decisions;
      const RunResult replayed = simulate(replay, everything);
      EXPECT_EQ(replayed.trace_hash, first.trace_hash) << strategy.to_string() << " seed " << seed;
      EXPECT_EQ(replayed.steps, first.steps);
    }
  }
}

TEST(SimSyncDeterminism, DifferentSeedsExploreDifferentInterleavings) {
  std::vector<std::uint64_t> hashes;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    hashes.push_back(simulate(seeded(seed), everything).trace_hash);
  }
  std::sort(hashes.begin(), hashes.end());
  EXPECT_GE(std::unique(hashes.begin(), hashes.end()) - hashes.begin(), 15);
}

// The ported program of docs/guide.md ("Code written as threads"), as it
// stands there.
TEST(SimSyncGuide, ThePortedProgramOfTheGuidePassesEverySeed) {
  for (const StrategySpec& strategy : {StrategySpec{}, pct3()}) {
    for (std::uint64_t seed = 1; seed <= 200; ++seed) {
      const RunResult run = simulate(seeded(seed, strategy), [](SimWorld& world) { seedpool::test::run_inbox(world); });
      ASSERT_TRUE(run.ok()) << strategy.to_string() << " seed " << seed << ": " << run.summary();
    }
  }
}

// Thread code's idioms compile and run as they are: memory orders, an
// atomic enum and double, threads with arguments, a std::chrono timeout.
TEST(SimSyncPorting, TheStandardLibrarysIdiomsPassEverySeed) {
  for (const StrategySpec& strategy : {StrategySpec{}, pct3()}) {
    for (std::uint64_t seed = 1; seed <= 200; ++seed) {
      const RunResult run =
          simulate(seeded(seed, strategy), [](SimWorld& world) { seedpool::test::run_ported_idioms(world); });
      ASSERT_TRUE(run.ok()) << strategy.to_string() << " seed " << seed << ": " << run.summary();
    }
  }
}

TEST(SimSyncPorting, AStdChronoTimeoutIsTheSameVirtualWait) {
  using namespace std::chrono_literals;
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Mutex mutex(world, "m");
    ConditionVariable never(world, "never");
    std::unique_lock<Mutex> held(mutex);
    const Instant start = world.now();
    EXPECT_EQ(never.wait_for(held, 30ms), CvStatus::timeout);
    EXPECT_EQ(world.now(), start + milliseconds(30));
    EXPECT_FALSE(never.wait_for(held, std::chrono::microseconds(250), [] { return false; }));
    EXPECT_EQ(world.now(), start + milliseconds(30) + microseconds(250));
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(SimSyncPorting, StdChronoDurationsConvertExactlyOrSaturate) {
  using namespace std::chrono_literals;
  static_assert(to_duration(3ms) == milliseconds(3));
  static_assert(to_duration(2h) == hours(2));
  static_assert(to_duration(std::chrono::duration<std::int64_t, std::pico>(1500)) == nanoseconds(1));
  static_assert(to_duration(std::chrono::hours::max()) == Duration::max());
  static_assert(to_duration(std::chrono::hours::min()) == Duration::from_ns(std::numeric_limits<std::int64_t>::min()));
  EXPECT_EQ(to_duration(-5s), Duration::zero() - seconds(5));
}

TEST(SimSyncPorting, AnAtomicEnumAndAStructSwapWholeAndCompareByValue) {
  struct Pair {
    int a;
    int b;
  };
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Atomic<seedpool::test::Phase> phase(world, seedpool::test::Phase::starting);
    auto expected = seedpool::test::Phase::running;
    EXPECT_FALSE(phase.compare_exchange_weak(expected, seedpool::test::Phase::stopped, std::memory_order_acq_rel,
                                             std::memory_order_relaxed));
    EXPECT_EQ(expected, seedpool::test::Phase::starting);
    Atomic<Pair> pair(world, Pair{1, 2});
    const Pair old = pair.exchange(Pair{3, 4}, std::memory_order_acq_rel);
    EXPECT_EQ(old.a + old.b, 3);
    EXPECT_EQ(pair.load().b, 4);
    Atomic<int> bits(world, 0b1100);
    EXPECT_EQ(bits &= 0b0100, 0b0100);
    EXPECT_EQ(bits |= 0b0001, 0b0101);
    EXPECT_EQ(bits ^= 0b0101, 0);
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

}  // namespace
}  // namespace seedpool::sim
