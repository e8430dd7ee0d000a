// seedpool-sim: sweeps, replays and determinism checks of simulated programs.
// Exit status: 0 all runs passed, 1 a run failed, 2 bad command-line input.

#include <seedpool/sim/determinism.hpp>
#include <seedpool/sim/sweep.hpp>
#include <seedpool/sim/toys.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>

namespace {

using seedpool::sim::SimWorld;

struct Program {
  std::string description;
  std::function<void(SimWorld&)> body;
};

const std::map<std::string, Program>& programs() {
  static const std::map<std::string, Program> all = {
      {"toy-ordering",
       {"three tasks with a planted ordering bug of depth 2 (PCT finds it quickly)",
        [](SimWorld& w) { seedpool::sim::toys::ordering_bug(w); }}},
      {"toy-deadlock",
       {"two tasks that deadlock on two channels in one seed out of four",
        [](SimWorld& w) { seedpool::sim::toys::lock_order_deadlock(w); }}},
  };
  return all;
}

const Program* find_program(const std::string& name) {
  const auto it = programs().find(name);
  if (it == programs().end()) {
    std::string known;
    for (const auto& [key, _] : programs()) {
      known += known.empty() ? key : ", " + key;
    }
    fmt::print(stderr, "seedpool-sim: unknown program '{}'; known: {}\n", name, known);
    return nullptr;
  }
  return &it->second;
}

std::string replay_command(const std::string& name, std::uint64_t seed, const seedpool::sim::StrategySpec& s) {
  return fmt::format("build/bin/seedpool-sim replay {} --seed {} --strategy {}", name, seed, s.to_string());
}

struct Common {
  std::string program;
  std::string strategy = "random";
  seedpool::sim::SimConfig config;
};

bool resolve_strategy(Common& common) {
  auto parsed = seedpool::sim::parse_strategy(common.strategy);
  if (!parsed) {
    fmt::print(stderr, "seedpool-sim: {}\n", parsed.error().message);
    return false;
  }
  common.config.strategy = parsed.value();
  return true;
}

int run_sweep(Common& common, std::uint64_t first_seed, std::uint64_t seeds, bool keep_going) {
  const Program* program = find_program(common.program);
  if (program == nullptr || !resolve_strategy(common)) {
    return 2;
  }
  seedpool::sim::SweepOptions options;
  options.base = common.config;
  options.first_seed = first_seed;
  options.seeds = seeds;
  options.stop_at_first_failure = !keep_going;
  fmt::print("sweep {} seeds {}..{} strategy {}\n", common.program, first_seed, first_seed + seeds - 1,
             common.config.strategy.to_string());
  const auto start = std::chrono::steady_clock::now();
  const auto result = seedpool::sim::sweep(options, program->body);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("{} seeds in {:.3f}s ({:.0f} seeds/s, {:.1f}M steps/s), {} failed\n", result.seeds_run, wall,
             static_cast<double>(result.seeds_run) / wall, static_cast<double>(result.steps) / wall / 1e6,
             result.failures);
  if (result.first_failure) {
    fmt::print("first failure: seed {} (after {} seeds): {}\nreplay: {}\n", *result.first_failing_seed,
               result.seeds_run, result.first_failure->summary(),
               replay_command(common.program, *result.first_failing_seed, common.config.strategy));
    return 1;
  }
  return 0;
}

int run_replay(Common& common, std::uint64_t seed, bool log) {
  const Program* program = find_program(common.program);
  if (program == nullptr || !resolve_strategy(common)) {
    return 2;
  }
  common.config.seed = seed;
  common.config.keep_trace_events = log;
  const auto result = seedpool::sim::simulate(common.config, program->body);
  if (log) {
    for (const auto& event : result.trace.events()) {
      fmt::print("{}\n", result.trace.describe(event, result.task_names));
    }
  }
  fmt::print("seed {}: {}\n", seed, result.summary());
  return result.ok() ? 0 : 1;
}

int run_check(Common& common, std::uint64_t first_seed, std::uint64_t seeds) {
  const Program* program = find_program(common.program);
  if (program == nullptr || !resolve_strategy(common)) {
    return 2;
  }
  for (std::uint64_t seed = first_seed; seed < first_seed + seeds; ++seed) {
    common.config.seed = seed;
    const auto report = seedpool::sim::check_determinism(common.config, program->body);
    if (!report.deterministic) {
      fmt::print("seed {}: {}\n", seed, report.describe());
      return 1;
    }
  }
  fmt::print("{} seeds of {}: every seed ran twice with identical traces\n", seeds, common.program);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"seedpool-sim: deterministic simulation sweeps, replays and checks"};
  app.require_subcommand(1);
  Common common;
  std::uint64_t seeds = 1000;
  std::uint64_t first_seed = 1;
  std::uint64_t seed = 1;
  bool log = false;
  bool keep_going = false;

  app.add_subcommand("list", "list the simulated programs");
  auto* run = app.add_subcommand("run", "sweep a program over many seeds");
  auto* replay = app.add_subcommand("replay", "re-run one seed exactly");
  auto* check = app.add_subcommand("check-determinism", "run each seed twice and compare traces");
  for (auto* sub : {run, replay, check}) {
    sub->add_option("program", common.program, "program name (see list)")->required();
    sub->add_option("--strategy", common.strategy, "random | pct:D[:K]");
  }
  for (auto* sub : {run, check}) {
    sub->add_option("--seeds", seeds, "number of seeds")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
    sub->add_option("--first-seed", first_seed, "first seed of the range");
  }
  run->add_flag("--keep-going", keep_going, "run every seed instead of stopping at the first failure");
  replay->add_option("--seed", seed, "the seed to replay")->required();
  replay->add_flag("--log", log, "print every trace event");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    return status == 0 ? 0 : 2;
  }
  if (app.got_subcommand("list")) {
    for (const auto& [name, program] : programs()) {
      fmt::print("{:<16} {}\n", name, program.description);
    }
    return 0;
  }
  if (run->parsed()) {
    return run_sweep(common, first_seed, seeds, keep_going);
  }
  if (replay->parsed()) {
    return run_replay(common, seed, log);
  }
  return run_check(common, first_seed, seeds);
}
