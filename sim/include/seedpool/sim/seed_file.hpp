#pragma once

// Seed files: a failing (or once-failing) run written down so that it can be
// replayed exactly — the scenario, the seed or decision list, the strategy and
// options, the expected outcome and trace hash, and a line on what it caught.
// The regression corpus in seeds/ is a folder of these.

#include <seedpool/core/result.hpp>
#include <seedpool/sim/scenario.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace seedpool::sim {

inline constexpr int seed_file_format_version = 1;

// The switches of SimConfig that change how thread code (<seedpool/core/sync.hpp>)
// runs, and so which run a seed is: a seed file and a replay command carry
// them when they differ from the defaults (seedpool-sim's --no-park-spinners,
// --notify-fifo, --spurious-wakeups).
struct SyncSwitches {
  bool park_spinners = true;
  bool notify_one_fifo = false;
  bool spurious_wakeups = false;

  static SyncSwitches of(const SimConfig& config);
  void apply_to(SimConfig& config) const;
  // The command-line flags that set them, each after a space; empty when
  // every switch has its default.
  std::string flags() const;
  bool operator==(const SyncSwitches&) const = default;
};

struct SeedFile {
  std::string scenario;
  std::uint64_t seed = 0;
  std::optional<std::vector<std::uint64_t>> decisions;  // replayed instead of the seed when set
  StrategySpec strategy;
  bool swarm = false;
  SyncSwitches sync;
  std::string expected_outcome = "ok";  // "ok" or a failure kind ("reply-mismatch", "deadlock")
  std::uint64_t expected_trace_hash = 0;
  std::string note;                     // what it caught, for the reader
  std::string faults;                   // the fault rates of the run, for the reader

  // The options that replay this file.
  ScenarioOptions options() const;
  // The one-line command that replays this seeded run: `<program> replay
  // <scenario> --seed ... --strategy ...` where program is replay_program()
  // and the strategy is resolved (pct:D:K). A schedule of a systematic
  // search has no seed: it replays from its file (`<program> replay FILE`).
  std::string replay_command() const;
};

// A seed file for seed `seed` of `scenario` under `options`: what replays it
// (strategy, swarm, sync switches), without an outcome yet.
SeedFile seed_file_for(const std::string& scenario, const ScenarioOptions& options, std::uint64_t seed);

// The program replay commands name. The driver (seedpool::sim::main) sets
// it to the name it was invoked by; unset, it is build/bin/seedpool-sim,
// which replays the built-in scenarios.
void set_replay_program(std::string program);
const std::string& replay_program();

// A seed file describing `result`, a run of `scenario` under `options`.
SeedFile describe_run(const std::string& scenario, const ScenarioOptions& options, const ScenarioResult& result,
                      bool with_decisions);

// The file's JSON text (format "seedpool-seed", format_version 1).
std::string to_json(const SeedFile& file);
// Parses a seed file; errors name the file's problem (malformed JSON, a
// missing field, another format version).
Result<SeedFile> parse_seed_file(std::string_view text);

// Writes to_json(file) to `path`; io_error when it cannot.
Status write_seed_file(const std::string& path, const SeedFile& file);
// Reads and parses `path`; invalid_argument naming the path and the problem.
Result<SeedFile> read_seed_file(const std::string& path);

}  // namespace seedpool::sim
