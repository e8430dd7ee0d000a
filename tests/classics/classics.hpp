#pragma once

// Small textbook concurrency bugs, written for this suite in the style of
// the SCTBench "CS" programs (account, deadlock01, lazy01, reorder_N,
// twostage_N, wronglock, token_ring, circular_buffer): thread-style code on
// seedpool's primitives (<seedpool/core/sync.hpp>), each with a fixed
// variant. A bug shows as a failed SEEDPOOL_ASSERT or a deadlock.

#include <seedpool/core/world.hpp>

#include <functional>
#include <string>
#include <vector>

namespace seedpool::classics {

struct Classic {
  std::string name;
  std::string bug;          // what goes wrong
  unsigned threads = 0;     // tasks the program starts besides main
  unsigned depth = 0;       // the bug's depth d (PCT: d - 1 change points needed)
  unsigned preemptions = 0; // preemptions a schedule needs to show the bug
  std::function<void(World&, bool fixed)> program;
  // The bounded search that finds the bug and exhausts the fix; empty:
  // dfs:preemptions=<preemptions>. Programs with many threads that block
  // take a delay bound: each block is a free switch under preemption
  // bounding, so the orders in which a dozen threads start are all explored.
  std::string systematic = {};
  // Whether that search finds the bug. Not for reorder_10 and twostage_20:
  // the checker runs last in the base order, so reaching it between a
  // writer's two steps needs more delays than the bound allows, and the
  // preemption-bounded tree is too large without partial-order reduction
  // (200,000 schedules did not exhaust dfs:preemptions=1). PCT finds both.
  bool systematic_finds = true;
};

// Every program of the suite, in a stable order.
const std::vector<Classic>& all();

}  // namespace seedpool::classics
