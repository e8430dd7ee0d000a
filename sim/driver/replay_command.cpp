// The driver's replay / shrink: exact re-runs of one seed, seed file or
// folder of seed files, with a readable log and a Perfetto trace; and
// minimising a failing decision list.

#include "commands.hpp"

#include <seedpool/sim/seed_file.hpp>
#include <seedpool/sim/shrink.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace seedpool::sim::tool {
namespace {

// A replay target: a seed file, or a scenario with --seed.
bool load_target(const ReplayArgs& args, SeedFile& file, bool& from_file) {
  from_file = std::filesystem::is_regular_file(args.target);
  if (from_file) {
    Result<SeedFile> read = read_seed_file(args.target);
    if (!read) {
      fmt::print(stderr, "{}: {}\n", program_name(), read.error().message);
      return false;
    }
    file = std::move(read).value();
    return find_scenario(file.scenario) != nullptr;
  }
  if (args.target.ends_with(".json")) {
    fmt::print(stderr, "{}: seed file '{}' does not exist\n", program_name(), args.target);
    return false;
  }
  if (find_scenario(args.target) == nullptr || !parse_strategy_arg(args.strategy, file.strategy)) {
    return false;
  }
  if (file.strategy.steps_estimate_is_auto()) {
    fmt::print(stderr,
               "{}: replay needs the K of pct:{}: give pct:{}:K with the K the sweep estimated (its output and "
               "replay commands name it)\n",
               program_name(), file.strategy.depth, file.strategy.depth);
    return false;
  }
  if (!args.seed_given) {
    fmt::print(stderr, "{}: replay {} needs --seed S (or give a seed file)\n", program_name(), args.target);
    return false;
  }
  file.scenario = args.target;
  file.seed = args.seed;
  file.swarm = args.swarm;
  file.sync = args.sync;
  return true;
}

void print_log(const ScenarioResult& result) {
  for (const TraceEvent& event : result.run.trace.events()) {
    fmt::print("{}\n", result.run.trace.describe(event, result.run.task_names));
  }
  if (result.run.trace.dropped() > 0) {
    fmt::print("({} later events not kept)\n", result.run.trace.dropped());
  }
}

// Replays every *.json in a folder; each must reproduce its outcome and hash.
int replay_folder(const std::string& folder) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.is_regular_file() && entry.path().extension() == ".json") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  std::size_t diverged = 0;
  for (const auto& path : files) {
    Result<SeedFile> read = read_seed_file(path.string());
    if (!read) {
      fmt::print(stderr, "{}: {}\n", program_name(), read.error().message);
      return 2;
    }
    const SeedFile& file = read.value();
    const Scenario* scenario = find_scenario(file.scenario);
    if (scenario == nullptr) {
      return 2;
    }
    const ScenarioResult result = run_scenario(*scenario, file.options());
    const std::string outcome = result.failure_kind.empty() ? "ok" : result.failure_kind;
    const bool same = outcome == file.expected_outcome && result.run.trace_hash == file.expected_trace_hash;
    diverged += same ? 0 : 1;
    fmt::print("{} {}: expected {} {:016x}, got {} {:016x}\n", same ? "ok  " : "FAIL", path.filename().string(),
               file.expected_outcome, file.expected_trace_hash, outcome, result.run.trace_hash);
  }
  fmt::print("{} seed files replayed, {} diverged\n", files.size(), diverged);
  return diverged == 0 ? 0 : 1;
}

}  // namespace

int replay_command(const ReplayArgs& args) {
  if (std::filesystem::is_directory(args.target)) {
    return replay_folder(args.target);
  }
  SeedFile file;
  bool from_file = false;
  if (!load_target(args, file, from_file)) {
    return 2;
  }
  const Scenario& scenario = *ScenarioRegistry::instance().find(file.scenario);
  ScenarioOptions options = file.options();
  options.keep_timeline = !args.trace_path.empty();
  options.sim.keep_trace_events = args.log || options.keep_timeline;
  ScenarioResult result = run_scenario(scenario, options);
  if (args.log) {
    print_log(result);
  }
  if (!args.trace_path.empty()) {
    add_task_lanes(result.timeline, result.run.trace, result.run.task_names);
    std::ofstream out(args.trace_path);
    out << result.timeline.to_chrome_json();
    if (!out) {
      fmt::print(stderr, "{}: cannot write '{}'\n", program_name(), args.trace_path);
      return 2;
    }
    fmt::print("wrote {} (open it in https://ui.perfetto.dev)\n", args.trace_path);
  }
  fmt::print("{} seed {}: {}\n  faults: {}\n", file.scenario, file.seed, result.run.summary(),
             result.faults.describe());
  const std::string outcome = result.failure_kind.empty() ? "ok" : result.failure_kind;
  if (!args.save_path.empty()) {
    SeedFile saved = describe_run(file.scenario, file.options(), result, file.decisions.has_value());
    saved.note = args.note.empty() ? result.run.message : args.note;
    if (Status written = write_seed_file(args.save_path, saved); !written) {
      fmt::print(stderr, "{}: {}\n", program_name(), written.error().message);
      return 2;
    }
    fmt::print("saved {}\n", args.save_path);
  }
  if (!from_file) {
    return result.run.ok() ? 0 : 1;
  }
  if (args.update_hash) {
    file.expected_trace_hash = result.run.trace_hash;
    file.expected_outcome = outcome;
    if (Status written = write_seed_file(args.target, file); !written) {
      fmt::print(stderr, "{}: {}\n", program_name(), written.error().message);
      return 2;
    }
    fmt::print("updated {}: outcome {}, trace {:016x}\n", args.target, outcome, result.run.trace_hash);
    return 0;
  }
  const bool same_hash = result.run.trace_hash == file.expected_trace_hash;
  const bool same_outcome = outcome == file.expected_outcome;
  fmt::print("expected outcome {} and trace {:016x}: {}\n", file.expected_outcome, file.expected_trace_hash,
             same_hash && same_outcome ? "reproduced exactly" : "DIVERGED");
  return same_hash && same_outcome ? 0 : 1;
}

int shrink_command(const std::string& input, const std::string& output, std::size_t runs_max) {
  Result<SeedFile> read = read_seed_file(input);
  if (!read) {
    fmt::print(stderr, "{}: {}\n", program_name(), read.error().message);
    return 2;
  }
  SeedFile file = std::move(read).value();
  const Scenario* scenario = find_scenario(file.scenario);
  if (scenario == nullptr) {
    return 2;
  }
  const ScenarioResult original = run_scenario(*scenario, file.options());
  if (original.run.ok()) {
    fmt::print(stderr, "{}: {} does not fail (outcome ok); nothing to shrink\n", program_name(), input);
    return 2;
  }
  ScenarioOptions base = file.options();
  base.sim.decisions.reset();
  const ShrinkResult shrunk = shrink(*scenario, base, original.run.decisions, original.failure_kind, runs_max);
  fmt::print("shrunk [{}]: {} decisions ({} non-zero) -> {} decisions ({} non-zero) in {} replays\n",
             original.failure_kind, shrunk.original_size, shrunk.original_nonzero, shrunk.decisions.size(),
             count_nonzero(shrunk.decisions), shrunk.runs);
  fmt::print("still fails: {}\n", shrunk.last_failure.run.summary());
  SeedFile out = file;
  out.decisions = shrunk.decisions;
  out.expected_outcome = shrunk.last_failure.failure_kind;
  out.expected_trace_hash = shrunk.last_failure.run.trace_hash;
  out.note = shrunk.last_failure.run.message;
  out.faults = shrunk.last_failure.faults.describe();
  const std::string path = output.empty() ? input.substr(0, input.rfind(".json")) + ".shrunk.json" : output;
  if (Status written = write_seed_file(path, out); !written) {
    fmt::print(stderr, "{}: {}\n", program_name(), written.error().message);
    return 2;
  }
  fmt::print("wrote {}\nreplay: {} replay {} --log\n", path, replay_program(), path);
  return 0;
}

}  // namespace seedpool::sim::tool
