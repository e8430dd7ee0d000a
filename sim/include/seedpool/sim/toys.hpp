#pragma once

// Small programs with planted concurrency bugs. They demonstrate the
// simulator and calibrate its strategies before there is a pool to test.

#include <seedpool/sim/sim_world.hpp>

#include <cstdint>
#include <string_view>

namespace seedpool::sim::toys {

// Three tasks. A takes `a_lead` steps, then two adjacent events a1, a2; B
// takes `b_lead` steps, then event b; C only adds noise. The run fails when b
// falls between a1 and a2: an ordering bug of depth 2 (a1 before b, b before
// a2). PCT with depth 2 finds it far sooner than a random walk. It needs
// one preemption (of A between a1 and a2) and one delay.
struct OrderingBug {
  unsigned a_lead = 2;
  unsigned b_lead = 24;
  unsigned c_steps = 15;
  bool fixed = false;  // A makes a1 and a2 in one step: the bug cannot happen
};
void ordering_bug(SimWorld& world, const OrderingBug& shape = {});

// About how many steps ordering_bug takes; a good PCT step estimate for it.
constexpr std::uint64_t ordering_bug_steps = 50;

// Two tasks that each receive before they send on two unbuffered-like
// channels when a decision says so: some seeds deadlock, and the report
// names both tasks and their waits.
void lock_order_deadlock(SimWorld& world);

}  // namespace seedpool::sim::toys
