// seedpool-stress: the stress test a team would write without a simulator,
// kept as the baseline that deterministic simulation is measured against.
// It runs a real pool of echo workers (each launched with random misbehaviour
// flags), 32 caller threads with short random deadlines and cancels, and a
// killer thread SIGKILLing random workers, for a time budget; it checks the
// same invariants the simulator checks, as far as a real run can observe
// them, and reports the first violation and when it happened.
//
//   seedpool-stress --echo-worker build/bin/seedpool-echo-worker --seconds 60 [--seed S] [--json FILE]
//
// Exit status: 0 no violation in the budget, 1 a violation, 2 bad input.

#include "options.hpp"
#include "stress.hpp"

#include <seedpool/real/real_world.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

int main(int argc, char** argv) {
  CLI::App app{"seedpool-stress: a randomised stress test of the real pool"};
  seedpool::tool::StressOptions options;
  std::string json_path;
  app.add_option("--echo-worker", options.echo_worker, "path to seedpool-echo-worker")->required()->check(CLI::ExistingFile);
  app.add_option("--seconds", options.seconds, "time budget")->check(CLI::Range(1, 86400));
  app.add_option("--callers", options.callers, "caller threads")->check(CLI::Range(1, 1024));
  app.add_option("--workers", options.workers, "pool size")->check(CLI::Range(1, 256));
  // As text: CLI11 alone reads "-1" into an unsigned option as a wrapped
  // value; the integer parser of `seedpool run` refuses it.
  std::string seed_text;
  app.add_option("--seed", seed_text, "seed of the stress test's own random choices (the OS schedule is not seeded)");
  app.add_option("--json", json_path, "write the result as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    return status == 0 ? 0 : 2;
  }
  if (!seed_text.empty()) {
    const seedpool::Result<std::uint64_t> seed = seedpool::tool::parse_integer(
        {"--seed", 0, std::numeric_limits<std::uint64_t>::max(), "seed"}, seed_text);
    if (!seed) {
      fmt::print(stderr, "seedpool-stress: {}\n", seed.error().message);
      return 2;
    }
    options.seed = seed.value();
  }
  seedpool::tool::StressResult result;
  {
    seedpool::real::RealWorld world;
    result = seedpool::tool::run_stress(world, options);
  }
  const std::string json = fmt::format(
      R"({{"found":{},"kind":"{}","seconds":{:.3f},"calls":{},"message":"{}"}})", result.found ? "true" : "false",
      result.kind, result.seconds, result.calls, seedpool::tool::json_escape(result.message));
  fmt::print("{}\n", json);
  if (!json_path.empty()) {
    std::ofstream(json_path) << json << "\n";
  }
  return result.found ? 1 : 0;
}
