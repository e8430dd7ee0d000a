// RealWorld without processes: the clock, sleeps, tasks on threads, monitors
// and channels used across threads, and randomness.

#include "real_test_support.hpp"

#include <seedpool/core/channel.hpp>
#include <seedpool/real/real_world.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <numeric>
#include <optional>
#include <pthread.h>
#include <set>
#include <stdexcept>
#include <thread>
#include <string>
#include <vector>

namespace seedpool::real {
namespace {

using testing::hang_guard;

TEST(RealWorldClock, NowIsMonotonicAndCountsFromTheWorldsCreation) {
  RealWorld world;
  Instant previous = world.now();
  EXPECT_GE(previous, Instant::zero());
  for (int i = 0; i < 10'000; ++i) {
    const Instant next = world.now();
    ASSERT_GE(next, previous);
    previous = next;
  }
}

TEST(RealWorldClock, SleepUntilWaitsAtLeastUntilTheDeadline) {
  RealWorld world;
  const Instant deadline = world.now() + milliseconds(5);
  world.sleep_until(deadline);
  EXPECT_GE(world.now(), deadline);
  world.sleep_until(Instant::zero());  // in the past: returns
  world.sleep_for(Duration::zero());
  world.yield();
}

TEST(RealWorldClock, TimePointsOfFarInstantsMeanNoDeadline) {
  RealWorld world;
  std::chrono::steady_clock::time_point at;
  EXPECT_FALSE(world.to_time_point(Instant::max(), at));
  EXPECT_FALSE(world.to_time_point(Instant::max() - nanoseconds(1), at));
  ASSERT_TRUE(world.to_time_point(world.now(), at));
  EXPECT_LE(at, std::chrono::steady_clock::now());
}

TEST(RealWorldTasks, TasksRunConcurrentlyOnTheirOwnThreadsAndTheDestructorJoinsThem) {
  constexpr int tasks = 8;
  std::atomic<int> started{0};
  std::atomic<int> done{0};
  std::atomic<int> on_main_thread{0};
  const std::thread::id main_thread = std::this_thread::get_id();
  {
    RealWorld world;
    for (int i = 0; i < tasks; ++i) {
      world.spawn("task-" + std::to_string(i), [&] {
        if (std::this_thread::get_id() == main_thread) {
          on_main_thread.fetch_add(1);
        }
        // Every task waits for all the others to start: they must all be running at once.
        started.fetch_add(1);
        ASSERT_TRUE(testing::eventually([&] { return started.load() == tasks; }));
        world.sleep_for(milliseconds(10));
        done.fetch_add(1);
      });
    }
  }
  EXPECT_EQ(done.load(), tasks);
  EXPECT_EQ(on_main_thread.load(), 0);
}

TEST(RealWorldTasks, TasksMaySpawnTasksAndManyFinishedTasksAreJoinedAlong) {
  std::atomic<int> done{0};
  {
    RealWorld world;
    for (int i = 0; i < 200; ++i) {
      world.spawn("short", [&done] { done.fetch_add(1); });
    }
    world.spawn("parent", [&world, &done] {
      world.sleep_for(milliseconds(5));
      world.spawn("child", [&done] { done.fetch_add(1); });
    });
  }
  EXPECT_EQ(done.load(), 201);
}

TEST(RealWorldTasksDeathTest, AnExceptionEscapingATaskIsReportedWithItsNameAndTerminates) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        RealWorld world;
        world.spawn("doomed-task", [] { throw std::runtime_error("the reason"); });
      },
      "task 'doomed-task' ended with an exception: the reason");
}

TEST(RealWorldTasks, ThreadsCarryTheTaskNameCutToFifteenBytes) {
  std::string short_name;
  std::string long_name;
  {
    RealWorld world;
    const auto record = [](std::string& out) {
      char buffer[32] = {};
      ASSERT_EQ(::pthread_getname_np(::pthread_self(), buffer, sizeof buffer), 0);
      out = buffer;
    };
    world.spawn("worker-1", [&] { record(short_name); });
    world.spawn("pool/a-very-long-task-name", [&] { record(long_name); });
  }
  EXPECT_EQ(short_name, "worker-1");
  EXPECT_EQ(long_name, "pool/a-very-lon");
}

TEST(RealWorldChannel, ItemsCrossThreadsThroughASmallChannelWithoutLossOrDuplication) {
  constexpr int producers = 4;
  constexpr int items_each = 2'000;
  std::vector<int> received;
  {
    // Destroyed before the channels: its destructor joins the task threads,
    // which may still be inside a send that has handed over its item.
    std::optional<RealWorld> owner(std::in_place);
    RealWorld& world = *owner;
    Channel<int> channel(world, "numbers", 3);
    Channel<int> done(world, "done", producers);
    for (int p = 0; p < producers; ++p) {
      world.spawn("producer", [&, p] {
        for (int i = 0; i < items_each; ++i) {
          ASSERT_EQ(channel.send(p * items_each + i), ChannelStatus::ok);
        }
        ASSERT_EQ(done.send(int{p}), ChannelStatus::ok);
      });
    }
    world.spawn("closer", [&] {
      for (int p = 0; p < producers; ++p) {
        ASSERT_TRUE(done.receive(world.now() + hang_guard));
      }
      channel.close();
    });
    for (;;) {
      Received<int> item = channel.receive(world.now() + hang_guard);
      if (item.status == ChannelStatus::closed) {
        break;
      }
      ASSERT_EQ(item.status, ChannelStatus::ok);
      received.push_back(*item.value);
    }
    owner.reset();
  }
  ASSERT_EQ(received.size(), static_cast<std::size_t>(producers * items_each));
  std::sort(received.begin(), received.end());
  std::vector<int> expected(received.size());
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(received, expected);
}

TEST(RealWorldChannel, CloseWakesEveryWaitingReceiver) {
  constexpr int receivers = 4;
  std::optional<RealWorld> owner(std::in_place);  // reset first: see above
  RealWorld& world = *owner;
  Channel<int> channel(world, "never", 1);
  Channel<ChannelStatus> results(world, "results", receivers);
  std::atomic<int> waiting{0};
  for (int i = 0; i < receivers; ++i) {
    world.spawn("receiver", [&] {
      waiting.fetch_add(1);
      ASSERT_EQ(results.send(channel.receive().status), ChannelStatus::ok);  // no deadline
    });
  }
  ASSERT_TRUE(testing::eventually([&] { return waiting.load() == receivers; }));
  world.sleep_for(milliseconds(10));  // let them reach the wait; correctness does not depend on it
  channel.close();
  for (int i = 0; i < receivers; ++i) {
    Received<ChannelStatus> result = results.receive(world.now() + hang_guard);
    ASSERT_TRUE(result);
    EXPECT_EQ(*result.value, ChannelStatus::closed);
  }
  owner.reset();
}

TEST(RealWorldChannel, CloseWakesASenderBlockedOnAFullChannel) {
  std::optional<RealWorld> owner(std::in_place);  // reset first: see above
  RealWorld& world = *owner;
  Channel<int> channel(world, "full", 1);
  ASSERT_EQ(channel.send(1), ChannelStatus::ok);
  Channel<ChannelStatus> result(world, "result", 1);
  world.spawn("sender", [&] { ASSERT_EQ(result.send(channel.send(2)), ChannelStatus::ok); });
  world.sleep_for(milliseconds(10));
  channel.close();
  Received<ChannelStatus> status = result.receive(world.now() + hang_guard);
  ASSERT_TRUE(status);
  EXPECT_EQ(*status.value, ChannelStatus::closed);
  EXPECT_EQ(*channel.receive().value, 1);  // sent before close: still delivered
  EXPECT_EQ(channel.receive().status, ChannelStatus::closed);
  owner.reset();
}

TEST(RealWorldChannel, ReceiveAndSendTimeOutAtTheirDeadline) {
  RealWorld world;
  Channel<int> channel(world, "quiet", 1);
  const Instant deadline = world.now() + milliseconds(20);
  EXPECT_EQ(channel.receive(deadline).status, ChannelStatus::timeout);
  EXPECT_GE(world.now(), deadline);
  EXPECT_EQ(channel.receive(world.now() - milliseconds(1)).status, ChannelStatus::timeout);
  ASSERT_EQ(channel.send(1), ChannelStatus::ok);
  const Instant send_deadline = world.now() + milliseconds(20);
  int value = 2;
  EXPECT_EQ(channel.send(std::move(value), send_deadline), ChannelStatus::timeout);
  EXPECT_GE(world.now(), send_deadline);
  EXPECT_EQ(channel.try_send(3), ChannelStatus::full);
}

TEST(RealWorldChannel, ASenderBlockedOnAFullChannelProceedsWhenRoomIsMade) {
  RealWorld world;
  Channel<int> channel(world, "one", 1);
  ASSERT_EQ(channel.send(1), ChannelStatus::ok);
  std::atomic<bool> sent{false};
  world.spawn("sender", [&] {
    ASSERT_EQ(channel.send(2, world.now() + hang_guard), ChannelStatus::ok);
    sent.store(true);
  });
  EXPECT_EQ(*channel.receive(world.now() + hang_guard).value, 1);
  EXPECT_EQ(*channel.receive(world.now() + hang_guard).value, 2);
  EXPECT_TRUE(testing::eventually([&] { return sent.load(); }));
}

TEST(RealWorldMonitor, AWaitWithoutDeadlineEndsWhenNotified) {
  RealWorld world;
  std::unique_ptr<Monitor> monitor = world.make_monitor("flag");
  bool flag = false;
  world.spawn("setter", [&] {
    world.sleep_for(milliseconds(5));
    MonitorLock lock(*monitor);
    flag = true;
    monitor->notify_all();
  });
  MonitorLock lock(*monitor);
  while (!flag) {
    EXPECT_TRUE(monitor->wait_until(Instant::max(), "flag"));
  }
  EXPECT_FALSE(monitor->wait_until(world.now() + milliseconds(1), "nothing"));
}

// Channels notify after releasing the lock. A notify that lands between a
// waiter's check and its sleep must still wake it: ping-pong between two
// threads, each waiting for its turn without a deadline, hangs (and fails
// at the bounded wait below) if one is lost.
TEST(RealWorldMonitor, ANotifyOutsideTheLockIsNeverLost) {
  RealWorld world;
  std::unique_ptr<Monitor> monitor = world.make_monitor("turns");
  constexpr int turns = 20'000;
  int turn = 0;  // even: main's turn, odd: the other's
  auto play = [&](int parity) {
    for (;;) {
      {
        MonitorLock lock(*monitor);
        while (turn % 2 != parity && turn < turns) {
          const bool notified = monitor->wait_until(world.now() + seconds(20), "turn");
          ASSERT_TRUE(notified || turn % 2 == parity) << "a wake-up was lost at turn " << turn;
        }
        if (turn >= turns) {
          return;
        }
        ++turn;
      }
      monitor->notify_all();
    }
  };
  std::unique_ptr<JoinableTask> other = world.spawn_joinable("other", [&] { play(1); });
  play(0);
  other->join();
  EXPECT_EQ(turn, turns);
}

TEST(RealWorldRandom, RandomBelowStaysInRangeAndCoversIt) {
  RealWorld world;
  EXPECT_EQ(world.random_below(1), 0u);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 1'000; ++i) {
    const std::uint64_t value = world.random_below(4);
    ASSERT_LT(value, 4u);
    seen.insert(value);
  }
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_LT(world.random_below(UINT64_MAX), UINT64_MAX);
}

}  // namespace
}  // namespace seedpool::real
