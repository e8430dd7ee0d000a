// Tests that a simulated run is a pure function of its decisions: random
// programs (generated as data by RapidCheck and interpreted inside the
// simulator) replay from their seed and from their recorded decision list to
// the same trace; different seeds explore different interleavings; an empty
// decision list is the default schedule; and the determinism checks report a
// divergence readably.

#include <seedpool/core/channel.hpp>
#include <seedpool/sim/determinism.hpp>
#include <seedpool/sim/sim_world.hpp>
#include <seedpool/sim/toys.hpp>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <cstdint>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace seedpool::sim {

namespace {

// One step of a generated task. Fields a kind does not use are ignored.
struct Op {
  enum class Kind { send, receive, try_send, try_receive, sleep, yield, spawn_child, random, close };
  Kind kind = Kind::yield;
  std::size_t channel = 0;
  int deadline_us = -1;  // -1: no deadline
  int amount = 0;        // sleep length in microseconds, or the random bound
};

struct TaskProgram {
  std::vector<Op> ops;
  std::vector<Op> child_ops;  // run by every child this task spawns; a child spawns nothing
};

struct Program {
  std::vector<std::size_t> capacities;
  std::vector<TaskProgram> tasks;
};

std::ostream& operator<<(std::ostream& out, const Op& op) {
  static constexpr const char* names[] = {"send",  "receive",     "try_send", "try_receive", "sleep",
                                          "yield", "spawn_child", "random",   "close"};
  return out << names[static_cast<int>(op.kind)] << "(ch " << op.channel << ", deadline " << op.deadline_us
             << "us, " << op.amount << ")";
}

std::ostream& operator<<(std::ostream& out, const Program& program) {
  out << "Program{channels:";
  for (const std::size_t capacity : program.capacities) {
    out << " " << capacity;
  }
  for (std::size_t t = 0; t < program.tasks.size(); ++t) {
    out << "\n  task " << t << ":";
    for (const Op& op : program.tasks[t].ops) {
      out << " " << op;
    }
    out << "\n    child:";
    for (const Op& op : program.tasks[t].child_ops) {
      out << " " << op;
    }
  }
  return out << "}";
}

rc::Gen<Op> gen_op(std::size_t channels) {
  return rc::gen::apply(
      [](int kind, std::size_t channel, int deadline_us, int amount) {
        Op op;
        // Close is rare so that most programs do real traffic before it.
        op.kind = kind >= 17 ? Op::Kind::close : static_cast<Op::Kind>(kind % 8);
        op.channel = channel;
        op.deadline_us = deadline_us;
        op.amount = amount;
        return op;
      },
      rc::gen::inRange(0, 18), rc::gen::inRange<std::size_t>(0, channels), rc::gen::inRange(-1, 40),
      rc::gen::inRange(1, 9));
}

rc::Gen<std::vector<Op>> gen_ops(std::size_t channels) {
  return rc::gen::resize(12, rc::gen::container<std::vector<Op>>(gen_op(channels)));
}

// Draws a program: 1-3 channels of capacity 1-3 and 2-4 tasks of up to about
// a dozen operations each. Only callable inside a property.
Program draw_program() {
  Program program;
  const std::size_t channels = *rc::gen::inRange<std::size_t>(1, 4);
  program.capacities = *rc::gen::container<std::vector<std::size_t>>(channels, rc::gen::inRange<std::size_t>(1, 4));
  const std::size_t tasks = *rc::gen::inRange<std::size_t>(2, 5);
  for (std::size_t t = 0; t < tasks; ++t) {
    TaskProgram task;
    task.ops = *gen_ops(channels);
    task.child_ops = *gen_ops(channels);
    program.tasks.push_back(std::move(task));
  }
  return program;
}

using Channels = std::vector<std::shared_ptr<Channel<int>>>;

Instant deadline_of(SimWorld& world, const Op& op) {
  return op.deadline_us < 0 ? Instant::max() : world.now() + microseconds(op.deadline_us);
}

// Runs `ops` as the calling task. Every observable result is noted in the
// trace, so that two runs agree on their hash only if they agree on results.
void interpret(SimWorld& world, const Channels& channels, const std::vector<Op>& ops,
               const std::vector<Op>* child_ops, const std::shared_ptr<int>& next_value) {
  for (const Op& op : ops) {
    Channel<int>& channel = *channels[op.channel];
    switch (op.kind) {
      case Op::Kind::send:
        world.note("send", static_cast<std::uint64_t>(channel.send((*next_value)++, deadline_of(world, op))));
        break;
      case Op::Kind::receive: {
        const auto received = channel.receive(deadline_of(world, op));
        world.note("receive", static_cast<std::uint64_t>(received.value.value_or(-1)));
        break;
      }
      case Op::Kind::try_send:
        world.note("try_send", static_cast<std::uint64_t>(channel.try_send((*next_value)++)));
        break;
      case Op::Kind::try_receive:
        world.note("try_receive", static_cast<std::uint64_t>(channel.try_receive().status));
        break;
      case Op::Kind::sleep: world.sleep_for(microseconds(op.amount)); break;
      case Op::Kind::yield: world.yield(); break;
      case Op::Kind::spawn_child:
        if (child_ops != nullptr) {
          world.spawn("child", [&world, channels, child_ops, next_value] {
            interpret(world, channels, *child_ops, nullptr, next_value);
          });
        } else {
          world.yield();
        }
        break;
      case Op::Kind::random:
        world.note("random", world.random_below(static_cast<std::uint64_t>(op.amount)));
        break;
      case Op::Kind::close: channel.close(); break;
    }
  }
}

// The program's body for simulate(). `program` must outlive the run.
std::function<void(SimWorld&)> body_of(const Program& program) {
  return [&program](SimWorld& world) {
    Channels channels;
    for (std::size_t i = 0; i < program.capacities.size(); ++i) {
      channels.push_back(std::make_shared<Channel<int>>(world, "ch" + std::to_string(i), program.capacities[i]));
    }
    // Shared by every task, so that values (and so notes) depend on the interleaving.
    auto next_value = std::make_shared<int>(0);
    for (std::size_t t = 0; t < program.tasks.size(); ++t) {
      const TaskProgram& task = program.tasks[t];
      world.spawn("task" + std::to_string(t), [&world, channels, &task, next_value] {
        interpret(world, channels, task.ops, &task.child_ops, next_value);
      });
    }
  };
}

RC_GTEST_PROP(ReplayProperty, SeedAndDecisionListReplayTheSameRun, (std::uint64_t seed)) {
  const Program program = draw_program();
  SimConfig config;
  config.seed = seed;
  config.keep_trace_events = true;
  config.steps_max = 100'000;
  const auto body = body_of(program);

  const RunResult from_seed = simulate(config, body);
  const RunResult again = simulate(config, body);
  SimConfig replay = config;
  replay.decisions = from_seed.decisions;
  const RunResult from_decisions = simulate(replay, body);

  RC_LOG() << program << "\n" << from_seed.summary() << "\n" << from_decisions.summary() << "\n";
  RC_ASSERT(again.trace_hash == from_seed.trace_hash);
  RC_ASSERT(from_decisions.trace_hash == from_seed.trace_hash);
  RC_ASSERT(from_decisions.outcome == from_seed.outcome);
  RC_ASSERT(from_decisions.message == from_seed.message);
  RC_ASSERT(from_decisions.steps == from_seed.steps);
  RC_ASSERT(from_decisions.virtual_time == from_seed.virtual_time);
  RC_ASSERT(from_decisions.decisions == from_seed.decisions);
  const DeterminismReport report = compare_runs(from_seed, from_decisions);
  RC_LOG() << report.describe() << "\n";
  RC_ASSERT(report.deterministic);
  RC_ASSERT(compare_runs(from_seed, again).deterministic);
  RC_CLASSIFY(from_seed.ok(), "ok");
  RC_CLASSIFY(from_seed.outcome == Outcome::deadlock, "deadlock");
}

// Three tasks of many yields and a shared counter whose reads are noted: the
// trace records how they interleaved.
void yield_race(SimWorld& world) {
  auto counter = std::make_shared<int>(0);
  for (int t = 0; t < 3; ++t) {
    world.spawn("racer" + std::to_string(t), [&world, counter] {
      for (int i = 0; i < 20; ++i) {
        world.note("read", static_cast<std::uint64_t>(*counter));
        ++*counter;
        world.yield();
      }
    });
  }
}

TEST(Interleavings, DifferentSeedsExploreDifferentSchedules) {
  std::set<std::uint64_t> hashes;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    SimConfig config;
    config.seed = seed;
    const RunResult run = simulate(config, yield_race);
    ASSERT_TRUE(run.ok()) << run.summary();
    hashes.insert(run.trace_hash);
  }
  EXPECT_GE(hashes.size(), 10U);
}

TEST(Interleavings, SameSeedSameSchedule) {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    SimConfig config;
    config.seed = seed;
    EXPECT_EQ(simulate(config, yield_race).trace_hash, simulate(config, yield_race).trace_hash);
  }
}

TEST(DefaultSchedule, EmptyDecisionListIsDeterministicAndAllZero) {
  SimConfig config;
  config.decisions = std::vector<std::uint64_t>{};
  std::vector<std::uint64_t> drawn;
  const auto body = [&drawn](SimWorld& world) {
    yield_race(world);
    world.spawn("drawer", [&world, &drawn] {
      for (int i = 0; i < 10; ++i) {
        drawn.push_back(world.random_below(1'000));
        world.yield();
      }
    });
  };
  const RunResult first = simulate(config, body);
  ASSERT_TRUE(first.ok()) << first.summary();
  EXPECT_EQ(drawn, std::vector<std::uint64_t>(10, 0));
  EXPECT_FALSE(first.decisions.empty());
  EXPECT_EQ(first.decisions, std::vector<std::uint64_t>(first.decisions.size(), 0));

  drawn.clear();
  const RunResult second = simulate(config, body);
  EXPECT_EQ(second.trace_hash, first.trace_hash);
  // Past the end of any list the choice is 0, so an explicit list of zeros
  // and a list of zeros cut short are the same run as the empty list.
  config.decisions = std::vector<std::uint64_t>(first.decisions.size(), 0);
  EXPECT_EQ(simulate(config, body).trace_hash, first.trace_hash);
  config.decisions = std::vector<std::uint64_t>(3, 0);
  EXPECT_EQ(simulate(config, body).trace_hash, first.trace_hash);
}

TEST(DefaultSchedule, TruncatedDecisionListIsDeterministic) {
  SimConfig config;
  config.seed = 77;
  const RunResult original = simulate(config, yield_race);
  ASSERT_GT(original.decisions.size(), 20U);
  config.decisions = std::vector<std::uint64_t>(original.decisions.begin(), original.decisions.begin() + 20);
  const RunResult first = simulate(config, yield_race);
  const RunResult second = simulate(config, yield_race);
  EXPECT_EQ(first.trace_hash, second.trace_hash);
  // The kept prefix is followed exactly; the rest are defaults.
  ASSERT_GE(first.decisions.size(), 20U);
  EXPECT_TRUE(std::equal(first.decisions.begin(), first.decisions.begin() + 20, original.decisions.begin()));
  EXPECT_EQ(std::vector<std::uint64_t>(first.decisions.begin() + 20, first.decisions.end()),
            std::vector<std::uint64_t>(first.decisions.size() - 20, 0));
}

TEST(Determinism, ToysAreDeterministic) {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    SimConfig config;
    config.seed = seed;
    const DeterminismReport ordering = check_determinism(config, [](SimWorld& world) { toys::ordering_bug(world); });
    EXPECT_TRUE(ordering.deterministic) << ordering.describe();
    EXPECT_EQ(ordering.first_hash, ordering.second_hash);
    EXPECT_NE(ordering.describe().find("deterministic"), std::string::npos);

    const DeterminismReport deadlock = check_determinism(config, toys::lock_order_deadlock);
    EXPECT_TRUE(deadlock.deterministic) << deadlock.describe();

    config.strategy = StrategySpec{StrategySpec::Kind::pct, 2, toys::ordering_bug_steps};
    const DeterminismReport pct = check_determinism(config, [](SimWorld& world) { toys::ordering_bug(world); });
    EXPECT_TRUE(pct.deterministic) << pct.describe();
  }
}

TEST(Determinism, CompareRunsReportsTheFirstDivergingEvent) {
  SimConfig config;
  config.keep_trace_events = true;
  config.seed = 1;
  const RunResult first = simulate(config, yield_race);
  RunResult second = first;
  for (std::uint64_t seed = 2; seed < 50 && second.trace_hash == first.trace_hash; ++seed) {
    config.seed = seed;
    second = simulate(config, yield_race);
  }
  ASSERT_NE(second.trace_hash, first.trace_hash);

  const DeterminismReport report = compare_runs(first, second);
  ASSERT_FALSE(report.deterministic);
  EXPECT_EQ(report.first_hash, first.trace_hash);
  EXPECT_EQ(report.second_hash, second.trace_hash);
  // Everything before the reported index is the same in both runs, and the
  // event at the index is not.
  const auto& a = first.trace.events();
  const auto& b = second.trace.events();
  ASSERT_LT(report.divergence_index, std::min(a.size(), b.size()));
  for (std::size_t i = 0; i < report.divergence_index; ++i) {
    ASSERT_EQ(a[i], b[i]) << "event " << i;
  }
  EXPECT_NE(report.first_event, report.second_event);
  EXPECT_EQ(report.first_event, first.trace.describe(a[report.divergence_index], first.task_names));
  EXPECT_EQ(report.second_event, second.trace.describe(b[report.divergence_index], second.task_names));
  EXPECT_NE(report.first_event.find("step "), std::string::npos) << report.first_event;
  EXPECT_NE(report.second_event.find("task '"), std::string::npos) << report.second_event;
  const std::string described = report.describe();
  EXPECT_NE(described.find("NOT deterministic"), std::string::npos) << described;
  EXPECT_NE(described.find("first divergence at event " + std::to_string(report.divergence_index)),
            std::string::npos)
      << described;
  EXPECT_NE(described.find(report.first_event), std::string::npos) << described;
  EXPECT_NE(described.find(report.second_event), std::string::npos) << described;
}

TEST(Determinism, CompareRunsOfOneRunIsDeterministic) {
  SimConfig config;
  config.keep_trace_events = true;
  config.seed = 5;
  const RunResult run = simulate(config, yield_race);
  ASSERT_FALSE(run.trace.events().empty());
  const DeterminismReport report = compare_runs(run, run);
  EXPECT_TRUE(report.deterministic) << report.describe();
}

TEST(Determinism, ATraceThatStopsEarlyDivergesAtItsEnd) {
  SimConfig config;
  config.keep_trace_events = true;
  config.seed = 3;
  const RunResult full = simulate(config, yield_race);
  config.steps_max = 10;
  const RunResult cut = simulate(config, yield_race);
  const DeterminismReport report = compare_runs(full, cut);
  EXPECT_FALSE(report.deterministic);
  EXPECT_NE(report.describe().find("NOT deterministic"), std::string::npos);
}

}  // namespace
}  // namespace seedpool::sim
