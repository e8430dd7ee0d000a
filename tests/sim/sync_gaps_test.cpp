// Tests of the parts of <seedpool/core/sync.hpp> that close the gaps an
// outside port of std thread code met, on the simulated World: which waiter
// notify_one wakes is a scheduling decision (explored by seeds and by the
// bounded search), optional spurious wakeups, std::cv_status, deadlines as
// std::chrono time points, TimedMutex, the recursive mutexes, the timed
// tries of SharedMutex, ConditionVariableAny, this_task, Thread's
// std::system_error on a bad join, async and SharedFuture.

#include "support/sim_config.hpp"

#include <seedpool/core/sync.hpp>
#include <seedpool/sim/determinism.hpp>
#include <seedpool/sim/explore.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <mutex>
#include <ostream>
#include <memory>
#include <set>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace seedpool::sim {

static void PrintTo(Outcome outcome, std::ostream* out) { *out << to_string(outcome); }

namespace {

using namespace seedpool::test;

using namespace std::chrono_literals;

// Three waiters wait in turn; one notify_one. Returns the index of the one
// that woke (-1 when none or several did).
int woken_by_notify_one(SimWorld& world) {
  Mutex mutex(world, "m");
  ConditionVariable bell(world, "bell");
  int woken = -1;
  int wakes = 0;
  bool done = false;
  std::vector<Thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back(world, "waiter-" + std::to_string(i), [&, i] {
      std::unique_lock<Mutex> held(mutex);
      bell.wait(held);  // once, no predicate: spurious wakeups are off
      if (!done) {
        woken = i;
        ++wakes;
      }
    });
    world.sleep_for(milliseconds(1));  // each waits before the next starts
  }
  bell.notify_one();
  world.sleep_for(milliseconds(1));
  {
    std::lock_guard<Mutex> held(mutex);
    done = true;
  }
  bell.notify_all();
  for (Thread& waiter : waiters) {
    waiter.join();
  }
  return wakes == 1 ? woken : -1;
}

TEST(SimNotifyOneChoice, EachWaiterIsWokenOnSomeSeedAndTheLongestUnderFifo) {
  for (const StrategySpec& strategy : {StrategySpec{}, pct3()}) {
    std::set<int> seen;
    for (std::uint64_t seed = 1; seed <= 60; ++seed) {
      int woken = -2;
      const RunResult run = simulate(seeded(seed, strategy), [&](SimWorld& world) { woken = woken_by_notify_one(world); });
      ASSERT_TRUE(run.ok()) << run.summary();
      ASSERT_GE(woken, 0) << "exactly one waiter wakes, seed " << seed;
      seen.insert(woken);
    }
    EXPECT_EQ(seen, (std::set<int>{0, 1, 2})) << strategy.to_string();
  }
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    SimConfig config = seeded(seed);
    config.notify_one_fifo = true;
    int woken = -2;
    const RunResult run = simulate(config, [&](SimWorld& world) { woken = woken_by_notify_one(world); });
    ASSERT_TRUE(run.ok()) << run.summary();
    EXPECT_EQ(woken, 0) << "seed " << seed;
  }
}

TEST(SimNotifyOneChoice, TheChoiceIsRecordedAndReplays) {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    const auto body = [](SimWorld& world) { static_cast<void>(woken_by_notify_one(world)); };
    const DeterminismReport report = check_determinism(seeded(seed), body);
    ASSERT_TRUE(report.deterministic) << report.describe();
    const RunResult first = simulate(seeded(seed), body);
    SimConfig replay = seeded(seed + 1000);
    replay.decisions = first.decisions;
    EXPECT_EQ(simulate(replay, body).trace_hash, first.trace_hash) << "seed " << seed;
  }
}

// Two waiters with different conditions on one condition variable, and
// notify_one: when the notify wakes the waiter whose condition is still
// false, that one waits again and the other is never woken (the fix:
// notify_all). The waiter for `a` always waits first, so waking the longest
// waiter never shows the bug.
void two_conditions_one_variable(SimWorld& world, bool notify_all) {
  Mutex mutex(world, "m");
  ConditionVariable changed(world, "changed");
  bool a = false;
  bool b = false;
  const auto notify = [&] {
    if (notify_all) {
      changed.notify_all();
    } else {
      changed.notify_one();
    }
  };
  Thread wants_a(world, "wants-a", [&] {
    std::unique_lock<Mutex> held(mutex);
    changed.wait(held, [&] { return a; });
  });
  world.sleep_for(milliseconds(1));
  Thread wants_b(world, "wants-b", [&] {
    std::unique_lock<Mutex> held(mutex);
    changed.wait(held, [&] { return b; });
  });
  world.sleep_for(milliseconds(1));
  {
    std::lock_guard<Mutex> held(mutex);
    a = true;
  }
  notify();
  world.sleep_for(milliseconds(1));
  {
    std::lock_guard<Mutex> held(mutex);
    b = true;
  }
  notify();
  wants_a.join();
  wants_b.join();
}

TEST(SimNotifyOneChoice, AWakeupOfTheWrongWaiterIsFoundBySeedsAndBySearchNeverUnderFifo) {
  int hung = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    const RunResult run = simulate(seeded(seed), [](SimWorld& world) { two_conditions_one_variable(world, false); });
    if (run.outcome == Outcome::deadlock) {
      ++hung;
      EXPECT_PRED2(has_text, run.message, "wait on condition 'changed'");
    } else {
      ASSERT_TRUE(run.ok()) << run.summary();
    }
    SimConfig fifo = seeded(seed);
    fifo.notify_one_fifo = true;
    EXPECT_TRUE(simulate(fifo, [](SimWorld& world) { two_conditions_one_variable(world, false); }).ok());
    const RunResult fixed = simulate(seeded(seed), [](SimWorld& world) { two_conditions_one_variable(world, true); });
    EXPECT_TRUE(fixed.ok()) << fixed.summary();
  }
  EXPECT_GT(hung, 5) << "about half the seeds wake the wrong waiter first";

  ExploreSpec spec;
  spec.strategy = parse_strategy("dfs:preemptions=1").value();
  const ExploreReport bug =
      explore_program(SimConfig{}, [](SimWorld& world) { two_conditions_one_variable(world, false); }, spec);
  ASSERT_FALSE(bug.ok()) << bug.describe();
  EXPECT_EQ(bug.failure->kind, "deadlock");
  const ExploreReport fix =
      explore_program(SimConfig{}, [](SimWorld& world) { two_conditions_one_variable(world, true); }, spec);
  EXPECT_TRUE(fix.exhausted) << fix.describe();
  // Bound 0 allows no non-default choice: the longest waiter, and no bug.
  spec.strategy = parse_strategy("dfs:preemptions=0").value();
  EXPECT_TRUE(
      explore_program(SimConfig{}, [](SimWorld& world) { two_conditions_one_variable(world, false); }, spec).exhausted);
}

// One consumer that waits with `if` rather than `while`: correct only as
// long as no wait returns without a notification.
void if_instead_of_while(SimWorld& world, bool loop) {
  Mutex mutex(world, "m");
  ConditionVariable ready(world, "ready");
  std::vector<int> items;
  Thread consumer(world, "consumer", [&] {
    std::unique_lock<Mutex> held(mutex);
    if (loop) {
      while (items.empty()) {
        ready.wait(held);
      }
    } else if (items.empty()) {
      ready.wait(held);
    }
    if (items.empty()) {
      world.fail("consumer woke to an empty queue");
      return;
    }
    items.pop_back();
  });
  world.sleep_for(milliseconds(1));
  {
    std::lock_guard<Mutex> held(mutex);
    items.push_back(1);
  }
  ready.notify_one();
  consumer.join();
}

TEST(SimSpuriousWakeups, OffByDefaultAndWhenOnTheyFindAnIfWhereAWhileBelongs) {
  int found = 0;
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    EXPECT_TRUE(simulate(seeded(seed), [](SimWorld& world) { if_instead_of_while(world, false); }).ok());
    SimConfig spurious = seeded(seed);
    spurious.spurious_wakeups = true;
    const RunResult run = simulate(spurious, [](SimWorld& world) { if_instead_of_while(world, false); });
    if (!run.ok()) {
      ++found;
      EXPECT_PRED2(has_text, run.message, "consumer woke to an empty queue");
    }
    const RunResult fixed = simulate(spurious, [](SimWorld& world) { if_instead_of_while(world, true); });
    EXPECT_TRUE(fixed.ok()) << fixed.summary();
  }
  EXPECT_GT(found, 5);

  ExploreSpec spec;
  spec.strategy = parse_strategy("dfs:preemptions=1").value();
  SimConfig spurious;
  spurious.spurious_wakeups = true;
  const ExploreReport bug = explore_program(spurious, [](SimWorld& world) { if_instead_of_while(world, false); }, spec);
  EXPECT_FALSE(bug.ok()) << bug.describe();
  spec.strategy = parse_strategy("dfs:preemptions=2").value();
  EXPECT_TRUE(explore_program(spurious, [](SimWorld& world) { if_instead_of_while(world, true); }, spec).exhausted);
}

TEST(SimChronoDeadlines, CvStatusAndWorldClockTimePointsWaitVirtualTime) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Mutex mutex(world, "m");
    ConditionVariable never(world, "never");
    std::unique_lock<Mutex> held(mutex);
    const Instant start = world.now();
    EXPECT_TRUE(never.wait_for(held, 10ms) == std::cv_status::timeout);
    EXPECT_EQ(world.now(), start + milliseconds(10));
    const WorldClock::time_point deadline = world_now(world) + 5ms;
    EXPECT_EQ(never.wait_until(held, deadline), std::cv_status::timeout);
    EXPECT_EQ(world.now(), start + milliseconds(15));
    EXPECT_FALSE(never.wait_until(held, world_now(world) + 1ms, [] { return false; }));
    EXPECT_EQ(world.now(), start + milliseconds(16));
    held.unlock();

    CountingSemaphore<> none(world, "none", 0);
    EXPECT_FALSE(none.try_acquire_until(world_now(world) + 4ms));
    EXPECT_EQ(world.now(), start + milliseconds(20));
    Promise<int> promise(world, "promise");
    Future<int> future = promise.get_future();
    EXPECT_EQ(future.wait_until(world_now(world) + 5ms), std::future_status::timeout);
    EXPECT_EQ(world.now(), start + milliseconds(25));
    promise.set_value(1);

    this_task::sleep_for(world, 5ms);
    EXPECT_EQ(world.now(), start + milliseconds(30));
    this_task::sleep_until(world, world_now(world) + 2ms);
    EXPECT_EQ(world.now(), start + milliseconds(32));
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(SimChronoDeadlines, AHostClockTimePointFailsTheRunNamingTheFix) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Mutex mutex(world, "m");
    ConditionVariable never(world, "never");
    std::unique_lock<Mutex> held(mutex);
    static_cast<void>(never.wait_until(held, std::chrono::steady_clock::now() + 10ms));
  });
  EXPECT_EQ(run.outcome, Outcome::assertion) << run.summary();
  EXPECT_PRED2(has_text, run.message, "ConditionVariable::wait_until was given a time point of a host clock");
  EXPECT_PRED2(has_text, run.message, "seedpool::WorldClock");
}

TEST(SimTimedMutex, TimedTriesWaitVirtualTimeForTheHolder) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    TimedMutex mutex(world, "timed");
    const Instant start = world.now();
    Thread holder(world, "holder", [&] {
      std::lock_guard<TimedMutex> held(mutex);
      world.sleep_for(milliseconds(50));
    });
    world.sleep_for(milliseconds(1));
    {
      std::unique_lock<TimedMutex> tried(mutex, 10ms);
      EXPECT_FALSE(tried.owns_lock());
      EXPECT_EQ(world.now(), start + milliseconds(11));
    }
    EXPECT_FALSE(mutex.try_lock());
    EXPECT_TRUE(mutex.try_lock_until(world_now(world) + 100ms));
    EXPECT_EQ(world.now(), start + milliseconds(50));
    mutex.unlock();
    holder.join();
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(SimTimedMutex, KeepsMutualExclusionOverSeeds) {
  for (const StrategySpec& strategy : {StrategySpec{}, pct3()}) {
    for (std::uint64_t seed = 1; seed <= 30; ++seed) {
      const RunResult run = simulate(seeded(seed, strategy), [](SimWorld& world) {
        TimedMutex mutex(world, "timed");
        int inside = 0;
        int total = 0;
        std::vector<Thread> threads;
        for (int t = 0; t < 3; ++t) {
          threads.emplace_back(world, "worker-" + std::to_string(t), [&] {
            for (int r = 0; r < 3;) {
              std::unique_lock<TimedMutex> held(mutex, std::defer_lock);
              if (!held.try_lock_for(1ms)) {
                continue;
              }
              if (++inside != 1) {
                world.fail("two tasks inside");
              }
              world.yield();
              --inside;
              ++total;
              ++r;
            }
          });
        }
        for (Thread& thread : threads) {
          thread.join();
        }
        EXPECT_EQ(total, 9);
      });
      ASSERT_TRUE(run.ok()) << strategy.to_string() << " seed " << seed << ": " << run.summary();
    }
  }
}

TEST(SimTimedMutex, LockingItAgainFailsTheRun) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    TimedMutex mutex(world, "timed");
    mutex.lock();
    static_cast<void>(mutex.try_lock_for(1ms));
  });
  EXPECT_EQ(run.outcome, Outcome::assertion) << run.summary();
  EXPECT_PRED2(has_text, run.message, "TimedMutex 'timed', which it already holds");
}

TEST(SimRecursiveMutex, TheHolderLocksAgainAndOthersWaitForTheLastUnlock) {
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    const RunResult run = simulate(seeded(seed), [](SimWorld& world) {
      RecursiveMutex mutex(world, "recursive");
      RecursiveTimedMutex timed(world, "recursive timed");
      int depth_seen = 0;
      bool other_inside = false;
      const std::function<void(int)> nest = [&](int depth) {
        std::lock_guard<RecursiveMutex> held(mutex);
        if (other_inside) {
          world.fail("two tasks inside");
        }
        depth_seen = std::max(depth_seen, depth);
        if (depth < 3) {
          nest(depth + 1);
        }
      };
      Thread other(world, "other", [&] {
        std::lock_guard<RecursiveMutex> held(mutex);
        other_inside = true;
        world.yield();
        other_inside = false;
      });
      nest(1);
      other.join();
      EXPECT_EQ(depth_seen, 3);
      ASSERT_TRUE(timed.try_lock_for(1ms));
      ASSERT_TRUE(timed.try_lock());
      Thread blocked(world, "blocked", [&] { EXPECT_FALSE(timed.try_lock_for(5ms)); });
      blocked.join();
      timed.unlock();
      timed.unlock();
      Thread free(world, "free", [&] {
        EXPECT_TRUE(timed.try_lock_until(world_now(world) + 5ms));
        timed.unlock();
      });
      free.join();
    });
    ASSERT_TRUE(run.ok()) << "seed " << seed << ": " << run.summary();
  }
}

TEST(SimSharedMutexTimed, TimedTriesGiveUpAndAWriterThatGivesUpLetsReadersIn) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    SharedTimedMutex shared(world, "table");
    const Instant start = world.now();
    shared.lock_shared();
    bool reader_in = false;
    Thread writer(world, "writer", [&] { EXPECT_FALSE(shared.try_lock_for(10ms)); });
    world.sleep_for(milliseconds(1));
    // The writer waits: a new reader is held back behind it, until it gives up.
    Thread reader(world, "reader", [&] {
      EXPECT_TRUE(shared.try_lock_shared_for(100ms));
      reader_in = true;
      EXPECT_EQ(world.now(), start + milliseconds(10));  // when the writer, waiting since 0, gave up
      shared.unlock_shared();
    });
    writer.join();
    reader.join();
    EXPECT_TRUE(reader_in);
    shared.unlock_shared();
    EXPECT_TRUE(shared.try_lock_until(world_now(world) + 1ms));
    Thread late(world, "late", [&] { EXPECT_FALSE(shared.try_lock_shared_until(world_now(world) + 3ms)); });
    late.join();
    shared.unlock();
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

// A handoff through ConditionVariableAny under a shared_lock and a
// unique_lock<TimedMutex>, over seeds and strategies.
TEST(SimConditionVariableAny, WaitsUnderAnyLockOverSeeds) {
  for (const StrategySpec& strategy : {StrategySpec{}, pct3()}) {
    for (std::uint64_t seed = 1; seed <= 30; ++seed) {
      const RunResult run = simulate(seeded(seed, strategy), [](SimWorld& world) {
        SharedMutex table(world, "table");
        TimedMutex timed(world, "timed");
        ConditionVariableAny changed(world, "changed");
        int version = 0;  // written under table (exclusive), read under it shared
        int stage = 0;    // under timed
        Thread reader(world, "reader", [&] {
          std::shared_lock<SharedMutex> held(table);
          changed.wait(held, [&] { return version == 2; });
        });
        Thread stager(world, "stager", [&] {
          std::unique_lock<TimedMutex> held(timed);
          EXPECT_TRUE(changed.wait_for(held, 1h, [&] { return stage == 1; }));
          stage = 2;
        });
        for (int v = 1; v <= 2; ++v) {
          {
            std::lock_guard<SharedMutex> held(table);
            version = v;
          }
          changed.notify_all();
        }
        {
          std::lock_guard<TimedMutex> held(timed);
          stage = 1;
        }
        changed.notify_all();
        reader.join();
        stager.join();
        EXPECT_EQ(stage, 2);
      });
      ASSERT_TRUE(run.ok()) << strategy.to_string() << " seed " << seed << ": " << run.summary();
    }
  }
}

TEST(SimConditionVariableAny, TimesOutWithTheLockHeldAgain) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    TimedMutex timed(world, "timed");
    ConditionVariableAny never(world, "never");
    std::unique_lock<TimedMutex> held(timed);
    const Instant start = world.now();
    EXPECT_EQ(never.wait_for(held, 10ms), std::cv_status::timeout);
    EXPECT_EQ(world.now(), start + milliseconds(10));
    EXPECT_TRUE(held.owns_lock());
    Thread other(world, "other", [&] { EXPECT_FALSE(timed.try_lock()); });
    other.join();
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(SimThreadIds, JoinTwiceThrowsInvalidArgumentAndIdsMatchThisTask) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Thread::id inside;
    Thread child(world, "child", [&] { inside = this_task::get_id(world); });
    const Thread::id id = child.get_id();
    EXPECT_NE(id, Thread::id());
    EXPECT_NE(id, this_task::get_id(world));
    child.join();
    EXPECT_EQ(inside, id);
    EXPECT_EQ(child.get_id(), Thread::id());
    try {
      child.join();
      ADD_FAILURE() << "a second join returned";
    } catch (const std::system_error& error) {
      EXPECT_EQ(error.code(), std::errc::invalid_argument);
    }
    try {
      child.detach();
      ADD_FAILURE() << "a detach of a joined thread returned";
    } catch (const std::system_error& error) {
      EXPECT_EQ(error.code(), std::errc::invalid_argument);
    }
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(SimAsync, GetReturnsTheResultOrThrowsTheExceptionAndJoinsTheTask) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Future<int> square = async(world, "square", [](int x) { return x * x; }, 7);
    Future<void> fails = async(world, "fails", [] { throw std::runtime_error("no luck"); });
    EXPECT_EQ(square.get(), 49);
    EXPECT_FALSE(square.valid());
    try {
      fails.get();
      ADD_FAILURE() << "get() of a task that threw returned";
    } catch (const std::runtime_error& error) {
      EXPECT_STREQ(error.what(), "no luck");
    }
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(SimAsync, AFutureDestroyedUnreadWaitsForItsTaskAsTheStandardOnesDoes) {
  const RunResult run = simulate(seeded(2), [](SimWorld& world) {
    bool done = false;
    {
      Future<void> unread = async(world, "slow", [&] {
        world.sleep_for(milliseconds(10));
        done = true;
      });
    }
    EXPECT_TRUE(done);
    EXPECT_EQ(world.now(), Instant::zero() + milliseconds(10));
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(SimAsync, AFutureLeftWaitingForATaskThatNeverEndsIsADeadlockNamingItsJoin) {
  const RunResult run = simulate(seeded(3), [](SimWorld& world) {
    Mutex mutex(world, "never");
    ConditionVariable never(world, "never");
    Future<void> stuck = async(world, "stuck", [&] {
      std::unique_lock<Mutex> held(mutex);
      never.wait(held);
    });
  });
  ASSERT_EQ(run.outcome, Outcome::deadlock) << run.summary();
  EXPECT_PRED2(has_text, run.message, "join 'stuck'");
  EXPECT_PRED2(has_text, run.message, "condition 'never'");
}

// Two async tasks bump a counter with a read, a scheduling point and a
// write: the lost update is found by seeds and by the bounded search, as
// for Threads.
void two_async_bumps(SimWorld& world) {
  auto counter = std::make_shared<int>(0);
  auto bump = [&world, counter] {
    const int seen = *counter;
    world.yield();
    *counter = seen + 1;
  };
  Future<void> a = async(world, "a", bump);
  Future<void> b = async(world, "b", bump);
  a.get();
  b.get();
  if (*counter != 2) {
    world.fail(SEEDPOOL_INVARIANT("no-lost-update"), "an update was lost");
  }
}

TEST(SimAsync, ALostUpdateBetweenTwoAsyncTasksIsFoundBySeedsAndByTheSearch) {
  int lost = 0;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    lost += simulate(seeded(seed), two_async_bumps).ok() ? 0 : 1;
  }
  EXPECT_GT(lost, 0);
  ExploreSpec spec;
  spec.strategy = parse_strategy("dfs:preemptions=1").value();
  const ExploreReport search = explore_program(SimConfig{}, two_async_bumps, spec);
  ASSERT_TRUE(search.failure.has_value()) << search.describe();
  EXPECT_PRED2(has_text, search.failure->message, "an update was lost");
}

TEST(SimSharedFuture, EveryCopyGetsTheSameValueOrExceptionAsOftenAsAsked) {
  const RunResult run = simulate(seeded(4), [](SimWorld& world) {
    Promise<std::string> promise(world, "word");
    SharedFuture<std::string> word = promise.get_future().share();
    SharedFuture<void> failed = async(world, "fails", [] { throw std::logic_error("bad"); }).share();
    std::vector<std::string> seen(2);
    std::vector<Thread> readers;
    for (std::size_t i = 0; i < 2; ++i) {
      readers.emplace_back(world, "reader", [word, &seen, i] { seen[i] = word.get(); });
    }
    promise.set_value("hello");
    for (Thread& reader : readers) {
      reader.join();
    }
    EXPECT_EQ(seen, (std::vector<std::string>{"hello", "hello"}));
    EXPECT_EQ(&word.get(), &word.get()) << "one stored value, by reference";
    EXPECT_TRUE(word.valid());
    for (int i = 0; i < 2; ++i) {
      EXPECT_THROW(failed.get(), std::logic_error);
    }
    SharedFuture<void> none;
    EXPECT_FALSE(none.valid());
    EXPECT_THROW(none.wait(), std::future_error);
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

}  // namespace
}  // namespace seedpool::sim
