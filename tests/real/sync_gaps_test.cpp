// The parts of <seedpool/core/sync.hpp> that close the gaps an outside port
// of std thread code met, on RealWorld's threads: std::cv_status, deadlines
// as the standard library's clocks' time points, TimedMutex, the recursive
// mutexes, SharedMutex's timed tries, ConditionVariableAny, this_task, and
// Thread's std::system_error on a bad join. Deadlines are hang guards or
// lower bounds only; no test asserts that anything was quick.

#include <seedpool/core/sync.hpp>
#include <seedpool/real/real_world.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace seedpool::real {
namespace {

using namespace std::chrono_literals;

constexpr int threads_count = 8;

TEST(RealSyncGaps, TimedWaitsReturnCvStatusAndTakeTheStandardClocksTimePoints) {
  RealWorld world;
  Mutex mutex(world, "m");
  ConditionVariable never(world, "never");
  std::unique_lock<Mutex> held(mutex);
  const auto before = std::chrono::steady_clock::now();
  EXPECT_TRUE(never.wait_for(held, 5ms) == std::cv_status::timeout);
  EXPECT_EQ(never.wait_until(held, std::chrono::steady_clock::now() + 5ms), std::cv_status::timeout);
  EXPECT_FALSE(never.wait_until(held, std::chrono::system_clock::now() + 5ms, [] { return false; }));
  EXPECT_EQ(never.wait_until(held, world_now(world) + 5ms), std::cv_status::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - before, 20ms);
  EXPECT_TRUE(held.owns_lock());
  // A time point already past times out at once.
  EXPECT_EQ(never.wait_until(held, std::chrono::steady_clock::now() - 1h), std::cv_status::timeout);
  held.unlock();

  CountingSemaphore<> none(world, "none", 0);
  EXPECT_FALSE(none.try_acquire_until(std::chrono::steady_clock::now() + 2ms));
  Promise<void> promise(world, "promise");
  Future<void> future = promise.get_future();
  EXPECT_EQ(future.wait_until(std::chrono::steady_clock::now() + 2ms), std::future_status::timeout);
  promise.set_value();
  EXPECT_EQ(future.wait_until(std::chrono::system_clock::now() + 1h), std::future_status::ready);

  const auto slept = std::chrono::steady_clock::now();
  this_task::sleep_for(world, 3ms);
  this_task::sleep_until(world, std::chrono::steady_clock::now() + 2ms);
  EXPECT_GE(std::chrono::steady_clock::now() - slept, 5ms);
}

TEST(RealSyncGaps, TimedMutexTriesGiveUpWhileHeldAndKeepACounterExact) {
  RealWorld world;
  TimedMutex mutex(world, "timed");
  {
    std::lock_guard<TimedMutex> held(mutex);
    Thread other(world, "other", [&] {
      std::unique_lock<TimedMutex> tried(mutex, 5ms);
      EXPECT_FALSE(tried.owns_lock());
      EXPECT_FALSE(mutex.try_lock_until(std::chrono::steady_clock::now() + 2ms));
    });
    other.join();
  }
  std::int64_t total = 0;
  constexpr int rounds = 2'000;
  std::vector<Thread> threads;
  for (int t = 0; t < threads_count; ++t) {
    threads.emplace_back(world, "adder-" + std::to_string(t), [&, t] {
      for (int r = 0; r < rounds;) {
        if (t % 2 == 0) {
          std::lock_guard<TimedMutex> held(mutex);
          ++total;
          ++r;
        } else if (mutex.try_lock_for(1ms)) {
          ++total;
          ++r;
          mutex.unlock();
        }
      }
    });
  }
  for (Thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(total, std::int64_t{threads_count} * rounds);
}

TEST(RealSyncGaps, RecursiveMutexesNestAndKeepACounterExact) {
  RealWorld world;
  RecursiveMutex mutex(world, "recursive");
  RecursiveTimedMutex timed(world, "recursive timed");
  std::int64_t total = 0;
  constexpr int rounds = 2'000;
  std::vector<Thread> threads;
  for (int t = 0; t < threads_count; ++t) {
    threads.emplace_back(world, "nester-" + std::to_string(t), [&] {
      for (int r = 0; r < rounds; ++r) {
        std::lock_guard<RecursiveMutex> outer(mutex);
        std::lock_guard<RecursiveMutex> inner(mutex);
        ASSERT_TRUE(timed.try_lock_for(1h));
        ASSERT_TRUE(timed.try_lock());
        ++total;
        timed.unlock();
        timed.unlock();
      }
    });
  }
  for (Thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(total, std::int64_t{threads_count} * rounds);
}

TEST(RealSyncGaps, SharedMutexTimedTriesGiveUpAndAWriterThatGivesUpLetsReadersIn) {
  RealWorld world;
  SharedTimedMutex shared(world, "table");
  shared.lock_shared();
  Thread writer(world, "writer", [&] { EXPECT_FALSE(shared.try_lock_for(20ms)); });
  Thread reader(world, "reader", [&] {
    // Behind the waiting writer, or in before it: either way it gets in.
    ASSERT_TRUE(shared.try_lock_shared_for(1h));
    shared.unlock_shared();
  });
  writer.join();
  reader.join();
  shared.unlock_shared();
  ASSERT_TRUE(shared.try_lock_until(std::chrono::steady_clock::now() + 1h));
  Thread late(world, "late", [&] { EXPECT_FALSE(shared.try_lock_shared_for(2ms)); });
  late.join();
  shared.unlock();
}

TEST(RealSyncGaps, ConditionVariableAnyWaitsUnderASharedLockAndATimedMutex) {
  RealWorld world;
  SharedMutex table(world, "table");
  TimedMutex timed(world, "timed");
  ConditionVariableAny changed(world, "changed");
  int version = 0;
  int stage = 0;
  std::vector<Thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back(world, "reader-" + std::to_string(t), [&] {
      std::shared_lock<SharedMutex> held(table);
      EXPECT_TRUE(changed.wait_for(held, 1h, [&] { return version == 100; }));
    });
  }
  Thread stager(world, "stager", [&] {
    std::unique_lock<TimedMutex> held(timed);
    changed.wait(held, [&] { return stage == 1; });
    stage = 2;
  });
  for (int v = 1; v <= 100; ++v) {
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
  changed.notify_one();  // the stager is its only waiter by now, or not yet waiting
  for (Thread& reader : readers) {
    reader.join();
  }
  stager.join();
  EXPECT_EQ(stage, 2);
  std::unique_lock<TimedMutex> held(timed);
  EXPECT_EQ(changed.wait_until(held, std::chrono::steady_clock::now() + 2ms), std::cv_status::timeout);
  EXPECT_TRUE(held.owns_lock());
}

TEST(RealSyncGaps, JoinErrorsAreTheStandardLibrarysAndIdsMatchThisTask) {
  RealWorld world;
  std::vector<Thread::id> inside(4);
  std::vector<Thread> threads;
  for (std::size_t t = 0; t < 4; ++t) {
    threads.emplace_back(world, "id-" + std::to_string(t), [&, t] { inside[t] = this_task::get_id(world); });
  }
  std::set<Thread::id> ids;
  for (std::size_t t = 0; t < 4; ++t) {
    const Thread::id id = threads[t].get_id();
    ids.insert(id);
    threads[t].join();
    EXPECT_EQ(inside[t], id);
    EXPECT_EQ(threads[t].get_id(), Thread::id());
  }
  EXPECT_EQ(ids.size(), 4U);
  EXPECT_EQ(ids.count(this_task::get_id(world)), 0U);
  try {
    threads[0].join();
    ADD_FAILURE() << "a second join returned";
  } catch (const std::system_error& error) {
    EXPECT_EQ(error.code(), std::errc::invalid_argument);
  }

  Thread* self = nullptr;
  Latch assigned(world, "assigned", 1);
  std::error_code code;
  Thread narcissus(world, "narcissus", [&] {
    assigned.wait();
    try {
      self->join();
    } catch (const std::system_error& error) {
      code = error.code();
    }
  });
  self = &narcissus;
  assigned.count_down();
  narcissus.join();
  EXPECT_EQ(code, std::errc::resource_deadlock_would_occur);
}

TEST(RealAsync, ResultsExceptionsAndAnUnreadFutureThatWaitsForItsThread) {
  RealWorld world;
  std::vector<Future<int>> squares;
  for (int i = 0; i < threads_count; ++i) {
    squares.push_back(async(world, "square", [](int x) { return x * x; }, i));
  }
  for (int i = 0; i < threads_count; ++i) {
    EXPECT_EQ(squares[static_cast<std::size_t>(i)].get(), i * i);
  }
  EXPECT_THROW(async(world, "fails", [] { throw std::runtime_error("no luck"); }).get(), std::runtime_error);
  std::atomic<bool> done{false};
  const auto before = std::chrono::steady_clock::now();
  {
    Future<void> unread = async(world, "slow", [&done] {
      std::this_thread::sleep_for(20ms);
      done = true;
    });
  }
  EXPECT_TRUE(done.load());
  EXPECT_GE(std::chrono::steady_clock::now() - before, 20ms);
}

TEST(RealSharedFuture, EveryThreadGetsTheOneValue) {
  RealWorld world;
  Promise<std::string> promise(world, "word");
  const SharedFuture<std::string> word = promise.get_future().share();
  std::vector<const std::string*> seen(threads_count, nullptr);
  std::vector<Thread> readers;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    readers.emplace_back(world, "reader", [word, &seen, i] { seen[i] = &word.get(); });
  }
  promise.set_value("hello");
  for (Thread& reader : readers) {
    reader.join();
  }
  for (const std::string* value : seen) {
    ASSERT_NE(value, nullptr);
    EXPECT_EQ(value, &word.get());
    EXPECT_EQ(*value, "hello");
  }
}

}  // namespace
}  // namespace seedpool::real
