// Tests of the coordination primitives of <seedpool/core/sync.hpp> on the
// simulated World: CountingSemaphore, SharedMutex, Barrier and call_once
// keep their promises over many seeds and both strategies, a planted bug in
// a program using them is found and replays, misuse fails the run naming the
// object, a reader taking the lock again behind a waiting writer is a
// reported deadlock, timed waits are virtual, and a bounded systematic
// search exhausts the program and finds the bug. A promise nobody sets is a
// deadlock naming it; its misuse throws the standard library's errors.

#include "support/sim_config.hpp"
#include "support/ported_coordination.hpp"

#include <seedpool/core/sync.hpp>
#include <seedpool/sim/explore.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <shared_mutex>
#include <string>
#include <vector>

namespace seedpool::sim {
namespace {

using namespace seedpool::test;

TEST(SimCoordination, ThePortedProgramPassesEverySeed) {
  for (const char* strategy : {"random", "pct:3:300"}) {
    for (std::uint64_t seed = 1; seed <= 300; ++seed) {
      const RunResult run =
          simulate(seeded(seed, strategy), [](SimWorld& world) { seedpool::test::run_ported_coordination(world); });
      ASSERT_TRUE(run.ok()) << strategy << " seed " << seed << ": " << run.summary();
    }
  }
}

// One slot too many: some seed lets three workers into a section meant for
// two, and that seed replays to the same failure.
TEST(SimCoordination, ASemaphoreGrantingOneSlotTooManyIsFoundAndReplays) {
  const auto planted = [](SimWorld& world) { seedpool::test::run_ported_coordination(world, 3); };
  for (std::uint64_t seed = 1; seed <= 2000; ++seed) {
    const RunResult run = simulate(seeded(seed), planted);
    if (run.ok()) {
      continue;
    }
    ASSERT_EQ(run.outcome, Outcome::assertion) << run.summary();
    EXPECT_PRED2(has_text, run.message, "more workers in the section than slots");
    const RunResult again = simulate(seeded(seed), planted);
    EXPECT_EQ(again.trace_hash, run.trace_hash);
    EXPECT_EQ(again.message, run.message);
    return;
  }
  FAIL() << "no seed of 2000 let a third worker into the section";
}

// Systematic search over the same program: within one preemption the fixed
// program has no failing schedule left unexplored, and the planted bug is
// found, its schedule replaying.
TEST(SimCoordination, BoundedSearchExhaustsTheProgramAndFindsThePlantedBug) {
  ExploreSpec spec;
  spec.strategy = parse_strategy("dfs:preemptions=1").value();
  const ExploreReport fixed =
      explore_program(SimConfig{}, [](SimWorld& world) { seedpool::test::run_ported_coordination(world); }, spec);
  EXPECT_TRUE(fixed.ok() && fixed.exhausted) << fixed.describe();
  const ExploreReport planted =
      explore_program(SimConfig{}, [](SimWorld& world) { seedpool::test::run_ported_coordination(world, 3); }, spec);
  ASSERT_FALSE(planted.ok()) << planted.describe();
  EXPECT_PRED2(has_text, planted.failure->message, "more workers in the section than slots");
}

TEST(SimSemaphore, ReleaseWakesAWaiterAndTimedAcquireWaitsVirtualTime) {
  using namespace std::chrono_literals;
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    CountingSemaphore<> items(world, "items", 0);
    std::vector<int> taken;
    Thread consumer(world, "consumer", [&] {
      for (int i = 0; i < 3; ++i) {
        items.acquire();
        taken.push_back(i);
      }
    });
    world.sleep_for(milliseconds(5));
    EXPECT_TRUE(taken.empty());
    items.release(3);
    consumer.join();
    EXPECT_EQ(taken.size(), 3U);
    const Instant start = world.now();
    EXPECT_FALSE(items.try_acquire());
    EXPECT_FALSE(items.try_acquire_for(20ms));
    EXPECT_EQ(world.now(), start + milliseconds(20));
    Thread late(world, "late", [&] {
      world.sleep_for(milliseconds(3));
      items.release();
    });
    EXPECT_TRUE(items.try_acquire_until(world.now() + milliseconds(50)));
    EXPECT_EQ(world.now(), start + milliseconds(23));
    late.join();
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(SimSemaphore, ReleasingPastMaxFailsTheRun) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    BinarySemaphore flag(world, "flag", 1);
    flag.release();
  });
  EXPECT_EQ(run.outcome, Outcome::assertion) << run.summary();
  EXPECT_PRED2(has_text, run.message, "CountingSemaphore::release past max()");
}

TEST(SimSharedMutex, ReadersShareAndAWaitingWriterKeepsNewReadersOut) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    SharedMutex lock(world, "config");
    std::vector<std::string> order;
    std::shared_lock<SharedMutex> first(lock);
    EXPECT_TRUE(lock.try_lock_shared()) << "readers share";
    lock.unlock_shared();
    EXPECT_FALSE(lock.try_lock()) << "a writer waits for readers";
    Thread writer(world, "writer", [&] {
      std::lock_guard<SharedMutex> write(lock);
      order.push_back("writer");
    });
    world.sleep_for(milliseconds(1));  // the writer now waits
    EXPECT_FALSE(lock.try_lock_shared()) << "a waiting writer keeps new readers out";
    Thread reader(world, "reader", [&] {
      std::shared_lock<SharedMutex> read(lock);
      order.push_back("reader");
    });
    world.sleep_for(milliseconds(1));
    EXPECT_TRUE(order.empty());
    first.unlock();
    writer.join();
    reader.join();
    EXPECT_EQ(order, (std::vector<std::string>{"writer", "reader"}));
    EXPECT_TRUE(lock.try_lock());
    lock.unlock();
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(SimSharedMutex, UnlockingInAModeNobodyHoldsFailsTheRun) {
  for (const bool shared : {false, true}) {
    const RunResult run = simulate(seeded(1), [shared](SimWorld& world) {
      SharedMutex lock(world, "table");
      if (shared) {
        lock.lock();
        lock.unlock_shared();
      } else {
        lock.lock_shared();
        lock.unlock();
      }
    });
    EXPECT_EQ(run.outcome, Outcome::assertion) << run.summary();
    EXPECT_PRED2(has_text, run.message,
                 shared ? "SharedMutex 'table' unlock_shared while no reader holds it"
                        : "SharedMutex 'table' unlocked while no writer holds it");
  }
}

// A reader takes the lock again while a writer waits for it: undefined in
// the standard library, a deadlock on writer-preferring locks, and here a
// deadlock report naming both waits.
TEST(SimSharedMutex, AReaderLockingAgainBehindAWaitingWriterIsAReportedDeadlock) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    SharedMutex lock(world, "cache");
    Thread reader(world, "reader", [&] {
      std::shared_lock<SharedMutex> outer(lock);
      world.sleep_for(milliseconds(2));
      std::shared_lock<SharedMutex> inner(lock);
    });
    Thread writer(world, "writer", [&] {
      world.sleep_for(milliseconds(1));
      std::lock_guard<SharedMutex> write(lock);
    });
    reader.join();
    writer.join();
  });
  ASSERT_EQ(run.outcome, Outcome::deadlock) << run.summary();
  EXPECT_PRED2(has_text, run.message, "cache (readers)");
  EXPECT_PRED2(has_text, run.message, "cache (writer)");
}

TEST(SimBarrier, PhasesEndWithTheCompletionAndDroppedArrivalsLeaveLaterPhases) {
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    const RunResult run = simulate(seeded(seed), [](SimWorld& world) {
      std::vector<int> completions;  // arrivals seen by the completion, per phase
      int arrived = 0;
      Barrier<std::function<void()>> meet(world, "meet", 3, [&] {
        completions.push_back(arrived);
        arrived = 0;
      });
      Thread leaver(world, "leaver", [&] {
        ++arrived;
        meet.arrive_and_drop();  // in phase 0 only
      });
      Thread stayer(world, "stayer", [&] {
        for (int phase = 0; phase < 3; ++phase) {
          ++arrived;
          Barrier<std::function<void()>>::ArrivalToken token = meet.arrive();
          meet.wait(std::move(token));
          EXPECT_EQ(completions.size(), static_cast<std::size_t>(phase + 1));
        }
      });
      for (int phase = 0; phase < 3; ++phase) {
        ++arrived;
        meet.arrive_and_wait();
      }
      leaver.join();
      stayer.join();
      EXPECT_EQ(completions, (std::vector<int>{3, 2, 2}));
    });
    ASSERT_TRUE(run.ok()) << "seed " << seed << ": " << run.summary();
  }
}

TEST(SimBarrier, ArrivingMoreTimesThanThePhaseWaitsForFailsTheRun) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Barrier<> meet(world, "meet", 2);
    (void)meet.arrive(3);
  });
  EXPECT_EQ(run.outcome, Outcome::assertion) << run.summary();
  EXPECT_PRED2(has_text, run.message, "Barrier::arrive more times than the phase waits for");
}

// A setup that throws lets the next call_once run it; one that returns ends
// the flag's work for every later caller.
TEST(SimCallOnce, AThrowingCallLetsTheNextOneRunAndASuccessfulOneIsFinal) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    OnceFlag flag(world, "init");
    int attempts = 0;
    EXPECT_THROW(call_once(flag, [&] {
      ++attempts;
      throw std::runtime_error("not yet");
    }), std::runtime_error);
    call_once(flag, [&] { ++attempts; });
    call_once(flag, [&] { ++attempts; });
    EXPECT_EQ(attempts, 2);
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(SimPromise, AFutureNobodySetsIsADeadlockNamingItsPromise) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Promise<int> answer(world, "answer");
    Future<int> later = answer.get_future();
    Thread forgetful(world, "forgetful", [] {});
    static_cast<void>(later.get());
    forgetful.join();
  });
  ASSERT_EQ(run.outcome, Outcome::deadlock) << run.summary();
  EXPECT_TRUE(has_text(run.message, "wait on condition 'answer'")) << run.message;
}

TEST(SimPromise, MisuseThrowsTheStandardErrorsAndATimedWaitIsVirtual) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Promise<void> done(world, "done");
    Future<void> waited = done.get_future();
    const auto code_of = [](const std::function<void()>& f) {
      try {
        f();
      } catch (const std::future_error& error) {
        return error.code();
      }
      return std::error_code();
    };
    EXPECT_EQ(code_of([&] { static_cast<void>(done.get_future()); }),
              std::make_error_code(std::future_errc::future_already_retrieved));
    const Instant start = world.now();
    EXPECT_EQ(waited.wait_for(std::chrono::milliseconds(5)), std::future_status::timeout);
    EXPECT_EQ(world.now() - start, milliseconds(5));
    done.set_value();
    EXPECT_EQ(code_of([&] { done.set_value(); }), std::make_error_code(std::future_errc::promise_already_satisfied));
    EXPECT_EQ(waited.wait_for(std::chrono::milliseconds(5)), std::future_status::ready);
    waited.get();
    EXPECT_EQ(code_of([&] { waited.wait(); }), std::make_error_code(std::future_errc::no_state));
    Promise<void> moved = std::move(done);
    EXPECT_EQ(code_of([&] { done.set_value(); }),  // NOLINT(bugprone-use-after-move): the moved-from state is the test
              std::make_error_code(std::future_errc::no_state));
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

}  // namespace
}  // namespace seedpool::sim
