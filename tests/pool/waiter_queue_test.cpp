// The queue of waiting checkouts on its own: first come first served,
// cancels and expiry by deadline, and the earliest deadline it caches, which
// must equal a scan after any sequence of changes.

#include "pool/waiter_queue.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <vector>

namespace seedpool::detail {
namespace {

Instant at_ms(std::int64_t ms) { return Instant::zero() + milliseconds(ms); }

Waiter waiter(std::uint64_t id, Instant deadline) {
  Waiter w;
  w.id = id;
  w.deadline = deadline;
  return w;
}

std::vector<std::uint64_t> ids(const WaiterQueue& queue) {
  std::vector<std::uint64_t> out;
  for (const Waiter& w : queue) {
    out.push_back(w.id);
  }
  return out;
}

std::vector<std::uint64_t> ids(const std::vector<Waiter>& waiters) {
  std::vector<std::uint64_t> out;
  for (const Waiter& w : waiters) {
    out.push_back(w.id);
  }
  return out;
}

TEST(WaiterQueue, ServesInArrivalOrder) {
  WaiterQueue queue;
  EXPECT_TRUE(queue.empty());
  queue.push_back(waiter(3, at_ms(30)));
  queue.push_back(waiter(1, at_ms(10)));
  queue.push_back(waiter(2, at_ms(20)));
  EXPECT_EQ(ids(queue), (std::vector<std::uint64_t>{3, 1, 2}));
  EXPECT_EQ(queue.back().id, 2u);
  EXPECT_EQ(queue.pop_back().id, 2u);
  EXPECT_EQ(ids(queue.take_all()), (std::vector<std::uint64_t>{3, 1}));
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.earliest_deadline(), Instant::max());
}

TEST(WaiterQueue, CancelRemovesOnlyThatWaiter) {
  WaiterQueue queue;
  queue.push_back(waiter(1, at_ms(10)));
  queue.push_back(waiter(2, at_ms(20)));
  queue.push_back(waiter(3, at_ms(30)));
  const std::optional<Waiter> cancelled = queue.cancel(2);
  ASSERT_TRUE(cancelled.has_value());
  EXPECT_EQ(cancelled->deadline, at_ms(20));
  EXPECT_FALSE(queue.cancel(2).has_value());
  EXPECT_FALSE(queue.cancel(99).has_value());
  EXPECT_EQ(ids(queue), (std::vector<std::uint64_t>{1, 3}));
  EXPECT_EQ(queue.earliest_deadline(), at_ms(10));
  ASSERT_TRUE(queue.cancel(1).has_value());
  EXPECT_EQ(queue.earliest_deadline(), at_ms(30));
}

// A deadline is due at its instant, not after it; the rest keep their order.
TEST(WaiterQueue, TakeExpiredTakesTheDueOnesOldestFirst) {
  WaiterQueue queue;
  queue.push_back(waiter(1, at_ms(20)));
  queue.push_back(waiter(2, at_ms(10)));
  queue.push_back(waiter(3, at_ms(30)));
  queue.push_back(waiter(4, at_ms(10)));
  EXPECT_TRUE(queue.take_expired(at_ms(9)).empty());
  EXPECT_EQ(ids(queue.take_expired(at_ms(10))), (std::vector<std::uint64_t>{2, 4}));
  EXPECT_EQ(ids(queue), (std::vector<std::uint64_t>{1, 3}));
  EXPECT_EQ(queue.earliest_deadline(), at_ms(20));
  EXPECT_EQ(ids(queue.take_expired(at_ms(40))), (std::vector<std::uint64_t>{1, 3}));
  EXPECT_EQ(queue.earliest_deadline(), Instant::max());
}

TEST(WaiterQueue, EraseReturnsTheNextWaiter) {
  WaiterQueue queue;
  queue.push_back(waiter(1, at_ms(10)));
  queue.push_back(waiter(2, at_ms(20)));
  auto it = queue.erase(queue.begin());
  ASSERT_NE(it, queue.end());
  EXPECT_EQ(it->id, 2u);
  EXPECT_EQ(queue.earliest_deadline(), at_ms(20));
}

// The cached earliest deadline against a scan after every step of a random
// sequence of pushes, cancels, erases, pops and expiries; and the order of
// those left against a plain list.
RC_GTEST_PROP(WaiterQueueProperty, MatchesAFifoListAndItsEarliestDeadline, ()) {
  WaiterQueue queue;
  std::vector<Waiter> model;
  std::uint64_t next_id = 1;
  const auto steps = *rc::gen::inRange<std::size_t>(0, 150);
  for (std::size_t step = 0; step < steps; ++step) {
    const auto op = *rc::gen::inRange(0, 7);
    const Instant at = at_ms(*rc::gen::inRange<std::int64_t>(0, 8));
    if (op <= 1 || model.empty()) {
      queue.push_back(waiter(next_id, at));
      model.push_back(waiter(next_id++, at));
    } else if (op == 2) {
      const std::uint64_t id = *rc::gen::inRange<std::uint64_t>(0, next_id + 1);
      const auto it = std::find_if(model.begin(), model.end(), [id](const Waiter& w) { return w.id == id; });
      RC_ASSERT(queue.cancel(id).has_value() == (it != model.end()));
      if (it != model.end()) {
        model.erase(it);
      }
    } else if (op == 3) {
      const auto index = *rc::gen::inRange<std::size_t>(0, model.size());
      queue.erase(queue.begin() + static_cast<std::ptrdiff_t>(index));
      model.erase(model.begin() + static_cast<std::ptrdiff_t>(index));
    } else if (op == 4) {
      RC_ASSERT(queue.pop_back().id == model.back().id);
      model.pop_back();
    } else if (op == 5) {
      std::vector<std::uint64_t> due;
      std::erase_if(model, [&](const Waiter& w) {
        if (at >= w.deadline) {
          due.push_back(w.id);
        }
        return at >= w.deadline;
      });
      RC_ASSERT(ids(queue.take_expired(at)) == due);
    } else {
      RC_ASSERT(ids(queue.take_all()) == ids(model));
      model.clear();
    }
    if (*rc::gen::arbitrary<bool>()) {
      Instant earliest = Instant::max();
      for (const Waiter& w : model) {
        earliest = std::min(earliest, w.deadline);
      }
      RC_ASSERT(queue.earliest_deadline() == earliest);
    }
    RC_ASSERT(ids(queue) == ids(model));
  }
}

}  // namespace
}  // namespace seedpool::detail
