// Tests for Channel<T>, run on the simulated World so that blocking, deadlines
// and interleavings are exact and reproducible: FIFO order, deadlines that
// expire at exactly the deadline in virtual time, back-pressure on a full
// channel, values returned intact when they could not be delivered, close
// waking every waiter, and the capacity bound under random interleavings.

#include "support/sim_config.hpp"

#include <seedpool/core/channel.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace seedpool {

// Let GoogleTest print statuses and instants readably. Static, so that other
// test files may define their own.
static void PrintTo(ChannelStatus status, std::ostream* out) { *out << to_string(status); }
static void PrintTo(Instant instant, std::ostream* out) { *out << "@" << instant.ns() << "ns"; }

namespace {

using namespace seedpool::test;

using sim::RunResult;
using sim::SimConfig;
using sim::SimWorld;
using sim::simulate;

Instant at_ms(std::int64_t ms) { return Instant::zero() + milliseconds(ms); }

TEST(ChannelOrder, OneTaskGetsItsItemsBackInOrder) {
  std::vector<int> received;
  const RunResult run = simulate(seeded(1), [&received](SimWorld& world) {
    Channel<int> channel(world, "queue", 5);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(channel.send(int{i}), ChannelStatus::ok);
    }
    EXPECT_EQ(channel.size(), 5U);
    for (int i = 0; i < 5; ++i) {
      received.push_back(*channel.receive().value);
    }
    EXPECT_EQ(channel.size(), 0U);
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(received, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(ChannelOrder, FifoAcrossTasksUnderManyInterleavings) {
  for (std::uint64_t seed = 1; seed <= 25; ++seed) {
    std::vector<int> received;
    const RunResult run = simulate(seeded(seed), [&received](SimWorld& world) {
      auto channel = std::make_shared<Channel<int>>(world, "queue", 3);
      world.spawn("producer", [&world, channel] {
        for (int i = 0; i < 60; ++i) {
          if (world.random_below(4) == 0) {
            world.yield();
          }
          (void)channel->send(int{i});
        }
        channel->close();
      });
      while (auto item = channel->receive()) {
        received.push_back(*item.value);
      }
    });
    ASSERT_TRUE(run.ok()) << "seed " << seed << ": " << run.summary();
    ASSERT_EQ(received.size(), 60U) << "seed " << seed;
    for (int i = 0; i < 60; ++i) {
      ASSERT_EQ(received[static_cast<std::size_t>(i)], i) << "seed " << seed;
    }
  }
}

TEST(ChannelDeadline, ReceiveTimesOutAtExactlyTheDeadline) {
  ChannelStatus status = ChannelStatus::ok;
  Instant returned_at;
  const RunResult run = simulate(seeded(2), [&](SimWorld& world) {
    Channel<int> channel(world, "quiet", 1);
    // Start away from zero so that an absolute and a relative deadline differ.
    world.sleep_for(milliseconds(3));
    const auto received = channel.receive(world.now() + milliseconds(5));
    status = received.status;
    returned_at = world.now();
    EXPECT_FALSE(received.value.has_value());
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(status, ChannelStatus::timeout);
  EXPECT_EQ(returned_at, at_ms(8));
}

TEST(ChannelDeadline, ReceiveWithAPastDeadlineReturnsAtOnce) {
  const RunResult run = simulate(seeded(3), [](SimWorld& world) {
    Channel<int> channel(world, "quiet", 1);
    world.sleep_for(milliseconds(10));
    EXPECT_EQ(channel.receive(at_ms(4)).status, ChannelStatus::timeout);
    EXPECT_EQ(channel.receive(world.now()).status, ChannelStatus::timeout);
    EXPECT_EQ(world.now(), at_ms(10));
    // An item already there is delivered even when the deadline has passed.
    (void)channel.try_send(7);
    const auto received = channel.receive(at_ms(4));
    EXPECT_EQ(received.status, ChannelStatus::ok);
    EXPECT_EQ(received.value, 7);
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(ChannelDeadline, ItemArrivingBeforeTheDeadlineWins) {
  Instant received_at;
  int value = 0;
  const RunResult run = simulate(seeded(4), [&](SimWorld& world) {
    auto channel = std::make_shared<Channel<int>>(world, "mail", 1);
    world.spawn("sender", [&world, channel] {
      world.sleep_for(milliseconds(2));
      (void)channel->send(99);
    });
    const auto received = channel->receive(at_ms(5));
    received_at = world.now();
    value = received.value.value_or(-1);
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(value, 99);
  EXPECT_EQ(received_at, at_ms(2));
  // The abandoned timer at 5 ms must not drag the clock forward.
  EXPECT_EQ(run.virtual_time, at_ms(2));
}

TEST(ChannelBackPressure, SendOnFullBlocksUntilAReceiveFreesSpace) {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    Instant second_send_done;
    std::vector<int> received;
    const RunResult run = simulate(seeded(seed), [&](SimWorld& world) {
      auto channel = std::make_shared<Channel<int>>(world, "narrow", 1);
      EXPECT_EQ(channel->send(1), ChannelStatus::ok);
      world.spawn("receiver", [&world, channel, &received] {
        world.sleep_for(milliseconds(10));
        received.push_back(*channel->receive().value);
        received.push_back(*channel->receive().value);
      });
      EXPECT_EQ(channel->send(2), ChannelStatus::ok);
      second_send_done = world.now();
      EXPECT_LE(channel->size(), 1U);
    });
    ASSERT_TRUE(run.ok()) << run.summary();
    EXPECT_EQ(second_send_done, at_ms(10)) << "seed " << seed;
    EXPECT_EQ(received, (std::vector<int>{1, 2})) << "seed " << seed;
  }
}

TEST(ChannelBackPressure, SendWithDeadlineOnFullTimesOutAndKeepsTheValue) {
  const RunResult run = simulate(seeded(5), [](SimWorld& world) {
    Channel<std::unique_ptr<int>> channel(world, "owned", 1);
    EXPECT_EQ(channel.send(std::make_unique<int>(1)), ChannelStatus::ok);
    auto precious = std::make_unique<int>(7);
    const ChannelStatus status = channel.send(std::move(precious), world.now() + milliseconds(3));
    EXPECT_EQ(status, ChannelStatus::timeout);
    EXPECT_EQ(world.now(), at_ms(3));
    // The value is moved from only on ok, so the caller still owns it.
    ASSERT_NE(precious, nullptr);  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(*precious, 7);
    EXPECT_EQ(channel.size(), 1U);
    EXPECT_EQ(**channel.receive().value, 1);
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(ChannelBackPressure, StringSurvivesTimeoutFullAndClosed) {
  const RunResult run = simulate(seeded(6), [](SimWorld& world) {
    Channel<std::string> channel(world, "strings", 1);
    EXPECT_EQ(channel.try_send("occupant"), ChannelStatus::ok);
    // Longer than the small-string buffer, so a move would visibly empty it.
    std::string text(100, 'x');
    EXPECT_EQ(channel.send(std::move(text), world.now() + milliseconds(1)), ChannelStatus::timeout);
    EXPECT_EQ(text, std::string(100, 'x'));  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(channel.send(std::move(text), world.now()), ChannelStatus::timeout);
    EXPECT_EQ(text, std::string(100, 'x'));  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(channel.try_send(std::move(text)), ChannelStatus::full);
    EXPECT_EQ(text, std::string(100, 'x'));  // NOLINT(bugprone-use-after-move)
    channel.close();
    EXPECT_EQ(channel.send(std::move(text)), ChannelStatus::closed);
    EXPECT_EQ(text, std::string(100, 'x'));  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(channel.try_send(std::move(text)), ChannelStatus::closed);
    EXPECT_EQ(text, std::string(100, 'x'));  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(channel.receive().value, "occupant");
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(ChannelTry, TrySendOnFullReturnsFull) {
  const RunResult run = simulate(seeded(7), [](SimWorld& world) {
    Channel<int> channel(world, "pair", 2);
    EXPECT_EQ(channel.try_send(1), ChannelStatus::ok);
    EXPECT_EQ(channel.try_send(2), ChannelStatus::ok);
    EXPECT_EQ(channel.try_send(3), ChannelStatus::full);
    EXPECT_EQ(channel.size(), 2U);
    EXPECT_EQ(channel.try_receive().value, 1);
    EXPECT_EQ(channel.try_send(3), ChannelStatus::ok);
    EXPECT_EQ(world.now(), Instant::zero());
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(ChannelTry, TryReceiveOnEmptyReturnsEmptyThenClosed) {
  const RunResult run = simulate(seeded(8), [](SimWorld& world) {
    Channel<int> channel(world, "void", 1);
    const auto first = channel.try_receive();
    EXPECT_EQ(first.status, ChannelStatus::empty);
    EXPECT_FALSE(first.value.has_value());
    EXPECT_FALSE(static_cast<bool>(first));
    (void)channel.try_send(5);
    channel.close();
    const auto second = channel.try_receive();
    EXPECT_EQ(second.status, ChannelStatus::ok);
    EXPECT_EQ(second.value, 5);
    EXPECT_TRUE(static_cast<bool>(second));
    EXPECT_EQ(channel.try_receive().status, ChannelStatus::closed);
    EXPECT_EQ(world.now(), Instant::zero());
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

TEST(ChannelClose, WakesEveryWaitingReceiverAndSender) {
  constexpr int waiters = 4;
  std::vector<ChannelStatus> receive_statuses;
  std::vector<ChannelStatus> send_statuses;
  std::vector<std::string> kept_values;
  std::vector<Instant> woke_at;
  const RunResult run = simulate(seeded(9), [&](SimWorld& world) {
    auto empty = std::make_shared<Channel<int>>(world, "empty", 1);
    auto full = std::make_shared<Channel<std::string>>(world, "full", 1);
    (void)full->try_send("occupant");
    for (int i = 0; i < waiters; ++i) {
      world.spawn("receiver" + std::to_string(i), [&world, empty, &receive_statuses, &woke_at] {
        receive_statuses.push_back(empty->receive().status);
        woke_at.push_back(world.now());
      });
      world.spawn("sender" + std::to_string(i), [&world, full, i, &send_statuses, &kept_values, &woke_at] {
        std::string value = "value " + std::to_string(i);
        send_statuses.push_back(full->send(std::move(value)));
        kept_values.push_back(value);  // NOLINT(bugprone-use-after-move)
        woke_at.push_back(world.now());
      });
    }
    // Every other task runs until it blocks before the clock can move.
    world.sleep_for(milliseconds(5));
    empty->close();
    full->close();
    EXPECT_TRUE(empty->closed());
    EXPECT_TRUE(full->closed());
  });
  // A waiter that close failed to wake would be left blocked: a deadlock.
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(receive_statuses, std::vector<ChannelStatus>(waiters, ChannelStatus::closed));
  EXPECT_EQ(send_statuses, std::vector<ChannelStatus>(waiters, ChannelStatus::closed));
  EXPECT_EQ(woke_at, std::vector<Instant>(2 * waiters, at_ms(5)));
  // Each sender still holds exactly the value it tried to send.
  std::sort(kept_values.begin(), kept_values.end());
  EXPECT_EQ(kept_values, (std::vector<std::string>{"value 0", "value 1", "value 2", "value 3"}));
}

TEST(ChannelClose, ItemsSentBeforeCloseAreStillReceived) {
  std::vector<ChannelStatus> statuses;
  std::vector<int> values;
  const RunResult run = simulate(seeded(10), [&](SimWorld& world) {
    auto channel = std::make_shared<Channel<int>>(world, "draining", 3);
    world.spawn("producer", [channel] {
      for (int i = 1; i <= 3; ++i) {
        (void)channel->send(int{i});
      }
      channel->close();
      channel->close();  // idempotent
    });
    for (int i = 0; i < 5; ++i) {
      auto received = channel->receive(at_ms(100));
      statuses.push_back(received.status);
      if (received) {
        values.push_back(*received.value);
      }
    }
  });
  ASSERT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(values, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(statuses, (std::vector<ChannelStatus>{ChannelStatus::ok, ChannelStatus::ok, ChannelStatus::ok,
                                                  ChannelStatus::closed, ChannelStatus::closed}));
  // Closed is reported at once, not after waiting out the deadline.
  EXPECT_EQ(run.virtual_time, Instant::zero());
}

TEST(ChannelClose, NameAndCapacityAreReported) {
  const RunResult run = simulate(seeded(11), [](SimWorld& world) {
    Channel<int> channel(world, "mailbox", 7);
    EXPECT_EQ(channel.name(), "mailbox");
    EXPECT_EQ(channel.capacity_max(), 7U);
    EXPECT_FALSE(channel.closed());
  });
  ASSERT_TRUE(run.ok()) << run.summary();
}

// A random mix of producers and consumers over one bounded channel, with
// random deadlines and yields. Checked while running: the channel never holds
// more than capacity_max items. Checked after: every item arrived exactly once
// and each producer's items arrived in the order it sent them.
struct Traffic {
  std::size_t capacity = 1;
  int producers = 1;
  int items_per_producer = 1;
  int consumers = 1;
};

struct TrafficLog {
  std::size_t size_max_seen = 0;
  std::vector<std::vector<int>> received_by_producer;
};

void run_traffic(SimWorld& world, const Traffic& traffic, TrafficLog& log) {
  auto channel = std::make_shared<Channel<std::pair<int, int>>>(world, "shared", traffic.capacity);
  auto done = std::make_shared<Channel<int>>(world, "done", static_cast<std::size_t>(traffic.producers));
  const auto check_size = [&world, &log, channel] {
    const std::size_t size = channel->size();
    log.size_max_seen = std::max(log.size_max_seen, size);
    if (size > channel->capacity_max()) {
      world.fail("channel holds more than capacity_max items");
    }
  };
  log.received_by_producer.assign(static_cast<std::size_t>(traffic.producers), {});
  for (int p = 0; p < traffic.producers; ++p) {
    world.spawn("producer" + std::to_string(p), [&world, channel, done, p, traffic, check_size] {
      for (int i = 0; i < traffic.items_per_producer; ++i) {
        std::pair<int, int> item{p, i};
        for (;;) {
          const bool with_deadline = world.random_below(2) == 0;
          const Instant deadline =
              with_deadline ? world.now() + microseconds(static_cast<std::int64_t>(world.random_below(50)))
                            : Instant::max();
          const ChannelStatus status = channel->send(std::move(item), deadline);
          check_size();
          if (status == ChannelStatus::ok) {
            break;
          }
          // Only a timeout can stop a send here; the value is still ours.
          if (status != ChannelStatus::timeout || item.first != p || item.second != i) {
            world.fail("a failed send lost or changed its value");
            return;
          }
        }
      }
      (void)done->send(int{p});
    });
  }
  for (int c = 0; c < traffic.consumers; ++c) {
    world.spawn("consumer" + std::to_string(c), [&world, channel, &log, check_size] {
      for (;;) {
        if (world.random_below(3) == 0) {
          world.sleep_for(microseconds(static_cast<std::int64_t>(world.random_below(20))));
        }
        auto received = channel->receive(world.now() + microseconds(30));
        check_size();
        if (received.status == ChannelStatus::closed) {
          return;
        }
        if (received) {
          const auto [producer, index] = *received.value;
          log.received_by_producer[static_cast<std::size_t>(producer)].push_back(index);
        }
      }
    });
  }
  // Close only after every producer is done, so nothing is refused.
  for (int p = 0; p < traffic.producers; ++p) {
    (void)done->receive();
  }
  channel->close();
}

RC_GTEST_PROP(ChannelProperty, CapacityBoundAndDeliveryUnderRandomInterleavings, (std::uint64_t seed)) {
  Traffic traffic;
  traffic.capacity = *rc::gen::inRange<std::size_t>(1, 5);
  traffic.producers = *rc::gen::inRange(1, 4);
  traffic.items_per_producer = *rc::gen::inRange(1, 12);
  traffic.consumers = *rc::gen::inRange(1, 4);
  TrafficLog log;
  const RunResult run = simulate(seeded(seed), [&traffic, &log](SimWorld& world) { run_traffic(world, traffic, log); });
  RC_LOG() << run.summary() << "\n";
  RC_ASSERT(run.ok());
  RC_ASSERT(log.size_max_seen <= traffic.capacity);
  for (const std::vector<int>& indices : log.received_by_producer) {
    RC_ASSERT(indices.size() == static_cast<std::size_t>(traffic.items_per_producer));
    for (std::size_t i = 0; i < indices.size(); ++i) {
      RC_ASSERT(indices[i] == static_cast<int>(i));
    }
  }
}

TEST(ChannelProperty, TrafficFillsTheChannelSometimes) {
  // The bound check above proves little unless the channel actually fills.
  int filled = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    TrafficLog log;
    const Traffic traffic{2, 3, 8, 1};
    const RunResult run = simulate(seeded(seed), [&traffic, &log](SimWorld& world) { run_traffic(world, traffic, log); });
    ASSERT_TRUE(run.ok()) << run.summary();
    filled += log.size_max_seen == traffic.capacity ? 1 : 0;
  }
  EXPECT_GT(filled, 0);
}

}  // namespace
}  // namespace seedpool
