// Tests for the end of a simulated run: World::stopping(), tasks that loop
// through teardown (ended by unwinding, or abandoned), and the reuse of the
// stacks of abandoned tasks across many failing runs.

#include "support/sim_config.hpp"

#include <seedpool/core/assert.hpp>
#include <seedpool/core/channel.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <fstream>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace seedpool::sim {

static void PrintTo(Outcome outcome, std::ostream* out) { *out << to_string(outcome); }

namespace {

using namespace seedpool::test;

// What a ticker saw: its turns before and during teardown, and whether the
// objects on its stack were destroyed.
struct TickerLog {
  int turns = 0;
  int turns_stopping = 0;
  bool guard_destroyed = false;
};

// Sets its flag when destroyed, after a wait: a destructor run while an
// exception unwinds the task still may wait, and its wait fails at once.
class WaitingGuard {
 public:
  WaitingGuard(World& world, bool& destroyed) : world_(world), destroyed_(destroyed) {}
  ~WaitingGuard() {
    world_.sleep_for(seconds(1));
    destroyed_ = true;
  }
  WaitingGuard(const WaitingGuard&) = delete;
  WaitingGuard& operator=(const WaitingGuard&) = delete;

 private:
  World& world_;
  bool& destroyed_;
};

void count_turn(const World& world, TickerLog& log) {
  ++log.turns;
  if (world.stopping()) {
    ++log.turns_stopping;
  }
}

TEST(Stopping, IsFalseDuringTheRunAndTrueInTeardown) {
  auto seen = std::make_shared<std::vector<bool>>();
  const RunResult run = simulate(seeded(1), [seen](SimWorld& world) {
    world.spawn("watcher", [&world, seen] {
      seen->push_back(world.stopping());
      world.sleep_for(hours(1));
      seen->push_back(world.stopping());
    });
    world.sleep_for(milliseconds(1));
    seen->push_back(world.stopping());
    world.fail("stop");
    world.yield();
  });
  ASSERT_EQ(run.outcome, Outcome::invariant) << run.summary();
  EXPECT_EQ(*seen, (std::vector<bool>{false, false, true}));
}

// `while (true) { sleep; work; }` never checks anything. Teardown makes
// every sleep return at once; the task is ended by unwinding at its sleep
// after teardown_timed_waits_max of them, rather than spinning through the
// teardown budget to be abandoned.
TEST(Teardown, TickerThatNeverChecksIsEndedByUnwinding) {
  auto log = std::make_shared<TickerLog>();
  const SimConfig config = seeded(2);
  const RunResult run = simulate(config, [log](SimWorld& world) {
    world.spawn("ticker", [&world, log] {
      const WaitingGuard guard(world, log->guard_destroyed);
      while (true) {
        world.sleep_for(seconds(1));
        count_turn(world, *log);
      }
    });
    world.sleep_for(milliseconds(3'500));
    world.fail("stop");
    world.yield();
  });
  ASSERT_EQ(run.outcome, Outcome::invariant) << run.summary();
  EXPECT_EQ(run.tasks_abandoned, 0U);
  EXPECT_EQ(run.tasks_ended, 1U);
  // One turn as its sleep of the run fails, one after each timed wait of
  // teardown that returned.
  EXPECT_EQ(log->turns - log->turns_stopping, 3);
  EXPECT_EQ(static_cast<std::uint64_t>(log->turns_stopping), config.teardown_timed_waits_max + 1);
  EXPECT_TRUE(log->guard_destroyed);
}

TEST(Teardown, TickerThatChecksStoppingEndsAtOnce) {
  auto log = std::make_shared<TickerLog>();
  const RunResult run = simulate(seeded(3), [log](SimWorld& world) {
    world.spawn("ticker", [&world, log] {
      const WaitingGuard guard(world, log->guard_destroyed);
      while (true) {
        world.sleep_for(seconds(1));
        if (world.stopping()) {
          return;
        }
        count_turn(world, *log);
      }
    });
    world.sleep_for(milliseconds(3'500));
    world.fail("stop");
    world.yield();
  });
  ASSERT_EQ(run.outcome, Outcome::invariant) << run.summary();
  EXPECT_EQ(run.tasks_abandoned, 0U);
  EXPECT_EQ(run.tasks_ended, 0U);
  EXPECT_EQ(log->turns, 3);
  EXPECT_EQ(log->turns_stopping, 0);
  EXPECT_TRUE(log->guard_destroyed);
}

// A ticker that waits on a channel with a deadline, treating a timeout as
// its tick, is ended the same way.
TEST(Teardown, TickerOnAChannelDeadlineIsEndedByUnwinding) {
  auto log = std::make_shared<TickerLog>();
  const RunResult run = simulate(seeded(4), [log](SimWorld& world) {
    auto inbox = std::make_shared<Channel<int>>(world, "inbox", 1);
    world.spawn("ticker", [&world, inbox, log] {
      while (true) {
        const Received<int> received = inbox->receive(world.now() + seconds(1));
        if (received.status == ChannelStatus::closed) {
          return;
        }
        count_turn(world, *log);
      }
    });
    world.sleep_for(milliseconds(2'500));
    world.fail("stop");
    world.yield();
  });
  ASSERT_EQ(run.outcome, Outcome::invariant) << run.summary();
  EXPECT_EQ(run.tasks_abandoned, 0U);
  EXPECT_EQ(run.tasks_ended, 1U);
  EXPECT_EQ(log->turns - log->turns_stopping, 2);
  EXPECT_EQ(static_cast<std::uint64_t>(log->turns_stopping), SimConfig{}.teardown_timed_waits_max + 1);
}

// A catch-all handler that swallows the end sees it again at every timed
// wait; the teardown budget then abandons the task, and the process goes on.
TEST(Teardown, TickerThatSwallowsTheEndIsAbandonedAtTheBudget) {
  auto log = std::make_shared<TickerLog>();
  SimConfig config = seeded(5);
  config.teardown_steps_max = 50;
  const RunResult run = simulate(config, [log](SimWorld& world) {
    world.spawn("ticker", [&world, log] {
      while (true) {
        try {
          world.sleep_for(seconds(1));
        } catch (...) {  // NOLINT(bugprone-empty-catch): swallowing is what is tested
        }
        count_turn(world, *log);
      }
    });
    world.sleep_for(milliseconds(1'500));
    world.fail("stop");
    world.yield();
  });
  ASSERT_EQ(run.outcome, Outcome::invariant) << run.summary();
  EXPECT_EQ(run.tasks_abandoned, 1U);
  EXPECT_EQ(run.tasks_ended, 0U);
  EXPECT_EQ(static_cast<std::uint64_t>(log->turns_stopping), config.teardown_steps_max + 1);
}

// Waits in a loop in its destructor, which is noexcept.
class LoopsOnDestruction {
 public:
  LoopsOnDestruction(World& world, int& waits) : world_(world), waits_(waits) {}
  ~LoopsOnDestruction() {
    for (int i = 0; i < 100; ++i) {
      world_.sleep_for(seconds(1));
      ++waits_;
    }
  }
  LoopsOnDestruction(const LoopsOnDestruction&) = delete;
  LoopsOnDestruction& operator=(const LoopsOnDestruction&) = delete;

 private:
  World& world_;
  int& waits_;
};

// The end thrown from a wait inside a destructor run in the ordinary way
// meets a noexcept function; the task is abandoned rather than the process
// terminated.
TEST(Teardown, EndInsideANoexceptDestructorAbandonsTheTask) {
  auto waits = std::make_shared<int>(0);
  const SimConfig config = seeded(6);
  const RunResult run = simulate(config, [waits](SimWorld& world) {
    world.spawn("looper", [&world, waits] {
      const LoopsOnDestruction looper(world, *waits);
      world.sleep_for(hours(1));
    });
    world.sleep_for(milliseconds(1));
    world.fail("stop");
    world.yield();
  });
  ASSERT_EQ(run.outcome, Outcome::invariant) << run.summary();
  EXPECT_EQ(run.tasks_abandoned, 1U);
  EXPECT_EQ(run.tasks_ended, 0U);
  // Its sleep of the run failed without counting; the destructor's waits
  // counted up to the limit, and the next one threw.
  EXPECT_EQ(static_cast<std::uint64_t>(*waits), config.teardown_timed_waits_max);
  // The thread has no exception left current once the task is abandoned.
  EXPECT_EQ(std::current_exception(), nullptr);
  EXPECT_EQ(std::uncaught_exceptions(), 0);
  // Later runs on the same thread are unaffected.
  const RunResult next = simulate(seeded(7), [](SimWorld& world) { world.sleep_for(seconds(1)); });
  EXPECT_TRUE(next.ok()) << next.summary();
}

// Lines of /proc/self/maps: the process's memory mappings. The kernel caps
// them (vm.max_map_count, 65,530 by default); a stack is two (the stack and
// its guard page).
std::size_t mapping_count() {
  std::ifstream maps("/proc/self/maps");
  std::size_t lines = 0;
  std::string line;
  while (std::getline(maps, line)) {
    ++lines;
  }
  return lines;
}

// Runs `runs` simulations of `body` from `config` (seeds counting up), each
// of which must end with `outcome` and one task abandoned, and checks that
// the process's mappings do not grow with them: abandoned stacks are reused.
void expect_abandoning_runs_reuse_stacks(std::uint64_t runs, SimConfig config, Outcome outcome,
                                         const std::function<void(SimWorld&)>& body) {
  const std::size_t mappings_before = mapping_count();
  const std::uint64_t first_seed = config.seed;
  std::uint64_t as_expected = 0;
  for (std::uint64_t i = 0; i < runs; ++i) {
    config.seed = first_seed + i;
    const RunResult run = simulate(config, body);
    if (run.outcome != outcome || run.tasks_abandoned != 1) {
      ADD_FAILURE() << "run " << i << ": " << run.summary() << ", " << run.tasks_abandoned << " abandoned";
      break;
    }
    ++as_expected;
  }
  EXPECT_EQ(as_expected, runs);
  // A few mappings may come and go with the allocator; a stack leaked per
  // run would add two.
  constexpr std::size_t mappings_growth_max = 16;
  EXPECT_LE(mapping_count(), mappings_before + mappings_growth_max) << "before: " << mappings_before;
}

// Three times the runs the kernel's map limit allowed when the stacks of
// abandoned tasks were leaked (about 32,700).
constexpr std::uint64_t abandoning_runs = 100'000;

TEST(AbandonedStacks, FailedAssertionsInTasksReuseTheirStacks) {
  expect_abandoning_runs_reuse_stacks(abandoning_runs, seeded(1), Outcome::assertion, [](SimWorld& world) {
    world.spawn("checker", [&world] {
      const int answer = 42;
      world.yield();
      SEEDPOOL_ASSERT(answer == 41);
    });
    world.sleep_for(seconds(1));
  });
}

TEST(AbandonedStacks, TasksPastTheTeardownBudgetReuseTheirStacks) {
  SimConfig config = seeded(1);
  config.teardown_steps_max = 4;
  expect_abandoning_runs_reuse_stacks(abandoning_runs, config, Outcome::invariant, [](SimWorld& world) {
    bool spinning = false;
    world.spawn("spinner", [&world, &spinning] {
      spinning = true;
      for (;;) {
        world.yield();
      }
    });
    while (!spinning) {
      world.yield();
    }
    world.fail("stop");
    world.yield();
  });
}

}  // namespace
}  // namespace seedpool::sim
