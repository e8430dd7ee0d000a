// The driver's run with a systematic strategy: a search of every schedule
// of a scenario within a preemption or delay bound (sim/explore.hpp), up to
// a schedule budget. A failing schedule has no seed: it is saved as a seed
// file with its decision list, and replayed from that file.

#include "commands.hpp"

#include <seedpool/sim/explore.hpp>
#include <seedpool/sim/seed_file.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace seedpool::sim::tool {
namespace {

using nlohmann::json;

// Where a failing schedule is saved when no --save-failures is given.
constexpr std::string_view default_failure_dir = "seedpool-failures";

// "dfs:preemptions=2" -> "dfs-preemptions-2", for a file name.
std::string file_safe(std::string text) {
  std::replace_if(text.begin(), text.end(), [](char c) { return c == ':' || c == '='; }, '-');
  return text;
}

// Saves the failing schedule as a seed file; its path, or "" after an
// error (printed).
std::string save_failure(const RunArgs& args, const Scenario& scenario, const ScenarioOptions& options,
                         const ExploreReport& report) {
  const ScenarioOptions replay = failure_options(options, report);
  SeedFile file = describe_run(scenario.name, replay, run_scenario(scenario, replay), true);
  const std::filesystem::path dir(args.save_failures_dir.empty() ? std::string(default_failure_dir)
                                                                 : args.save_failures_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string path = (dir / fmt::format("{}-{}-schedule-{}.json", scenario.name,
                                              file_safe(report.strategy.to_string()), report.failure->schedule))
                               .string();
  if (ec) {
    fmt::print(stderr, "{}: cannot create '{}': {}\n", program_name(), dir.string(), ec.message());
    return {};
  }
  if (Status written = write_seed_file(path, file); !written) {
    fmt::print(stderr, "{}: {}\n", program_name(), written.error().message);
    return {};
  }
  if (file.expected_trace_hash != report.failure->trace_hash) {
    fmt::print(stderr, "{}: the failing schedule replayed with trace {:016x}, not {:016x}\n", program_name(),
               file.expected_trace_hash, report.failure->trace_hash);
  }
  return path;
}

bool write_json(const std::string& path, const Scenario& scenario, const ExploreReport& report,
                const std::string& seed_file) {
  json failure = nullptr;
  if (report.failure) {
    failure = {{"schedule", report.failure->schedule},
               {"kind", report.failure->kind},
               {"message", report.failure->message},
               {"trace_hash", fmt::format("{:016x}", report.failure->trace_hash)},
               {"seed_file", seed_file},
               {"replay", seed_file.empty() ? "" : fmt::format("{} replay {}", replay_program(), seed_file)}};
  }
  const json doc{{"scenario", scenario.name},
                 {"strategy", report.strategy.to_string()},
                 {"schedules", report.schedules},
                 {"runs", report.runs},
                 {"deviations_max", report.deviations_max},
                 {"exhausted", report.exhausted},
                 {"stopped", report.exhausted || report.failure ? "" : "schedule-budget"},
                 {"steps", report.steps},
                 {"wall_seconds", report.wall_seconds},
                 {"failure", failure}};
  std::ofstream out(path);
  out << doc.dump(2) << "\n";
  return static_cast<bool>(out);
}

}  // namespace

int explore_command(const RunArgs& args, const Scenario& scenario, const ScenarioOptions& options) {
  if (!args.shard.empty()) {
    fmt::print(stderr, "{}: --shard does not apply to {}: a search runs its schedules in order in one process\n",
               program_name(), options.sim.strategy.to_string());
    return 2;
  }
  ExploreSpec spec;
  spec.strategy = options.sim.strategy;
  spec.schedules_max = args.max_schedules;
  spec.check_determinism = args.check_determinism;
  spec.progress = !args.quiet;
  fmt::print("explore {}: strategy {}, at most {} schedules{}; every data decision 0, so no fault fires{}\n",
             scenario.name, spec.strategy.to_string(), spec.schedules_max,
             spec.check_determinism ? ", each schedule twice" : "",
             args.jobs > 1 || args.swarm ? " (--jobs, --swarm and --seeds do not apply)" : "");
  std::fflush(stdout);
  const ExploreReport report = explore(scenario, options, spec);
  const double wall = report.wall_seconds > 0 ? report.wall_seconds : 1e-9;
  fmt::print(
      "{}: {} schedules in {:.2f}s ({:.0f}/s; {} runs with the reruns that give children), {} steps, at most {} "
      "choice points a schedule, up to {} deviations\n",
      scenario.name, report.schedules, report.wall_seconds, static_cast<double>(report.schedules) / wall, report.runs,
      report.steps, report.choice_points_max, report.deviations_max);
  fmt::print("{}\n", report.describe());
  int status = report.ok() ? 0 : 1;
  std::string seed_file;
  if (report.failure) {
    seed_file = save_failure(args, scenario, options, report);
    if (seed_file.empty()) {
      status = 2;
    } else {
      fmt::print("saved {}\n  replay: {} replay {}\n", seed_file, replay_program(), seed_file);
    }
  }
  if (!args.json_path.empty() && !write_json(args.json_path, scenario, report, seed_file)) {
    fmt::print(stderr, "{}: cannot write '{}'\n", program_name(), args.json_path);
    status = 2;
  }
  return status;
}

}  // namespace seedpool::sim::tool
