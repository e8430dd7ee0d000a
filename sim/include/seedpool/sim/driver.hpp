#pragma once

// The simulation test driver: the whole seedpool-sim command line for the
// scenarios a binary registers (SEEDPOOL_SCENARIO). Link the target
// seedpool::sim_main to get a main() that calls it, as GTest::gtest_main
// does for tests; or call seedpool::sim::main from a main of your own.
//
//   my-sim list
//   my-sim run my-scenario --seeds 10000 --jobs 8 --swarm --json out.json
//   my-sim replay my-scenario --seed 42 --log --trace t.json
//   my-sim replay failures/my-scenario-42.json
//   my-sim shrink failures/my-scenario-42.json
//   my-sim check-determinism my-scenario --seeds 200
//   my-sim merge shard-*.json -o all.json
//
// A binary that registers scenarios of its own serves those; one that
// registers none (seedpool-sim) serves the built-in pool scenarios. Every
// replay command the driver prints names the binary as it was invoked.
// Exit status: 0 every run passed, 1 a run failed, 2 bad input.

namespace seedpool::sim {

int main(int argc, char** argv);

}  // namespace seedpool::sim
