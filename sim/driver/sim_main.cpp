// main() of seedpool::sim_main: the simulation test driver for the scenarios
// linked into the binary.

#include <seedpool/sim/driver.hpp>

int main(int argc, char** argv) { return seedpool::sim::main(argc, argv); }
