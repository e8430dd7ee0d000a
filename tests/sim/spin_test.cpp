// Tasks that spin on atomics (SimWorld::atomic_accessed): a spin-wait
// costs no steps while its writer can run, under every strategy; one that
// waits for a time sees time advance; a bounded spin ends; two tasks that
// spin on each other fail the run as a livelock naming them; an access
// that writes the value already there counts as a read; a loop that does
// anything else is never parked; and all of it is deterministic. And
// C++20's Atomic::wait, which waits for a notify rather than spinning.

#include "support/sim_config.hpp"

#include <seedpool/core/sync.hpp>
#include <seedpool/sim/explore.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace seedpool::sim {
namespace {

using namespace seedpool::test;

// A waiter spins on a flag that a setter raises after `setter_steps` steps
// of its own work; with `yielding`, it calls World::yield() in each turn,
// as std::this_thread::yield() ports.
void flag_wait(SimWorld& world, int setter_steps, bool yielding = false) {
  Atomic<bool> flag(world, false);
  Atomic<int> work(world, 0);
  Thread waiter(world, "waiter", [&] {
    while (!flag.load()) {
      if (yielding) {
        world.yield();
      }
    }
  });
  Thread setter(world, "setter", [&] {
    for (int i = 0; i < setter_steps; ++i) {
      work.fetch_add(1);
    }
    flag.store(true);
  });
  waiter.join();
  setter.join();
}

TEST(SimSpin, ASpinWaitCostsNoStepsWhileItsWriterCanRunUnderEveryStrategy) {
  // PCT at depth 1 runs the task of highest priority whenever it can: a
  // waiter above the setter spun until the step budget before spins parked.
  for (const bool yielding : {false, true}) {
    for (const char* strategy : {"random", "pct:1:200", "pct:2:200", "pct:3:200"}) {
      for (std::uint64_t seed = 1; seed <= 200; ++seed) {
        const RunResult run =
            simulate(seeded(seed, strategy), [yielding](SimWorld& world) { flag_wait(world, 50, yielding); });
        ASSERT_EQ(run.outcome, Outcome::ok) << strategy << " seed " << seed << ": " << run.summary();
        // The setter's 51 operations, the waiter's few reads (and yields)
        // before each park, spawns and joins: far below the thousands a
        // spin would take.
        EXPECT_LT(run.steps, 600U) << strategy << " seed " << seed << (yielding ? " yielding" : "");
      }
    }
  }
  ExploreSpec spec;
  spec.strategy = parse_strategy("dfs:preemptions=2").value();
  const ExploreReport search = explore_program(SimConfig{}, [](SimWorld& world) { flag_wait(world, 3); }, spec);
  EXPECT_TRUE(search.exhausted) << search.describe();
}

TEST(SimSpin, ASpinThatWaitsForATimeSeesTimeAdvance) {
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    const RunResult run = simulate(seeded(seed, "pct:2:100"), [](SimWorld& world) {
      Atomic<bool> flag(world, false);
      Thread sleeper(world, "sleeper", [&] {
        world.sleep_for(milliseconds(10));
        flag.store(true);
      });
      while (!flag.load()) {
      }
      EXPECT_EQ(world.now(), Instant::zero() + milliseconds(10));
      sleeper.join();
    });
    ASSERT_EQ(run.outcome, Outcome::ok) << run.summary();
  }
}

TEST(SimSpin, ABoundedSpinThatNobodyEndsRunsOutAndGoesOn) {
  const RunResult run = simulate(seeded(1, "pct:2:100"), [](SimWorld& world) {
    Atomic<bool> flag(world, false);
    int turns = 0;
    while (!flag.load() && turns < 500) {
      ++turns;
    }
    EXPECT_EQ(turns, 500);
  });
  EXPECT_EQ(run.outcome, Outcome::ok) << run.summary();
}

TEST(SimSpin, TwoTasksSpinningOnEachOtherAreALivelockThatNamesThem) {
  SimConfig config = seeded(1, "random");
  config.spin_rounds_max = 100;
  const RunResult run = simulate(config, [](SimWorld& world) {
    Atomic<bool> a(world, false);
    Atomic<bool> b(world, false);
    Thread left(world, "left", [&] {
      while (!b.load()) {
      }
      a.store(true);
    });
    Thread right(world, "right", [&] {
      while (!a.load()) {
      }
      b.store(true);
    });
    left.join();
    right.join();
  });
  ASSERT_EQ(run.outcome, Outcome::deadlock) << run.summary();
  EXPECT_TRUE(has_text(run.message, "livelock: 2 task(s) spin on atomics that no task changes")) << run.message;
  EXPECT_TRUE(has_text(run.message, "task 'left'")) << run.message;
  EXPECT_TRUE(has_text(run.message, "task 'right'")) << run.message;
  EXPECT_TRUE(has_text(run.message, "waits: join 'left'")) << run.message;
  // Each round lets both spinners read twice more: a few hundred steps,
  // not the step budget.
  EXPECT_LT(run.steps, 100U * 10U) << run.summary();
}

// Two tasks take turns at a lock they acquire by spinning on
// Lock::try_take() and hold for 50 atomic steps: over 100 seeds of PCT at
// depth 1, the spinner above never starves the holder below.
template <class Lock>
void holders_take_turns() {
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    const RunResult run = simulate(seeded(seed, "pct:1:200"), [](SimWorld& world) {
      Lock lock(world);
      Atomic<int> work(world, 0);
      const auto hold = [&] {
        while (!lock.try_take()) {
        }
        for (int i = 0; i < 50; ++i) {
          work.fetch_add(1);
        }
        lock.give();
      };
      Thread a(world, "a", hold);
      Thread b(world, "b", hold);
      a.join();
      b.join();
      EXPECT_EQ(work.load(), 100);
    });
    ASSERT_EQ(run.outcome, Outcome::ok) << "seed " << seed << ": " << run.summary();
    EXPECT_LT(run.steps, 400U) << "seed " << seed;
  }
}

// A failed try_lock is a read of the mutex, and a release wakes its poller.
struct TryLockPolled {
  explicit TryLockPolled(World& world) : guard(world, "guard") {}
  bool try_take() { return guard.try_lock(); }
  void give() { guard.unlock(); }
  Mutex guard;
};

// exchange(true) on a held test-and-set lock writes the value already
// there: a read.
struct TestAndSet {
  explicit TestAndSet(World& world) : locked(world, false) {}
  bool try_take() { return !locked.exchange(true); }
  void give() { locked.store(false); }
  Atomic<bool> locked;
};

TEST(SimSpin, AFailedTryLockIsAReadAndAReleaseWakesItsPoller) { holders_take_turns<TryLockPolled>(); }

TEST(SimSpin, AWriteOfTheValueAlreadyThereIsARead) { holders_take_turns<TestAndSet>(); }

TEST(SimSpin, ALoopThatReleasesAMutexInEachTurnIsNeverParked) {
  // A poller that takes a mutex in every turn is not a spin on atomics (a
  // release is progress: what the mutex guards may have changed): it keeps
  // running as any task does, so PCT at depth 1 with the poller on top
  // runs it to the step budget rather than park it.
  SimConfig config = seeded(1, "pct:1:200");
  config.steps_max = 20'000;
  std::uint64_t failed = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    config.seed = seed;
    const RunResult run = simulate(config, [](SimWorld& world) {
      Mutex guard(world, "guard");
      Atomic<bool> flag(world, false);
      Thread poller(world, "poller", [&] {
        while (!flag.load()) {
          std::lock_guard<Mutex> held(guard);
        }
      });
      Thread setter(world, "setter", [&] { flag.store(true); });
      poller.join();
      setter.join();
    });
    failed += run.outcome == Outcome::step_budget ? 1 : 0;
  }
  EXPECT_GT(failed, 0U) << "the poller was parked in every seed";
}


// Double-checked publication watched by an observer: the initialiser reads
// the instance, takes the lock, reads it again (the re-check) and publishes
// it before marking it logged; the observer must not see it unlogged. The
// bug needs one preemption, between the initialiser's two stores. The
// re-check under the lock is not a spin, nor is a second look at an atomic
// on the way: were the initialiser parked there, no search could run the
// observer between its stores, and dfs would report the program exhausted.
void observed_publication(SimWorld& world, bool logged_first) {
  Mutex init(world, "init");
  Atomic<const int*> instance(world, nullptr);
  Atomic<bool> logged(world, false);
  static constexpr int value = 42;
  Thread initialiser(world, "initialiser", [&] {
    if (instance.load() == nullptr) {
      std::lock_guard<Mutex> held(init);
      if (instance.load() == nullptr) {
        if (logged_first) {
          logged.store(true);
        }
        instance.store(&value);
        logged.store(true);
      }
    }
  });
  Thread observer(world, "observer", [&] {
    if (instance.load() != nullptr) {
      SEEDPOOL_ASSERT_MSG(logged.load(), "the observer saw the instance before it was logged");
    }
  });
  initialiser.join();
  observer.join();
}

TEST(SimSpin, ARecheckUnderALockIsNotASpinAndTheSearchFindsTheBugAfterIt) {
  ExploreSpec spec;
  spec.strategy = parse_strategy("dfs:preemptions=1").value();
  const ExploreReport buggy =
      explore_program(SimConfig{}, [](SimWorld& world) { observed_publication(world, false); }, spec);
  ASSERT_TRUE(buggy.failure.has_value()) << buggy.describe();
  EXPECT_TRUE(has_text(buggy.failure->message, "before it was logged")) << buggy.failure->message;
  const ExploreReport fixed =
      explore_program(SimConfig{}, [](SimWorld& world) { observed_publication(world, true); }, spec);
  EXPECT_FALSE(fixed.failure.has_value()) << fixed.describe();
  EXPECT_TRUE(fixed.exhausted) << fixed.describe();
}
// C++20's Atomic::wait: a waiter wakes at a notify after the change, and
// only then; one never notified is a deadlock naming the wait.
void handshake(SimWorld& world, bool notify) {
  Atomic<int> stage(world, 0);
  Thread waiter(world, "waiter", [&] {
    stage.wait(0);
    EXPECT_EQ(stage.load(), 1);
  });
  Thread setter(world, "setter", [&] {
    stage.store(1);
    if (notify) {
      stage.notify_one();
    }
  });
  waiter.join();
  setter.join();
}

TEST(SimAtomicWait, AWaiterWakesAtTheNotifyAfterTheChange) {
  for (const char* strategy : {"random", "pct:3:30"}) {
    for (std::uint64_t seed = 1; seed <= 300; ++seed) {
      const RunResult run = simulate(seeded(seed, strategy), [](SimWorld& world) { handshake(world, true); });
      ASSERT_EQ(run.outcome, Outcome::ok) << strategy << " seed " << seed << ": " << run.summary();
    }
  }
  ExploreSpec spec;
  spec.strategy = parse_strategy("dfs:preemptions=2").value();
  const ExploreReport search = explore_program(SimConfig{}, [](SimWorld& world) { handshake(world, true); }, spec);
  EXPECT_TRUE(search.exhausted) << search.describe();
}

TEST(SimAtomicWait, AChangeNobodyNotifiesLeavesTheWaiterWaitingAndTheSearchFindsIt) {
  ExploreSpec spec;
  spec.strategy = parse_strategy("dfs:preemptions=1").value();
  const ExploreReport search = explore_program(SimConfig{}, [](SimWorld& world) { handshake(world, false); }, spec);
  ASSERT_TRUE(search.failure.has_value()) << search.describe();
  EXPECT_EQ(search.failure->kind, "deadlock");
  EXPECT_TRUE(has_text(search.failure->message, "task 'waiter'")) << search.failure->message;
  EXPECT_TRUE(has_text(search.failure->message, "condition 'atomic wait'")) << search.failure->message;
}

TEST(SimAtomicWait, ADeadlockInTheWaitOfANamedAtomicNamesIt) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    Atomic<int> ready(world, 0, "ready");
    ready.store(1);
    ready.wait(1);  // for the value to leave 1, which nothing makes it do
  });
  ASSERT_EQ(run.outcome, Outcome::deadlock) << run.summary();
  EXPECT_TRUE(has_text(run.message, "condition 'atomic ready'")) << run.message;
}

TEST(SimSpin, WithParkingOffASpinRunsAsWrittenAndItsBoundedLoopInterleavesFreely) {
  SimConfig config = seeded(1, "pct:1:200");
  config.park_spinners = false;
  config.steps_max = 20'000;
  std::uint64_t budget_runs = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    config.seed = seed;
    budget_runs += simulate(config, [](SimWorld& world) { flag_wait(world, 50); }).outcome == Outcome::step_budget;
  }
  EXPECT_GT(budget_runs, 0U) << "no seed put the waiter above the setter";
  // A bounded reader finishes its loop and writes before the other task's
  // read in some seeds only when it is not parked.
  const auto reader_first = [](SimConfig c) {
    bool first = false;
    const RunResult run = simulate(c, [&first](SimWorld& world) {
      Atomic<bool> flag(world, false);
      Atomic<int> done(world, 0);
      Thread reader(world, "reader", [&] {
        int sum = 0;
        for (int i = 0; i < 20; ++i) {
          sum += flag.load() ? 1 : 0;
        }
        done.store(1 + sum);
      });
      Thread other(world, "other", [&] {
        for (int i = 0; i < 30; ++i) {
          world.yield();  // steps that are no progress: the reader stays parked
        }
        first = done.load() != 0;
      });
      reader.join();
      other.join();
    });
    EXPECT_TRUE(run.ok()) << run.summary();
    return first;
  };
  std::uint64_t parked_first = 0;
  std::uint64_t free_first = 0;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    SimConfig c = seeded(seed, "random");
    parked_first += reader_first(c) ? 1U : 0U;
    c.park_spinners = false;
    free_first += reader_first(c) ? 1U : 0U;
  }
  EXPECT_EQ(parked_first, 0U);
  EXPECT_GT(free_first, 0U);
}

TEST(SimSpin, TheSameSeedGivesTheSameTrace) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    const auto body = [](SimWorld& world) { flag_wait(world, 20); };
    EXPECT_EQ(simulate(seeded(seed, "pct:3:200"), body).trace_hash, simulate(seeded(seed, "pct:3:200"), body).trace_hash);
  }
}

}  // namespace
}  // namespace seedpool::sim
