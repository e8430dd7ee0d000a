#pragma once

// The subcommands of the simulation test driver (seedpool::sim::main). Each
// returns the process exit status: 0 all good, 1 a run failed, 2 bad input.

#include <seedpool/sim/scenario.hpp>
#include <seedpool/sim/seed_file.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace seedpool::sim::tool {

struct RunArgs {
  std::string scenario;
  std::uint64_t seeds = 1000;
  std::uint64_t first_seed = 1;
  std::string strategy = "random";
  bool swarm = false;
  SyncSwitches sync;
  unsigned jobs = 1;
  std::string shard;  // "I/N"
  std::string json_path;
  std::string save_failures_dir;
  std::uint64_t max_failures = 0;  // stop after this many; 0: never stop
  double time_budget_s = 0;        // start no seed after this many seconds; 0: no limit
  bool check_determinism = false;  // each seed twice, traces compared
  bool quiet = false;              // no progress output
  std::uint64_t max_schedules = 100'000;  // systematic strategies: the schedule budget
};

struct ReplayArgs {
  std::string target;  // a scenario name or a seed file
  std::uint64_t seed = 1;
  bool seed_given = false;
  std::string strategy = "random";
  bool swarm = false;
  SyncSwitches sync;  // with a scenario name
  bool log = false;
  std::string trace_path;
  bool update_hash = false;
  std::string save_path;  // write this run as a seed file
  std::string note;       // the seed file's note: what the run caught
};

int list_command();
int run_command(const RunArgs& args);
// run with a systematic strategy (dfs:preemptions=P, delay:D): a search of
// every schedule within the bound, up to args.max_schedules.
int explore_command(const RunArgs& args, const Scenario& scenario, const ScenarioOptions& options);
int merge_command(const std::vector<std::string>& inputs, const std::string& output);
int replay_command(const ReplayArgs& args);
int shrink_command(const std::string& input, const std::string& output, std::size_t runs_max);

// The driver's name (its file name), which starts its error messages.
std::string program_name();

// Resolves a scenario name, printing the known names on failure.
const Scenario* find_scenario(const std::string& name);
// Parses a strategy, printing the error on failure.
bool parse_strategy_arg(const std::string& text, StrategySpec& out);

}  // namespace seedpool::sim::tool
