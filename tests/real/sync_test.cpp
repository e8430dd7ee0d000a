// The primitives for code written as threads (<seedpool/core/sync.hpp>) on
// RealWorld: mutual exclusion and atomics under real contention, notify_one,
// join, latch, semaphores, a reader-writer lock and a barrier, exit, and
// misuse as a failed assertion that names the task.

#include "real_test_support.hpp"
#include "support/guide_inbox.hpp"
#include "support/ported_coordination.hpp"
#include "support/ported_idioms.hpp"

#include <seedpool/core/sync.hpp>
#include <seedpool/real/real_world.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace seedpool::real {
namespace {

using testing::hang_guard;

constexpr int threads_count = 8;

TEST(RealSync, MutexKeepsAPlainCounterExactUnderContention) {
  RealWorld world;
  Mutex mutex(world, "counter");
  std::int64_t total = 0;
  constexpr int rounds = 20'000;
  std::vector<Thread> threads;
  for (int t = 0; t < threads_count; ++t) {
    threads.emplace_back(world, "adder-" + std::to_string(t), [&] {
      for (int r = 0; r < rounds; ++r) {
        std::lock_guard<Mutex> held(mutex);
        ++total;
      }
    });
  }
  for (Thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(total, std::int64_t{threads_count} * rounds);
}

TEST(RealSync, AtomicFetchAddLosesNoUpdateAndCompareExchangeSeesTheValue) {
  RealWorld world;
  Atomic<std::int64_t> counter(world, 0);
  constexpr int rounds = 50'000;
  std::vector<Thread> threads;
  for (int t = 0; t < threads_count; ++t) {
    threads.emplace_back(world, "atomic-" + std::to_string(t), [&] {
      for (int r = 0; r < rounds; ++r) {
        counter.fetch_add(1);
      }
    });
  }
  for (Thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(counter.load(), std::int64_t{threads_count} * rounds);
  std::int64_t expected = 0;
  EXPECT_FALSE(counter.compare_exchange_strong(expected, 1));
  EXPECT_EQ(expected, std::int64_t{threads_count} * rounds);
}

TEST(RealSync, NotifyOneLetsOneWaiterThroughAndNotifyAllTheRest) {
  RealWorld world;
  Mutex mutex(world, "m");
  ConditionVariable bell(world, "bell");
  int tickets = 0;
  int waiting = 0;
  int through = 0;
  std::vector<Thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back(world, "waiter-" + std::to_string(i), [&] {
      std::unique_lock<Mutex> held(mutex);
      ++waiting;
      bell.notify_all();  // tells the test this waiter is in
      bell.wait(held, [&] { return tickets > 0; });
      --tickets;
      ++through;
      bell.notify_all();
    });
  }
  const Instant deadline = world.now() + hang_guard;
  std::unique_lock<Mutex> held(mutex);
  ASSERT_TRUE(bell.wait_until(held, deadline, [&] { return waiting == 3; }));
  tickets = 1;
  bell.notify_one();
  ASSERT_TRUE(bell.wait_until(held, deadline, [&] { return through == 1; }));
  // The other two hold no ticket: whatever wakes them, they wait again.
  EXPECT_FALSE(bell.wait_for(held, milliseconds(20), [&] { return through > 1; }));
  tickets = 2;
  bell.notify_all();
  ASSERT_TRUE(bell.wait_until(held, deadline, [&] { return through == 3; }));
  held.unlock();
  for (Thread& waiter : waiters) {
    waiter.join();
  }
}

TEST(RealSync, WaitUntilTimesOutWithTheMutexHeld) {
  RealWorld world;
  Mutex mutex(world, "m");
  ConditionVariable never(world, "never");
  std::unique_lock<Mutex> held(mutex);
  const Instant deadline = world.now() + milliseconds(10);
  EXPECT_EQ(never.wait_until(held, deadline), CvStatus::timeout);
  EXPECT_GE(world.now(), deadline);
  EXPECT_TRUE(held.owns_lock());
  bool other_got_it = true;
  Thread other(world, "other", [&] { other_got_it = mutex.try_lock(); });
  other.join();
  EXPECT_FALSE(other_got_it) << "the waiter holds the mutex again";
}

TEST(RealSync, TryLockFailsWhileAnotherThreadHoldsTheMutex) {
  RealWorld world;
  Mutex mutex(world, "m");
  std::lock_guard<Mutex> held(mutex);
  bool other_got_it = true;
  Thread other(world, "other", [&] { other_got_it = mutex.try_lock(); });
  other.join();
  EXPECT_FALSE(other_got_it);
}

TEST(RealSync, JoinReturnsOnceTheBodyHasReturned) {
  RealWorld world;
  Atomic<bool> done(world, false);
  Thread sleeper(world, "sleeper", [&] {
    world.sleep_for(milliseconds(20));
    done.store(true);
  });
  EXPECT_TRUE(sleeper.joinable());
  sleeper.join();
  EXPECT_TRUE(done.load());
  EXPECT_FALSE(sleeper.joinable());
}

TEST(RealSync, LatchReleasesWaitersWhenTheCountReachesZero) {
  RealWorld world;
  Latch start(world, "start", threads_count);
  Latch done(world, "done", threads_count);
  Atomic<int> passed(world, 0);
  std::vector<Thread> threads;
  for (int t = 0; t < threads_count; ++t) {
    threads.emplace_back(world, "latch-" + std::to_string(t), [&] {
      start.arrive_and_wait();
      passed.fetch_add(1);
      done.count_down();
    });
  }
  done.wait();
  EXPECT_TRUE(done.try_wait());
  EXPECT_EQ(passed.load(), threads_count);
  for (Thread& thread : threads) {
    thread.join();
  }
}

TEST(RealSync, ExitTurnsStoppingTrueAndReturns) {
  RealWorld world;
  Atomic<bool> ticker_returned(world, false);
  world.spawn("ticker", [&] {
    while (!world.stopping()) {
      world.sleep_for(milliseconds(1));
    }
    ticker_returned.store(true);
  });
  EXPECT_FALSE(world.stopping());
  world.exit();
  EXPECT_TRUE(world.stopping());
  const Instant deadline = world.now() + hang_guard;
  while (!ticker_returned.load() && world.now() < deadline) {
    world.sleep_for(milliseconds(1));
  }
  EXPECT_TRUE(ticker_returned.load());
}

TEST(RealSyncDeathTest, UnlockingAMutexAnotherTaskHoldsNamesTheTaskAndTheMutex) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        RealWorld world;
        Mutex mutex(world, "table");
        mutex.lock();
        Thread thief(world, "thief", [&] { mutex.unlock(); });
        thief.join();
      },
      "task 'thief' unlocks mutex 'table', which it does not hold");
}

TEST(RealSyncDeathTest, LockingAMutexOneHoldsIsAFailureNotAHang) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        RealWorld world;
        Thread twice(world, "twice", [&world] {
          Mutex mutex(world, "table");
          std::lock_guard<Mutex> outer(mutex);
          std::lock_guard<Mutex> inner(mutex);
        });
        twice.join();
      },
      "task 'twice' locks mutex 'table', which it already holds");
}

TEST(RealSyncDeathTest, DestroyingAJoinableThreadIsAFailure) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        RealWorld world;
        Thread forgotten(world, "forgotten", [] {});
      },
      "Thread 'forgotten' destroyed while joinable");
}

TEST(RealSyncGuide, ThePortedProgramOfTheGuideRunsOnThreads) {
  for (int i = 0; i < 50; ++i) {
    RealWorld world;
    seedpool::test::run_inbox(world);
  }
}

TEST(RealSyncPorting, TheStandardLibrarysIdiomsRunOnThreads) {
  for (int i = 0; i < 50; ++i) {
    RealWorld world;
    seedpool::test::run_ported_idioms(world);
  }
}

TEST(RealSyncPorting, SemaphoresASharedMutexAndABarrierRunOnThreads) {
  for (int i = 0; i < 50; ++i) {
    RealWorld world;
    seedpool::test::run_ported_coordination(world);
  }
}

}  // namespace
}  // namespace seedpool::real
