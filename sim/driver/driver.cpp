// seedpool::sim::main: sweeps over seeds, systematic searches of schedules
// within a preemption or delay bound, exact replays, shrinking,
// determinism checks and merging of sharded sweeps, for the scenarios the
// binary registers. Exit status: 0 all runs passed, 1 a run failed, 2 bad
// input.

#include "commands.hpp"

#include <seedpool/sim/driver.hpp>
#include <seedpool/sim/seed_file.hpp>

#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>

namespace seedpool::sim {
namespace {

// A seed, or a count as large: digits only, within 64 bits. CLI11 alone
// reads "-5" into an unsigned option as a wrapped value and clamps one past
// 2^64 - 1.
const CLI::Validator any_seed(
    [](std::string& text) -> std::string {
      std::uint64_t value = 0;
      const char* end = text.data() + text.size();
      const auto [stop, error] = std::from_chars(text.data(), end, value);
      if (text.empty() || error != std::errc() || stop != end) {
        return "'" + text + "' is not a whole number in 0.." +
               std::to_string(std::numeric_limits<std::uint64_t>::max());
      }
      return {};
    },
    "UINT64");

// The SimConfig switches for thread code (SyncSwitches); a seed file and a
// replay command carry them.
void add_sync_flags(CLI::App& cmd, SyncSwitches& sync) {
  cmd.add_flag("--no-park-spinners{false}", sync.park_spinners,
               "run every interleaving of a spin-wait's reads instead of parking the spinner (slower)");
  cmd.add_flag("--notify-fifo", sync.notify_one_fifo,
               "ConditionVariable::notify_one wakes the longest waiter, not the one the strategy chooses");
  cmd.add_flag("--spurious-wakeups", sync.spurious_wakeups,
               "every condition wait may also wake without a notification, as the standard allows");
}

// The options of a sweep, shared by `run` and `check-determinism`.
void add_sweep_options(CLI::App& cmd, tool::RunArgs& run) {
  cmd.add_option("scenario", run.scenario, "scenario name (see list)")->required();
  cmd.add_option("--seeds", run.seeds, "number of seeds")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  cmd.add_option("--first-seed", run.first_seed, "first seed of the range")->check(any_seed);
  cmd.add_option("--strategy", run.strategy,
                 "random | pct:D (K estimated from a warm-up) | pct:D:K | dfs:preemptions=P | delay:D "
                 "(the last two search every schedule within the bound instead of sweeping seeds)");
  cmd.add_flag("--swarm", run.swarm, "draw a random subset of fault sites and rates per seed");
  add_sync_flags(cmd, run.sync);
  cmd.add_option("--jobs", run.jobs, "processes on this machine (a crashing seed is then reported, not fatal)")
      ->check(CLI::Range(1U, 256U));
  cmd.add_option("--shard", run.shard, "run only slice I of N of the seeds (I/N, from 0)");
  cmd.add_option("--json", run.json_path, "write the results as JSON");
  cmd.add_option("--save-failures", run.save_failures_dir, "write a seed file per failure into DIR");
  cmd.add_option("--max-failures", run.max_failures, "stop after this many failures (0: run every seed)")
      ->check(any_seed);
  cmd.add_option("--time-budget", run.time_budget_s, "start no seed after this many seconds (0: no limit)")
      ->check(CLI::Range(0.0, 1e7));
  cmd.add_flag("--quiet", run.quiet, "no progress output");
  cmd.add_option("--max-schedules", run.max_schedules,
                 "with dfs:preemptions=P or delay:D: stop the search after this many schedules")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace seedpool::sim::tool;
  const std::string program = argc > 0 && argv[0] != nullptr ? argv[0] : "seedpool-sim";
  set_replay_program(program);
  CLI::App app{"deterministic simulation testing: sweeps, replays and shrinking of the scenarios in " +
               std::filesystem::path(program).filename().string()};
  app.require_subcommand(1);

  app.add_subcommand("list", "list the scenarios");

  RunArgs run;
  CLI::App* run_cmd = app.add_subcommand(
      "run", "sweep a scenario over many seeds, or search its schedules (dfs:preemptions=P, delay:D)");
  add_sweep_options(*run_cmd, run);
  run_cmd->add_flag("--check-determinism", run.check_determinism, "run each seed twice and compare the traces");

  RunArgs check;
  check.seeds = 100;
  CLI::App* check_cmd = app.add_subcommand("check-determinism", "run each seed twice and compare the traces");
  add_sweep_options(*check_cmd, check);

  std::vector<std::string> merge_inputs;
  std::string merge_output;
  auto* merge_cmd = app.add_subcommand("merge", "combine the JSON results of sharded sweeps");
  merge_cmd->add_option("inputs", merge_inputs, "JSON files written by run --json")->required();
  merge_cmd->add_option("-o,--output", merge_output, "write the merged JSON here");

  ReplayArgs replay;
  auto* replay_cmd = app.add_subcommand("replay", "re-run one seed, a seed file, or every seed file of a folder");
  replay_cmd->add_option("target", replay.target, "scenario name, seed file or folder of seed files")->required();
  replay_cmd->add_option("--seed", replay.seed, "the seed (with a scenario name)")->check(any_seed);
  replay_cmd->add_option("--strategy", replay.strategy,
                         "random | pct:D:K | dfs:preemptions=P | delay:D (with a scenario name)");
  replay_cmd->add_flag("--swarm", replay.swarm, "swarm mode (with a scenario name)");
  add_sync_flags(*replay_cmd, replay.sync);
  replay_cmd->add_flag("--log", replay.log, "print the run's events");
  replay_cmd->add_option("--trace", replay.trace_path, "write a Chrome trace JSON for Perfetto");
  replay_cmd->add_flag("--update-hash", replay.update_hash, "rewrite the seed file's expected hash and outcome");
  replay_cmd->add_option("--save", replay.save_path, "write this run as a seed file (for a regression corpus)");
  replay_cmd->add_option("--note", replay.note, "with --save: what this seed caught");

  std::string shrink_input;
  std::string shrink_output;
  std::size_t shrink_runs = 2000;
  auto* shrink_cmd = app.add_subcommand("shrink", "minimise a failing seed file's decision list");
  shrink_cmd->add_option("file", shrink_input, "seed file of a failing run")->required();
  shrink_cmd->add_option("-o,--output", shrink_output, "where to write the shrunk seed file");
  shrink_cmd->add_option("--runs", shrink_runs, "replays to try at most")->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    return status == 0 ? 0 : 2;
  }
  replay.seed_given = replay_cmd->count("--seed") > 0;
  if (app.got_subcommand("list")) {
    return list_command();
  }
  if (run_cmd->parsed()) {
    return run_command(run);
  }
  if (check_cmd->parsed()) {
    check.check_determinism = true;
    return run_command(check);
  }
  if (merge_cmd->parsed()) {
    return merge_command(merge_inputs, merge_output);
  }
  if (replay_cmd->parsed()) {
    return replay_command(replay);
  }
  return shrink_command(shrink_input, shrink_output, shrink_runs);
}

}  // namespace seedpool::sim
