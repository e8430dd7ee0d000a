// The pool's worker table on its own: slots and generations, the counts by
// state kept by the table, and the earliest timer it caches, which must equal
// a scan over every worker after any sequence of changes.

#include "pool/worker_table.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <array>
#include <vector>

namespace seedpool::detail {
namespace {

Instant at_ms(std::int64_t ms) { return Instant::zero() + milliseconds(ms); }

PoolConfig config_of(std::size_t slots) {
  PoolConfig config;
  config.size.max = slots;
  return config;
}

Instant scanned(const WorkerTable& table) {
  Instant next = Instant::max();
  for (const Worker& w : table.all()) {
    next = std::min(next, w.next_timer());
  }
  return next;
}

// Walks `w` along the life cycle to `to` (ready by way of initializing).
void bring_to(WorkerTable& table, Worker& w, WorkerState to) {
  if (to == WorkerState::initializing || to == WorkerState::ready || to == WorkerState::busy) {
    table.set_state(w, WorkerState::initializing);
  }
  if (to == WorkerState::ready || to == WorkerState::busy) {
    table.set_state(w, WorkerState::ready);
  }
  if (to == WorkerState::busy) {
    table.set_state(w, WorkerState::busy);
  }
  if (to == WorkerState::stopping) {
    table.set_state(w, WorkerState::stopping);
  }
}

std::uint32_t lowest_free_slot(const WorkerTable& table, std::size_t slots) {
  for (std::uint32_t slot = 0; slot < slots; ++slot) {
    if (!table.slot_active(slot)) {
      return slot;
    }
  }
  ADD_FAILURE() << "no free slot";
  return 0;
}

TEST(WorkerTable, NewWorkersTakeTheLowestFreeSlotAndItsNextGeneration) {
  const PoolConfig config = config_of(3);
  WorkerTable table(config);
  EXPECT_EQ(lowest_free_slot(table, 3), 0u);
  Worker& first = table.add(lowest_free_slot(table, 3), at_ms(1));
  Worker& second = table.add(lowest_free_slot(table, 3), at_ms(2));
  EXPECT_EQ(first.ref, (WorkerRef{0, 1}));
  EXPECT_EQ(second.ref, (WorkerRef{1, 1}));
  EXPECT_EQ(first.uid, 1u);
  EXPECT_EQ(second.uid, 2u);
  EXPECT_EQ(first.created_at, at_ms(1));
  EXPECT_EQ(first.state(), WorkerState::starting);

  // A stopping worker no longer holds its slot; a dead one leaves the table.
  table.set_state(first, WorkerState::stopping);
  EXPECT_EQ(lowest_free_slot(table, 3), 0u);
  Worker& third = table.add(0, at_ms(3));
  EXPECT_EQ(third.ref, (WorkerRef{0, 2}));
  EXPECT_EQ(third.uid, 3u);
  EXPECT_EQ(table.size(), 3u);
  table.set_state(first, WorkerState::dead);
  table.erase(first);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.find(WorkerRef{0, 1}), nullptr);
  EXPECT_EQ(table.find(WorkerRef{0, 2}), &third);
  EXPECT_EQ(lowest_free_slot(table, 3), 2u);
}

TEST(WorkerTable, IteratesInSlotThenGenerationOrder) {
  const PoolConfig config = config_of(3);
  WorkerTable table(config);
  Worker& a = table.add(2, at_ms(0));
  table.add(0, at_ms(0));
  table.set_state(a, WorkerState::stopping);
  table.add(2, at_ms(0));
  std::vector<WorkerRef> order;
  for (const Worker& w : table.all()) {
    order.push_back(w.ref);
  }
  EXPECT_EQ(order, (std::vector<WorkerRef>{{0, 1}, {2, 1}, {2, 2}}));
}

TEST(WorkerTable, CountsFollowEveryStateChange) {
  const PoolConfig config = config_of(4);
  WorkerTable table(config);
  Worker& a = table.add(0, at_ms(0));
  Worker& b = table.add(1, at_ms(0));
  Worker& c = table.add(2, at_ms(0));
  EXPECT_EQ(table.count_in(WorkerState::starting), 3u);
  EXPECT_EQ(table.count_active(), 3u);
  bring_to(table, a, WorkerState::busy);
  bring_to(table, b, WorkerState::ready);
  bring_to(table, c, WorkerState::stopping);
  EXPECT_EQ(table.count_in(WorkerState::starting), 0u);
  EXPECT_EQ(table.count_in(WorkerState::initializing), 0u);
  EXPECT_EQ(table.count_in(WorkerState::ready), 1u);
  EXPECT_EQ(table.count_in(WorkerState::busy), 1u);
  EXPECT_EQ(table.count_in(WorkerState::stopping), 1u);
  EXPECT_EQ(table.count_active(), 2u);
  table.set_state(c, WorkerState::dead);
  EXPECT_EQ(table.count_in(WorkerState::dead), 1u);
  table.erase(c);
  EXPECT_EQ(table.count_in(WorkerState::dead), 0u);
  EXPECT_EQ(table.count_in(WorkerState::stopping), 0u);
  EXPECT_EQ(table.size(), 2u);
}

// Which timers count depends on the state: a planned ping only for an idle
// worker with no ping in flight, max_lifetime only for a serving worker.
TEST(WorkerTable, NextTimerCountsOnlyTheTimersOfTheState) {
  const PoolConfig config = config_of(1);
  WorkerTable table(config);
  Worker& w = table.add(0, at_ms(0));
  table.set_next_ping_at(w, at_ms(10));
  table.set_recycle_at(w, at_ms(20));
  EXPECT_EQ(w.next_timer(), Instant::max());
  EXPECT_EQ(table.earliest_timer(), Instant::max());
  table.set_state(w, WorkerState::initializing);
  table.set_state(w, WorkerState::ready);
  EXPECT_EQ(table.earliest_timer(), at_ms(10));
  table.ping_sent(w, 7, at_ms(30));
  EXPECT_EQ(w.timers().ping_id, 7u);
  EXPECT_EQ(w.timers().next_ping_at, Instant::max());
  EXPECT_EQ(table.earliest_timer(), at_ms(20));
  table.set_state(w, WorkerState::busy);
  EXPECT_EQ(table.earliest_timer(), at_ms(20));
  table.set_recycle_at(w, Instant::max());
  EXPECT_EQ(table.earliest_timer(), at_ms(30));
  table.clear_ping(w);
  EXPECT_EQ(table.earliest_timer(), Instant::max());
  table.set_state(w, WorkerState::stopping);
  table.set_kill_at(w, at_ms(40));
  table.set_terminate_at(w, at_ms(35));
  EXPECT_EQ(table.earliest_timer(), at_ms(35));
  table.set_terminate_at(w, Instant::max());
  EXPECT_EQ(table.earliest_timer(), at_ms(40));
  table.set_state(w, WorkerState::dead);
  table.erase(w);
  EXPECT_EQ(table.earliest_timer(), Instant::max());
}

// The cached earliest timer against a scan, after every step of a random
// sequence of adds, state changes, timer changes and erases.
RC_GTEST_PROP(WorkerTableProperty, EarliestTimerEqualsAScanAfterEveryChange, ()) {
  constexpr std::size_t slots = 4;
  const PoolConfig config = config_of(slots);
  WorkerTable table(config);
  std::vector<WorkerRef> refs;
  const auto steps = *rc::gen::inRange<std::size_t>(0, 200);
  for (std::size_t step = 0; step < steps; ++step) {
    const auto op = *rc::gen::inRange(0, 10);
    const Instant at = at_ms(*rc::gen::inRange<std::int64_t>(0, 6));
    const Instant maybe = *rc::gen::inRange(0, 4) == 0 ? Instant::max() : at;
    if (op == 0 || refs.empty()) {
      if (table.count_active() < slots) {
        refs.push_back(table.add(lowest_free_slot(table, slots), at).ref);
      }
    } else {
      const WorkerRef ref = refs[*rc::gen::inRange<std::size_t>(0, refs.size())];
      Worker& w = *table.find(ref);
      switch (op) {
        case 1: {
          constexpr std::array states = {WorkerState::initializing, WorkerState::ready, WorkerState::busy,
                                         WorkerState::stopping, WorkerState::dead};
          const WorkerState to = states[*rc::gen::inRange<std::size_t>(0, states.size())];
          if (is_legal_transition(w.state(), to)) {
            table.set_state(w, to);
          }
          if (w.state() == WorkerState::dead) {
            table.erase(w);
            refs.erase(std::find(refs.begin(), refs.end(), ref));
          }
          break;
        }
        case 2: table.ping_sent(w, step + 1, maybe); break;
        case 3: table.clear_ping(w); break;
        case 4: table.set_next_ping_at(w, maybe); break;
        case 5: table.set_recycle_at(w, maybe); break;
        case 6: table.set_terminate_at(w, maybe); break;
        case 7: table.set_kill_at(w, maybe); break;
        default: break;  // only asks
      }
    }
    // Asking resolves a stale cache; changes in a row must keep it right too.
    if (*rc::gen::arbitrary<bool>()) {
      RC_ASSERT(table.earliest_timer() == scanned(table));
    }
    std::size_t active = 0;
    for (const Worker& w : table.all()) {
      active += is_active(w.state()) ? 1U : 0U;
    }
    RC_ASSERT(table.count_active() == active);
  }
  RC_ASSERT(table.earliest_timer() == scanned(table));
}

}  // namespace
}  // namespace seedpool::detail
