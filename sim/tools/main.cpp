// seedpool-sim: deterministic simulation of the pool — sweeps over seeds,
// exact replays, shrinking, determinism checks and merging of sharded sweeps.
// Exit status: 0 all runs passed, 1 a run failed, 2 bad input.

#include "commands.hpp"

#include <CLI/CLI.hpp>

namespace {

// `seedpool-sim run` and its options.
CLI::App* add_run_command(CLI::App& app, seedpool::sim::tool::RunArgs& run) {
  CLI::App* run_cmd = app.add_subcommand("run", "sweep a scenario over many seeds");
  run_cmd->add_option("scenario", run.scenario, "scenario name (see list)")->required();
  run_cmd->add_option("--seeds", run.seeds, "number of seeds")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  run_cmd->add_option("--first-seed", run.first_seed, "first seed of the range");
  run_cmd->add_option("--strategy", run.strategy, "random | pct:D[:K]");
  run_cmd->add_flag("--swarm", run.swarm, "draw a random subset of fault kinds and rates per seed");
  run_cmd->add_option("--jobs", run.jobs, "worker processes on this machine")->check(CLI::Range(1U, 256U));
  run_cmd->add_option("--shard", run.shard, "run only slice I of N of the seeds (I/N, from 0)");
  run_cmd->add_option("--json", run.json_path, "write the results as JSON");
  run_cmd->add_option("--save-failures", run.save_failures_dir, "write a seed file per failure into DIR");
  run_cmd->add_option("--max-failures", run.max_failures, "stop after this many failures (0: run every seed)");
  run_cmd->add_flag("--quiet", run.quiet, "no progress output");
  return run_cmd;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace seedpool::sim::tool;
  CLI::App app{"seedpool-sim: deterministic simulation testing of the seedpool worker pool"};
  app.require_subcommand(1);

  app.add_subcommand("list", "list the scenarios");

  RunArgs run;
  CLI::App* run_cmd = add_run_command(app, run);

  std::vector<std::string> merge_inputs;
  std::string merge_output;
  auto* merge_cmd = app.add_subcommand("merge", "combine the JSON results of sharded sweeps");
  merge_cmd->add_option("inputs", merge_inputs, "JSON files written by run --json")->required();
  merge_cmd->add_option("-o,--output", merge_output, "write the merged JSON here");

  ReplayArgs replay;
  auto* replay_cmd = app.add_subcommand("replay", "re-run one seed, a seed file, or every seed file of a folder");
  replay_cmd->add_option("target", replay.target, "scenario name, seed file or folder of seed files")->required();
  replay_cmd->add_option("--seed", replay.seed, "the seed (with a scenario name)");
  replay_cmd->add_option("--strategy", replay.strategy, "random | pct:D[:K] (with a scenario name)");
  replay_cmd->add_flag("--swarm", replay.swarm, "swarm mode (with a scenario name)");
  replay_cmd->add_flag("--log", replay.log, "print the run's events");
  replay_cmd->add_option("--trace", replay.trace_path, "write a Chrome trace JSON for Perfetto");
  replay_cmd->add_flag("--update-hash", replay.update_hash, "rewrite the seed file's expected hash and outcome");
  replay_cmd->add_option("--save", replay.save_path, "write this run as a seed file (for seeds/)");
  replay_cmd->add_option("--note", replay.note, "with --save: what this seed caught");

  std::string shrink_input;
  std::string shrink_output;
  std::size_t shrink_runs = 2000;
  auto* shrink_cmd = app.add_subcommand("shrink", "minimise a failing seed file's decision list");
  shrink_cmd->add_option("file", shrink_input, "seed file of a failing run")->required();
  shrink_cmd->add_option("-o,--output", shrink_output, "where to write the shrunk seed file");
  shrink_cmd->add_option("--runs", shrink_runs, "replays to try at most")->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));

  std::string check_scenario;
  std::uint64_t check_seeds = 100;
  std::uint64_t check_first = 1;
  std::string check_strategy = "random";
  bool check_swarm = false;
  auto* check_cmd = app.add_subcommand("check-determinism", "run each seed twice and compare traces");
  check_cmd->add_option("scenario", check_scenario, "scenario name")->required();
  check_cmd->add_option("--seeds", check_seeds, "number of seeds")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  check_cmd->add_option("--first-seed", check_first, "first seed");
  check_cmd->add_option("--strategy", check_strategy, "random | pct:D[:K]");
  check_cmd->add_flag("--swarm", check_swarm, "swarm mode");

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
  if (merge_cmd->parsed()) {
    return merge_command(merge_inputs, merge_output);
  }
  if (replay_cmd->parsed()) {
    return replay_command(replay);
  }
  if (shrink_cmd->parsed()) {
    return shrink_command(shrink_input, shrink_output, shrink_runs);
  }
  return check_determinism_command(check_scenario, check_first, check_seeds, check_strategy, check_swarm);
}
