// Tests for the trace of a run: how a note is kept, read back and hashed.

#include <seedpool/sim/sim_world.hpp>
#include <seedpool/sim/trace.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace seedpool::sim {
namespace {

// A run of one task that notes `label` = `value`, with its events kept.
RunResult run_noting(std::string_view label, std::uint64_t value) {
  SimConfig config;
  config.seed = 1;
  config.keep_trace_events = true;
  return simulate(config, [label, value](SimWorld& world) { world.note(label, value); });
}

const TraceEvent* first_note(const RunResult& run) {
  for (const TraceEvent& event : run.trace.events()) {
    if (event.kind == EventKind::note) {
      return &event;
    }
  }
  return nullptr;
}

TEST(TraceNote, KeepsTheValueAndReadsAsLabelEqualsValue) {
  const RunResult run = run_noting("sim_process launch", 1000);
  ASSERT_TRUE(run.ok()) << run.summary();
  const TraceEvent* note = first_note(run);
  ASSERT_NE(note, nullptr);
  EXPECT_EQ(note->arg, 1000U);
  const std::string line = run.trace.describe(*note, run.task_names);
  EXPECT_EQ(line, "step 1 @0.000000ms task 'main' (#0) note sim_process launch = 1000");
}

TEST(TraceNote, HashDependsOnTheLabelAndOnTheValue) {
  const std::uint64_t launch_1000 = run_noting("sim_process launch", 1000).trace_hash;
  EXPECT_EQ(run_noting("sim_process launch", 1000).trace_hash, launch_1000);
  EXPECT_NE(run_noting("sim_process launch", 1001).trace_hash, launch_1000);
  EXPECT_NE(run_noting("sim_process exit", 1000).trace_hash, launch_1000);
  // Notes without a value differ by their label alone.
  EXPECT_NE(run_noting("a", 0).trace_hash, run_noting("b", 0).trace_hash);
}

TEST(TraceNote, HashIsTheSameWhetherEventsAreKeptOrNot) {
  SimConfig config;
  config.seed = 1;
  const auto body = [](SimWorld& world) {
    world.note("first", 7);
    world.yield();
    world.note("second", 0);
  };
  config.keep_trace_events = false;
  const RunResult hashed = simulate(config, body);
  config.keep_trace_events = true;
  const RunResult kept = simulate(config, body);
  EXPECT_EQ(hashed.trace_hash, kept.trace_hash);
}

}  // namespace
}  // namespace seedpool::sim
