#pragma once

// Small textbook concurrency bugs, written for this suite in the style of
// the SCTBench "CS" programs (account, deadlock01, lazy01, reorder_N,
// twostage_N, wronglock, token_ring, circular_buffer, bluetooth_driver),
// a lost wake-up, and two locks whose threads spin on atomics (Peterson's,
// a spinlock): thread-style code on
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
  std::string shows;        // what the failure message of the bug says
  unsigned threads = 0;     // tasks the program starts besides main
  unsigned depth = 0;       // the bug's depth d (PCT: d - 1 change points needed)
  unsigned preemptions = 0; // preemptions a schedule needs to show the bug
  std::function<void(World&, bool fixed)> program;
  // The bounded search that exhausts the fixed variant; empty:
  // dfs:preemptions=<preemptions>, the search that finds the bug. Programs
  // of a dozen tasks or more take a delay bound: under preemption bounding a switch
  // at a block or an exit is free, so every order in which the tasks run is
  // a schedule at bound 0 (11!, 21! and 101! of them here), and no reduction the
  // search makes (none: see explore.hpp) brings that down.
  std::string proof = {};
};

// Every program of the suite, in a stable order.
const std::vector<Classic>& all();

}  // namespace seedpool::classics
