// Tests for the simulator's timer queue: timers fire by deadline, ties in
// arming order, a cancelled timer never fires, and arming an armed timer
// moves it; checked against a plain sorted model under random
// arm/cancel/pop sequences.

#include <seedpool/sim/timer_queue.hpp>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <vector>

namespace seedpool::sim {
namespace {

Instant at_ms(std::int64_t ms) { return Instant::zero() + milliseconds(ms); }

// Pops every timer; the tasks in firing order. The queue is then empty.
std::vector<TaskId> pop_all(TimerQueue& timers) {
  std::vector<TaskId> fired;
  while (!timers.empty()) {
    fired.push_back(timers.pop());
  }
  return fired;
}

TEST(TimerQueue, PopsByDeadlineThenArmingOrder) {
  TimerQueue timers;
  timers.arm(3, at_ms(20));
  timers.arm(1, at_ms(10));
  timers.arm(2, at_ms(20));
  timers.arm(0, at_ms(10));
  EXPECT_EQ(timers.size(), 4U);
  EXPECT_EQ(timers.earliest(), at_ms(10));
  EXPECT_EQ(pop_all(timers), (std::vector<TaskId>{1, 0, 3, 2}));
}

TEST(TimerQueue, CancelledTimerNeverFiresAndTaskMayArmAgain) {
  TimerQueue timers;
  timers.arm(0, at_ms(5));
  timers.arm(1, at_ms(7));
  timers.cancel(0);
  timers.cancel(0);  // a second cancel is a no-op
  EXPECT_FALSE(timers.armed(0));
  EXPECT_TRUE(timers.armed(1));
  timers.arm(0, at_ms(9));
  EXPECT_EQ(pop_all(timers), (std::vector<TaskId>{1, 0}));
}

TEST(TimerQueue, ArmingAnArmedTimerMovesIt) {
  TimerQueue timers;
  timers.arm(0, at_ms(5));
  timers.arm(1, at_ms(5));
  timers.arm(2, at_ms(9));
  timers.arm(2, at_ms(1));  // earlier: now first
  timers.arm(0, at_ms(5));  // its deadline already: keeps its place, before 1
  timers.arm(1, at_ms(12));  // later: now last
  EXPECT_EQ(timers.size(), 3U);
  EXPECT_EQ(timers.earliest(), at_ms(1));
  EXPECT_EQ(timers.pop(), 2U);
  EXPECT_EQ(timers.pop(), 0U);
  EXPECT_EQ(timers.earliest(), at_ms(12));
  EXPECT_EQ(pop_all(timers), (std::vector<TaskId>{1}));
}

TEST(TimerQueue, ClearDisarmsEveryTimer) {
  TimerQueue timers;
  timers.arm(4, at_ms(1));
  timers.arm(2, at_ms(2));
  timers.clear();
  EXPECT_TRUE(timers.empty());
  EXPECT_FALSE(timers.armed(4));
  EXPECT_FALSE(timers.armed(2));
  timers.arm(4, at_ms(3));
  EXPECT_EQ(timers.pop(), 4U);
}

RC_GTEST_PROP(TimerQueue, MatchesSortedModel, ()) {
  constexpr TaskId tasks = 12;
  TimerQueue timers;
  std::vector<std::tuple<Instant, std::uint64_t, TaskId>> model;  // (deadline, arming order, task)
  std::uint64_t sequence = 0;
  const auto ops = *rc::gen::container<std::vector<std::uint8_t>>(rc::gen::inRange<std::uint8_t>(0, 3));
  for (const std::uint8_t op : ops) {
    const auto task = *rc::gen::inRange<TaskId>(0, tasks);
    const auto armed = std::find_if(model.begin(), model.end(), [task](const auto& t) { return std::get<2>(t) == task; });
    RC_ASSERT(timers.armed(task) == (armed != model.end()));
    if (op == 0) {
      // Arming an armed timer moves it: a new deadline takes a new place in
      // the arming order, the same deadline keeps its old one.
      const Instant at = at_ms(*rc::gen::inRange<std::int64_t>(0, 8));
      timers.arm(task, at);
      if (armed == model.end()) {
        model.emplace_back(at, sequence++, task);
      } else if (std::get<0>(*armed) != at) {
        *armed = {at, sequence++, task};
      }
    } else if (op == 1) {
      timers.cancel(task);
      if (armed != model.end()) {
        model.erase(armed);
      }
    } else if (!model.empty()) {
      const auto first = std::min_element(model.begin(), model.end());
      RC_ASSERT(timers.earliest() == std::get<0>(*first));
      RC_ASSERT(timers.pop() == std::get<2>(*first));
      model.erase(first);
    }
    RC_ASSERT(timers.size() == model.size());
  }
}

}  // namespace
}  // namespace seedpool::sim
