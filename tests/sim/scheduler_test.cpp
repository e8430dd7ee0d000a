// Tests for the SimWorld scheduler: the virtual clock, timer order, spawning,
// every way a run can end (ok, deadlock, budgets, exceptions, assertions,
// invariants), teardown of the tasks left behind, and the decision stream as
// seen from inside a run.

#include "support/sim_config.hpp"

#include <seedpool/core/assert.hpp>
#include <seedpool/core/channel.hpp>
#include <seedpool/sim/sim_world.hpp>
#include <seedpool/sim/toys.hpp>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace seedpool {

// Let GoogleTest print instants readably. Static, so that other test files may
// define their own.
static void PrintTo(Instant instant, std::ostream* out) { *out << "@" << instant.ns() << "ns"; }

namespace sim {

static void PrintTo(Outcome outcome, std::ostream* out) { *out << to_string(outcome); }
static void PrintTo(EventKind kind, std::ostream* out) { *out << to_string(kind); }

namespace {

using namespace seedpool::test;

// True when `part` occurs in `text`; used with EXPECT_PRED2 so that a failure
// prints both strings.
// The names of the tasks of `kind` events in a kept trace, in trace order,
// restricted to events matching `keep`.
template <class Keep>
std::vector<std::string> task_names_of(const RunResult& run, EventKind kind, Keep keep) {
  std::vector<std::string> names;
  for (const TraceEvent& event : run.trace.events()) {
    if (event.kind == kind && keep(event)) {
      names.push_back(run.task_names.at(event.task));
    }
  }
  return names;
}

TEST(VirtualClock, JumpsStraightToTheNextTimer) {
  const RunResult run = simulate(seeded(1), [](SimWorld& world) {
    world.sleep_for(hours(1));
    world.sleep_for(hours(2));
    world.sleep_for(hours(3));
    world.sleep_until(world.now() + minutes(30));
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(run.virtual_time, Instant::zero() + hours(6) + minutes(30));
  // Hours of virtual time cost one step per sleep, not one per tick.
  EXPECT_LE(run.steps, 6U);
}

TEST(VirtualClock, ConcurrentSleepsOverlap) {
  const RunResult run = simulate(seeded(2), [](SimWorld& world) {
    for (const int h : {5, 1, 3}) {
      world.spawn("sleeper" + std::to_string(h), [&world, h] { world.sleep_for(hours(h)); });
    }
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(run.virtual_time, Instant::zero() + hours(5));
  EXPECT_LE(run.steps, 12U);
}

TEST(VirtualClock, TimeStandsStillWhileTasksCanRun) {
  Instant seen_after_yields = Instant::max();
  const RunResult run = simulate(seeded(3), [&seen_after_yields](SimWorld& world) {
    world.spawn("busy", [&world] {
      for (int i = 0; i < 100; ++i) {
        world.yield();
      }
    });
    for (int i = 0; i < 100; ++i) {
      world.yield();
    }
    seen_after_yields = world.now();
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(seen_after_yields, Instant::zero());
  EXPECT_EQ(run.virtual_time, Instant::zero());
}

TEST(VirtualClock, SleepIntoThePastIsStillASchedulingPoint) {
  const RunResult run = simulate(seeded(4), [](SimWorld& world) {
    const std::uint64_t before = world.steps();
    world.sleep_until(Instant::zero());
    EXPECT_GT(world.steps(), before);
    world.sleep_for(Duration::zero());
    EXPECT_EQ(world.now(), Instant::zero());
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(SleepOrder, TasksWakeInDeadlineOrderAtTheirDeadlines) {
  const std::vector<int> delays_ms = {50, 10, 40, 20, 30, 5};
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    std::vector<int> woke;
    const RunResult run = simulate(seeded(seed), [&woke, &delays_ms](SimWorld& world) {
      for (const int delay : delays_ms) {
        world.spawn("sleep" + std::to_string(delay), [&world, &woke, delay] {
          const Instant deadline = world.now() + milliseconds(delay);
          world.sleep_until(deadline);
          if (world.now() != deadline) {
            world.fail("woke at the wrong time");
          }
          woke.push_back(delay);
        });
      }
    });
    ASSERT_TRUE(run.ok()) << "seed " << seed << ": " << run.summary();
    std::vector<int> sorted = delays_ms;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(woke, sorted) << "seed " << seed;
  }
}

TEST(SleepOrder, EqualDeadlinesWakeInTheOrderTheySlept) {
  // Which task runs first after a wake is the strategy's choice; the order in
  // which due timers make tasks runnable is FIFO by the order they were set,
  // which the trace shows as the order of wake events.
  int orders_seen_differing = 0;
  std::vector<std::string> first_order;
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    SimConfig config = seeded(seed);
    config.keep_trace_events = true;
    const RunResult run = simulate(config, [](SimWorld& world) {
      const Instant deadline = Instant::zero() + milliseconds(7);
      for (int i = 0; i < 5; ++i) {
        world.spawn("t" + std::to_string(i), [&world, deadline] {
          // A random number of yields makes the order of the sleeps vary by seed.
          for (std::uint64_t k = world.random_below(4); k > 0; --k) {
            world.yield();
          }
          world.sleep_until(deadline);
        });
      }
    });
    ASSERT_TRUE(run.ok()) << run.summary();
    const auto slept = task_names_of(run, EventKind::block, [](const TraceEvent&) { return true; });
    const auto woke = task_names_of(run, EventKind::wake, [](const TraceEvent& e) { return e.arg == 1; });
    ASSERT_EQ(slept.size(), 5U);
    EXPECT_EQ(woke, slept) << "seed " << seed;
    if (first_order.empty()) {
      first_order = slept;
    } else if (slept != first_order) {
      ++orders_seen_differing;
    }
  }
  // Without variety in the sleep order the check above would prove little.
  EXPECT_GT(orders_seen_differing, 0);
}

TEST(Spawn, NestedSpawnsRun) {
  std::vector<std::string> ran;
  const RunResult run = simulate(seeded(5), [&ran](SimWorld& world) {
    world.spawn("child", [&world, &ran] {
      ran.push_back(std::string(world.current_task_name()));
      world.spawn("grandchild", [&world, &ran] {
        ran.push_back(std::string(world.current_task_name()));
        world.spawn("great-grandchild", [&world, &ran] {
          world.sleep_for(milliseconds(1));
          ran.push_back(std::string(world.current_task_name()));
        });
      });
    });
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(ran, (std::vector<std::string>{"child", "grandchild", "great-grandchild"}));
  EXPECT_EQ(run.task_names, (std::vector<std::string>{"main", "child", "grandchild", "great-grandchild"}));
}

TEST(Spawn, TasksOutliveTheirSpawner) {
  bool late_ran = false;
  const RunResult run = simulate(seeded(6), [&late_ran](SimWorld& world) {
    world.spawn("late", [&world, &late_ran] {
      world.sleep_for(seconds(10));
      late_ran = true;
    });
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_TRUE(late_ran);
  EXPECT_EQ(run.virtual_time, Instant::zero() + seconds(10));
}

TEST(Spawn, SpawnEventNamesTheNewTask) {
  SimConfig config = seeded(7);
  config.keep_trace_events = true;
  const RunResult run = simulate(config, [](SimWorld& world) { world.spawn("worker", [] {}); });
  ASSERT_TRUE(run.ok()) << run.summary();
  const auto spawned = task_names_of(run, EventKind::spawn, [](const TraceEvent&) { return true; });
  EXPECT_EQ(spawned, (std::vector<std::string>{"main", "worker"}));
}

TEST(RunEnd, OkWhenEveryTaskFinishes) {
  int finished = 0;
  const RunResult run = simulate(seeded(8), [&finished](SimWorld& world) {
    auto channel = std::make_shared<Channel<int>>(world, "numbers", 2);
    world.spawn("producer", [&world, channel, &finished] {
      for (int i = 0; i < 10; ++i) {
        world.sleep_for(milliseconds(1));
        (void)channel->send(int{i});
      }
      channel->close();
      ++finished;
    });
    while (channel->receive()) {
    }
    ++finished;
  });
  EXPECT_EQ(run.outcome, Outcome::ok);
  EXPECT_TRUE(run.ok());
  EXPECT_TRUE(run.message.empty()) << run.message;
  EXPECT_EQ(finished, 2);
  EXPECT_EQ(run.tasks_abandoned, 0U);
  EXPECT_EQ(run.virtual_time, Instant::zero() + milliseconds(10));
  EXPECT_PRED2(has_text, run.summary(), "ok");
}

TEST(Deadlock, LockOrderToyReportsBothTasksAndTheirWaits) {
  int deadlocks = 0;
  int clean = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    const RunResult run = simulate(seeded(seed), [](SimWorld& world) { toys::lock_order_deadlock(world); });
    // The toy's only World decision is its first: 0 means the crossed order.
    ASSERT_FALSE(run.decisions.empty());
    const bool crossed = run.decisions.front() == 0;
    if (!crossed) {
      EXPECT_TRUE(run.ok()) << "seed " << seed << ": " << run.summary();
      ++clean;
      continue;
    }
    ++deadlocks;
    ASSERT_EQ(run.outcome, Outcome::deadlock) << "seed " << seed << ": " << run.summary();
    EXPECT_PRED2(has_text, run.message, "2 task(s) blocked");
    EXPECT_PRED2(has_text, run.message, "task 'P'");
    EXPECT_PRED2(has_text, run.message, "task 'Q'");
    EXPECT_PRED2(has_text, run.message, "receive on 'left'");
    EXPECT_PRED2(has_text, run.message, "receive on 'right'");
  }
  EXPECT_GT(deadlocks, 0);
  EXPECT_GT(clean, 0);
}

TEST(Deadlock, ReportNamesEveryBlockedTaskAndItsWait) {
  const RunResult run = simulate(seeded(9), [](SimWorld& world) {
    auto inbox = std::make_shared<Channel<int>>(world, "inbox", 1);
    auto outbox = std::make_shared<Channel<int>>(world, "outbox", 1);
    (void)outbox->try_send(1);
    world.spawn("reader", [inbox] { (void)inbox->receive(); });
    world.spawn("writer", [outbox] { (void)outbox->send(2); });
    world.spawn("forever", [&world] { world.sleep_until(Instant::max()); });
    world.spawn("finisher", [&world] { world.sleep_for(seconds(1)); });
  });
  ASSERT_EQ(run.outcome, Outcome::deadlock) << run.summary();
  EXPECT_PRED2(has_text, run.message, "3 task(s) blocked");
  EXPECT_PRED2(has_text, run.message, "task 'reader'");
  EXPECT_PRED2(has_text, run.message, "receive on 'inbox'");
  EXPECT_PRED2(has_text, run.message, "task 'writer'");
  EXPECT_PRED2(has_text, run.message, "send on 'outbox'");
  EXPECT_PRED2(has_text, run.message, "task 'forever'");
  EXPECT_PRED2(has_text, run.message, "sleep");
  EXPECT_FALSE(has_text(run.message, "finisher")) << run.message;
  // The body spawned them and returned: the report says they outlived it.
  EXPECT_PRED2(has_text, run.message, "task 'main', has returned");
  // The deadlock is found when the last timer has fired, not before.
  EXPECT_EQ(run.virtual_time, Instant::zero() + seconds(1));
}

TEST(Deadlock, ABodyBlockedItselfIsNotSaidToHaveReturned) {
  const RunResult run = simulate(seeded(3), [](SimWorld& world) {
    Channel<int> inbox(world, "inbox", 1);
    (void)inbox.receive();
  });
  ASSERT_EQ(run.outcome, Outcome::deadlock) << run.summary();
  EXPECT_PRED2(has_text, run.message, "task 'main'");
  EXPECT_PRED2(has_text, run.message, "receive on 'inbox'");
  EXPECT_FALSE(has_text(run.message, "has returned")) << run.message;
}

TEST(Budgets, InfiniteYieldLoopExhaustsTheStepBudget) {
  SimConfig config = seeded(10);
  config.steps_max = 200;
  config.teardown_steps_max = 50;
  const RunResult run = simulate(config, [](SimWorld& world) {
    world.spawn("spinner", [&world] {
      for (;;) {
        world.yield();
      }
    });
  });
  ASSERT_EQ(run.outcome, Outcome::step_budget) << run.summary();
  EXPECT_EQ(run.steps, 200U);
  EXPECT_PRED2(has_text, run.message, "step budget of 200");
  // The spinner never stops on its own, so teardown has to abandon it.
  EXPECT_EQ(run.tasks_abandoned, 1U);
}

TEST(Budgets, InfiniteSleepLoopExhaustsTheTimeBudget) {
  SimConfig config = seeded(11);
  config.virtual_time_max = hours(1);
  config.teardown_steps_max = 50;
  const RunResult run = simulate(config, [](SimWorld& world) {
    for (;;) {
      world.sleep_for(minutes(7));
    }
  });
  ASSERT_EQ(run.outcome, Outcome::time_budget) << run.summary();
  EXPECT_PRED2(has_text, run.message, "virtual-time budget");
  // The clock never passes the budget: the timer beyond it is not fired.
  EXPECT_EQ(run.virtual_time, Instant::zero() + minutes(56));
  EXPECT_LE(run.steps, 20U);
  // The loop never stops on its own; teardown ends it at one of its sleeps.
  EXPECT_EQ(run.tasks_abandoned, 0U);
  EXPECT_EQ(run.tasks_ended, 1U);
}

TEST(Budgets, DecisionBudgetStopsTheRun) {
  SimConfig config = seeded(12);
  config.decisions_max = 10;
  int draws = 0;
  const RunResult run = simulate(config, [&draws](SimWorld& world) {
    for (int i = 0; i < 1'000; ++i) {
      (void)world.random_below(6);
      ++draws;
      world.yield();
    }
  });
  ASSERT_EQ(run.outcome, Outcome::decision_budget) << run.summary();
  EXPECT_PRED2(has_text, run.message, "decision budget of 10");
  EXPECT_EQ(run.decisions.size(), 10U);
  // The run stops at the first scheduling point after the overflow (step 11);
  // the loop finishes only in teardown, where no decision is drawn.
  EXPECT_LE(run.steps, 11U);
  // Teardown lets the loop run to its end, drawing zeros without recording.
  EXPECT_EQ(draws, 1'000);
}

TEST(Budgets, TaskBudgetStopsRunawaySpawning) {
  SimConfig config = seeded(13);
  config.tasks_max = 20;
  const RunResult run = simulate(config, [](SimWorld& world) {
    for (int i = 0; i < 100; ++i) {
      world.spawn("child" + std::to_string(i), [] {});
    }
  });
  EXPECT_EQ(run.outcome, Outcome::task_budget) << run.summary();
  EXPECT_PRED2(has_text, run.message, "task budget of 20");
  EXPECT_LE(run.task_names.size(), 20U);
}

TEST(Failures, ExceptionInATaskNamesTheTaskAndTheText) {
  const RunResult run = simulate(seeded(14), [](SimWorld& world) {
    world.spawn("thrower", [&world] {
      world.sleep_for(milliseconds(3));
      throw std::runtime_error("disk on fire");
    });
  });
  ASSERT_EQ(run.outcome, Outcome::task_exception) << run.summary();
  EXPECT_PRED2(has_text, run.message, "'thrower'");
  EXPECT_PRED2(has_text, run.message, "disk on fire");
  EXPECT_PRED2(has_text, run.message, "3.000000ms");
}

TEST(Failures, NonStandardExceptionIsReported) {
  const RunResult run = simulate(seeded(15), [](SimWorld& world) {
    world.spawn("odd", [] { throw 42; });
  });
  ASSERT_EQ(run.outcome, Outcome::task_exception) << run.summary();
  EXPECT_PRED2(has_text, run.message, "'odd'");
}

TEST(Failures, FailedAssertionEndsTheRunAndAbandonsTheTask) {
  bool ran_past_assertion = false;
  const RunResult run = simulate(seeded(16), [&ran_past_assertion](SimWorld& world) {
    world.spawn("checker", [&world, &ran_past_assertion] {
      const int answer = 42;
      world.yield();
      SEEDPOOL_ASSERT(answer == 41);
      ran_past_assertion = true;
    });
    world.spawn("bystander", [&world] { world.sleep_for(seconds(1)); });
  });
  // Reaching this line at all shows the process survived the assertion.
  ASSERT_EQ(run.outcome, Outcome::assertion) << run.summary();
  EXPECT_PRED2(has_text, run.message, "answer == 41");
  EXPECT_PRED2(has_text, run.message, "scheduler_test.cpp");
  EXPECT_PRED2(has_text, run.message, "'checker'");
  EXPECT_EQ(run.tasks_abandoned, 1U);
  EXPECT_FALSE(ran_past_assertion);
}

TEST(Failures, AssertionMessageIsIncluded) {
  const RunResult run = simulate(seeded(17), [](SimWorld&) {
    const int workers = 3;
    SEEDPOOL_ASSERT_MSG(workers == 2, "pool size drifted");
  });
  ASSERT_EQ(run.outcome, Outcome::assertion) << run.summary();
  EXPECT_PRED2(has_text, run.message, "workers == 2");
  EXPECT_PRED2(has_text, run.message, "pool size drifted");
  EXPECT_EQ(run.tasks_abandoned, 1U);
}

TEST(Failures, FailIsAnInvariantViolationAndTheFirstFailureWins) {
  const RunResult run = simulate(seeded(18), [](SimWorld& world) {
    world.sleep_for(milliseconds(2));
    world.fail("worker 3 leased twice");
    world.fail("a second, later complaint");
    world.yield();
    world.fail("a third, during teardown");
  });
  ASSERT_EQ(run.outcome, Outcome::invariant) << run.summary();
  EXPECT_PRED2(has_text, run.message, "worker 3 leased twice");
  EXPECT_FALSE(has_text(run.message, "second")) << run.message;
  EXPECT_FALSE(has_text(run.message, "third")) << run.message;
  EXPECT_PRED2(has_text, run.message, "'main'");
}

TEST(Failures, FailStopsOtherTasksAtTheNextSchedulingPoint) {
  int other_steps = 0;
  int other_steps_at_fail = -1;
  std::uint64_t steps_at_fail = 0;
  const RunResult run = simulate(seeded(19), [&](SimWorld& world) {
    world.spawn("other", [&world, &other_steps] {
      for (int i = 0; i < 100; ++i) {
        world.yield();
        if (!world.tearing_down()) {
          ++other_steps;
        }
      }
    });
    world.yield();
    world.yield();
    world.fail("stop here");
    steps_at_fail = world.steps();
    other_steps_at_fail = other_steps;
    world.yield();
  });
  ASSERT_EQ(run.outcome, Outcome::invariant) << run.summary();
  // No task is scheduled after the failing task reaches its scheduling point.
  EXPECT_EQ(run.steps, steps_at_fail);
  EXPECT_EQ(other_steps, other_steps_at_fail);
}

TEST(Teardown, BlockedTasksSeeTheirWaitsFailAndRunToTheEnd) {
  struct Seen {
    ChannelStatus receive_status = ChannelStatus::ok;
    ChannelStatus send_status = ChannelStatus::ok;
    bool receiver_finished = false;
    bool sender_finished = false;
    bool sleeper_finished = false;
    bool sleeper_saw_teardown = false;
  };
  auto seen = std::make_shared<Seen>();
  const RunResult run = simulate(seeded(20), [seen](SimWorld& world) {
    auto empty = std::make_shared<Channel<std::string>>(world, "empty", 1);
    auto full = std::make_shared<Channel<std::string>>(world, "full", 1);
    (void)full->try_send("occupant");
    world.spawn("receiver", [empty, seen] {
      const auto received = empty->receive();
      seen->receive_status = received.status;
      seen->receiver_finished = true;
    });
    world.spawn("sender", [full, seen] {
      seen->send_status = full->send("blocked");
      seen->sender_finished = true;
    });
    world.spawn("sleeper", [&world, seen] {
      world.sleep_for(hours(100));
      seen->sleeper_saw_teardown = world.tearing_down();
      seen->sleeper_finished = true;
    });
    world.sleep_for(milliseconds(1));
    world.fail("the checker found a violation");
  });
  ASSERT_EQ(run.outcome, Outcome::invariant) << run.summary();
  EXPECT_EQ(run.virtual_time, Instant::zero() + milliseconds(1));
  EXPECT_TRUE(seen->receiver_finished);
  EXPECT_TRUE(seen->sender_finished);
  EXPECT_TRUE(seen->sleeper_finished);
  EXPECT_TRUE(seen->sleeper_saw_teardown);
  EXPECT_EQ(seen->receive_status, ChannelStatus::timeout);
  EXPECT_EQ(seen->send_status, ChannelStatus::timeout);
  EXPECT_EQ(run.tasks_abandoned, 0U);
}

TEST(Teardown, TaskSpawnedAfterTheFailureNeverRuns) {
  bool late_ran = false;
  const RunResult run = simulate(seeded(21), [&late_ran](SimWorld& world) {
    world.fail("early failure");
    world.spawn("late", [&late_ran] { late_ran = true; });
  });
  ASSERT_EQ(run.outcome, Outcome::invariant) << run.summary();
  EXPECT_FALSE(late_ran);
}

TEST(Teardown, ExceptionWhileOthersWaitStillReturns) {
  bool waiter_done = false;
  const RunResult run = simulate(seeded(22), [&waiter_done](SimWorld& world) {
    auto mailbox = std::make_shared<Channel<int>>(world, "mailbox", 4);
    for (int i = 0; i < 3; ++i) {
      world.spawn("waiter" + std::to_string(i), [mailbox] { (void)mailbox->receive(); });
    }
    world.spawn("last-waiter", [mailbox, &waiter_done] {
      (void)mailbox->receive(Instant::zero() + hours(5));
      waiter_done = true;
    });
    world.sleep_for(milliseconds(4));
    throw std::logic_error("broken");
  });
  ASSERT_EQ(run.outcome, Outcome::task_exception) << run.summary();
  EXPECT_TRUE(waiter_done);
  EXPECT_EQ(run.tasks_abandoned, 0U);
}

// The trace a run hands back describes the run that was judged: the hash in
// the result and the hash of the returned trace agree, and no event of the
// teardown that followed is folded into one but not the other.
TEST(Teardown, ReturnedTraceMatchesTheReportedHash) {
  SimConfig config = seeded(23);
  config.keep_trace_events = true;
  const RunResult run = simulate(config, [](SimWorld& world) {
    auto gate = std::make_shared<Channel<int>>(world, "gate", 1);
    // Both tasks close the gate once their receive fails, which happens only
    // in teardown; whichever teardown resumes first wakes the other.
    for (const char* name : {"closer", "waiter"}) {
      world.spawn(name, [gate] {
        (void)gate->receive();
        gate->close();
      });
    }
    world.sleep_for(milliseconds(1));
    world.fail("stop");
    world.yield();
  });
  ASSERT_EQ(run.outcome, Outcome::invariant) << run.summary();
  EXPECT_EQ(run.trace.hash(), run.trace_hash);
  ASSERT_FALSE(run.trace.events().empty());
  EXPECT_EQ(run.trace.events().back().kind, EventKind::fail)
      << run.trace.describe(run.trace.events().back(), run.task_names);
}

TEST(Decisions, RandomBelowIsInRangeAndRecorded) {
  std::vector<std::uint64_t> drawn;
  const std::vector<std::uint64_t> bounds = {2, 3, 10, 1, 1'000'000, 7, 1, 2};
  const RunResult run = simulate(seeded(24), [&drawn, &bounds](SimWorld& world) {
    for (int round = 0; round < 25; ++round) {
      for (const std::uint64_t bound : bounds) {
        const std::uint64_t value = world.random_below(bound);
        if (value >= bound) {
          world.fail("random_below out of range");
        }
        if (bound > 1) {
          drawn.push_back(value);
        }
      }
    }
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  // "main" alone is never a choice, so the recorded decisions are exactly the
  // World's draws; bound 1 is no choice and is not recorded.
  EXPECT_EQ(run.decisions, drawn);
}

RC_GTEST_PROP(DecisionsProperty, RandomBelowAlwaysInRangeAndReplays, (std::uint64_t seed)) {
  const auto bounds = *rc::gen::container<std::vector<std::uint64_t>>(
      rc::gen::oneOf(rc::gen::inRange<std::uint64_t>(1, 5), rc::gen::arbitrary<std::uint64_t>()));
  std::vector<std::uint64_t> drawn;
  const auto program = [&drawn, &bounds](SimWorld& world) {
    drawn.clear();
    for (const std::uint64_t bound : bounds) {
      const std::uint64_t safe_bound = bound == 0 ? 1 : bound;
      const std::uint64_t value = world.random_below(safe_bound);
      if (value >= safe_bound) {
        world.fail("random_below out of range");
      }
      drawn.push_back(value);
    }
  };
  SimConfig config = seeded(seed);
  const RunResult first = simulate(config, program);
  RC_ASSERT(first.ok());
  const std::vector<std::uint64_t> first_drawn = drawn;
  config.decisions = first.decisions;
  const RunResult replayed = simulate(config, program);
  RC_ASSERT(replayed.ok());
  RC_ASSERT(drawn == first_drawn);
  RC_ASSERT(replayed.trace_hash == first.trace_hash);
}

TEST(Decisions, DecideIsRandomBelow) {
  SimConfig config = seeded(25);
  std::vector<std::uint64_t> values;
  const RunResult run = simulate(config, [&values](SimWorld& world) {
    values.push_back(world.decide(100));
    values.push_back(world.random_below(100));
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(run.decisions, values);
}

}  // namespace
}  // namespace sim
}  // namespace seedpool
