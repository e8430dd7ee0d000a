// What a RealWorld leaves behind: nothing. Process groups die whole, no
// descriptor leaks, no zombie lingers, a dropped handle does not stop its
// child, and destroying the world kills and reaps whatever still runs.

#include "real_test_support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <string>
#include <vector>

namespace seedpool::real {
namespace {

using testing::collect;
using testing::exit_code;
using testing::exit_of;
using testing::killed_by;
using testing::start;
using testing::sh;

TEST(RealProcessGroup, KillReachesTheWholeGroupIncludingAGrandchild) {
  RealWorld world;
  auto process = start(world, sh("sleep 1000 & sleep 1000"));
  ASSERT_TRUE(process);
  const auto pgid = static_cast<pid_t>(process->pid());
  ASSERT_TRUE(testing::eventually([&] { return testing::live_in_group(pgid).size() >= 2; }));
  process->signal(Signal::kill);
  EXPECT_EQ(exit_of(collect(world, *process)), killed_by(SIGKILL));
  EXPECT_TRUE(testing::eventually([&] { return testing::live_in_group(pgid).empty(); }));
}

TEST(RealProcessGroup, WhatIsLeftOfAGroupDiesWithItsLeader) {
  RealWorld world;  // kill_group_on_exit by default
  auto process = start(world, sh("sleep 1000 & echo started >&2; exit 2"));
  ASSERT_TRUE(process);
  const auto pgid = static_cast<pid_t>(process->pid());
  const auto events = collect(world, *process);  // the grandchild held stderr: it had to die first
  EXPECT_EQ(testing::stderr_lines(events), std::vector<std::string>{"started"});
  EXPECT_EQ(exit_of(events), exit_code(2));
  EXPECT_TRUE(testing::eventually([&] { return testing::live_in_group(pgid).empty(); }));
}

TEST(RealProcessGroup, ExitedComesAfterABoundedDrainWhenADescendantHoldsThePipes) {
  RealWorldConfig config;
  config.kill_group_on_exit = false;
  config.drain_after_exit_max = milliseconds(50);
  RealWorld world(config);
  auto process = start(world, sh("sleep 1000 & echo started >&2; exit 2"));
  ASSERT_TRUE(process);
  const auto pgid = static_cast<pid_t>(process->pid());
  const auto events = collect(world, *process);
  EXPECT_EQ(testing::stderr_lines(events), std::vector<std::string>{"started"});
  EXPECT_EQ(exit_of(events), exit_code(2));
  ASSERT_FALSE(testing::live_in_group(pgid).empty());
  // The reaped leader's signal() is a no-op now; the survivor's group is ours to end.
  process->signal(Signal::kill);
  ASSERT_FALSE(testing::live_in_group(pgid).empty());
  ::kill(-pgid, SIGKILL);
  EXPECT_TRUE(testing::eventually([&] { return testing::live_in_group(pgid).empty(); }));
}

TEST(RealWorldHygiene, ManyLaunchesLeaveNoDescriptorAndNoZombie) {
  const std::size_t fds_before = testing::open_fd_count();
  {
    RealWorld world;
    const std::size_t fds_with_world = testing::open_fd_count();
    for (int i = 0; i < 40; ++i) {
      std::unique_ptr<Process> process;
      switch (i % 4) {
        case 0: process = start(world, sh("echo out; echo err >&2; exit 1")); break;
        case 1: process = start(world, sh("exec sleep 1000")); break;
        case 2: process = start(world, testing::py(testing::python_echo)); break;
        case 3:
          // Dropped at once, with output nobody reads: the loop still drains and reaps it.
          ASSERT_TRUE(world.launch(sh("seq 1 100000; seq 1 100000 >&2")).ok());
          ASSERT_TRUE(testing::eventually([&] { return testing::open_fd_count() == fds_with_world; }));
          continue;
      }
      ASSERT_TRUE(process);
      if (i % 4 == 1) {
        process->signal(Signal::kill);
      } else if (i % 4 == 2) {
        ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 1, "x"}).ok());
        ASSERT_TRUE(process->write_frame(Frame{FrameKind::shutdown, 0, {}}).ok());
      }
      ASSERT_TRUE(exit_of(collect(world, *process)).has_value());
      ASSERT_TRUE(testing::zombie_children().empty());
      ASSERT_EQ(testing::open_fd_count(), fds_with_world);
    }
  }
  EXPECT_EQ(testing::open_fd_count(), fds_before);
  EXPECT_TRUE(testing::zombie_children().empty());
}

TEST(RealWorldHygiene, LaunchesFromManyThreadsAtOnce) {
  constexpr int threads = 6;
  constexpr int launches_each = 5;
  std::atomic<int> clean_exits{0};
  {
    RealWorld world;
    for (int t = 0; t < threads; ++t) {
      world.spawn("launcher", [&world, &clean_exits, t] {
        for (int i = 0; i < launches_each; ++i) {
          auto process = start(world, sh("echo " + std::to_string(t) + " >&2; exit " + std::to_string(i)));
          ASSERT_TRUE(process);
          const auto events = collect(world, *process);
          if (exit_of(events) == exit_code(i) &&
              testing::stderr_lines(events) == std::vector<std::string>{std::to_string(t)}) {
            clean_exits.fetch_add(1);
          }
        }
      });
    }
  }
  EXPECT_EQ(clean_exits.load(), threads * launches_each);
  EXPECT_TRUE(testing::zombie_children().empty());
}

TEST(RealWorldHygiene, ADroppedHandleLeavesTheChildRunningUntilTheWorldEnds) {
  const std::size_t fds_before = testing::open_fd_count();
  pid_t pid = 0;
  pid_t grandchild_group = 0;
  {
    RealWorld world;
    {
      auto process = start(world, sh("sleep 1000 & exec sleep 1000"));
      ASSERT_TRUE(process);
      pid = static_cast<pid_t>(process->pid());
      grandchild_group = pid;
      ASSERT_TRUE(testing::eventually([&] { return testing::live_in_group(pid).size() == 2; }));
    }
    world.sleep_for(milliseconds(20));
    EXPECT_TRUE(testing::alive(pid));
    // Tasks still running when the world is destroyed finish with a working world.
    world.spawn("late", [&world] {
      world.sleep_for(milliseconds(20));
      auto process = start(world, sh("exit 9"));
      ASSERT_TRUE(process);
      EXPECT_EQ(exit_of(collect(world, *process)), exit_code(9));
    });
  }
  EXPECT_FALSE(testing::alive(pid));  // reaped before the destructor returned
  // SIGKILL reached the grandchild too; its death is asynchronous.
  EXPECT_TRUE(testing::eventually([&] { return testing::live_in_group(grandchild_group).empty(); }));
  EXPECT_TRUE(testing::zombie_children().empty());
  EXPECT_EQ(testing::open_fd_count(), fds_before);
}

}  // namespace
}  // namespace seedpool::real
