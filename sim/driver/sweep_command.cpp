// The driver's run / check-determinism / merge / list: sweeps over seeds
// through the Sweeper (sim/sweeper.hpp), in one process, in several
// (--jobs), or as one shard of many machines (--shard), with a summary of
// failures by kind and of the fault and recovery paths exercised.

#include "commands.hpp"

#include <seedpool/sim/seed_file.hpp>
#include <seedpool/sim/sweeper.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

namespace seedpool::sim::tool {
namespace {

using nlohmann::json;

void print_summary(const std::string& scenario, const SweepReport& r) {
  const double wall = r.wall_seconds > 0 ? r.wall_seconds : 1e-9;
  fmt::print("{}: {} seeds in {:.2f}s, {} failed — {:.0f} seeds/s, {:.0f} simulated s per wall s, {:.1f}M steps/s\n",
             scenario, r.seeds_run, r.wall_seconds, r.failed.size(), static_cast<double>(r.seeds_run) / wall,
             static_cast<double>(r.virtual_ns) / 1e9 / wall, static_cast<double>(r.steps) / wall / 1e6);
  if (!r.stopped.empty()) {
    fmt::print("stopped ({}) with {} of {} seeds run\n", r.stopped, r.seeds_run, r.planned);
  }
  const auto by_kind = r.failures_by_kind();
  if (!by_kind.empty()) {
    fmt::print("failures by kind:\n");
    for (const auto& [kind, seeds] : by_kind) {
      std::string list;
      for (std::size_t i = 0; i < seeds.size() && i < 8; ++i) {
        list += fmt::format("{}{}", i == 0 ? "" : ", ", seeds[i]);
      }
      fmt::print("  {:<24} {:>6}  (seeds {}{})\n", kind, seeds.size(), list, seeds.size() > 8 ? ", ..." : "");
    }
  }
  if (!r.coverage.empty()) {
    fmt::print("paths exercised (runs / hits):\n");
  }
  for (const auto& [path, counts] : r.coverage) {
    fmt::print("  {:<32} {:>8} / {}\n", path, counts.first, counts.second);
  }
}

int finish_sweep(const RunArgs& args, const Scenario& scenario, const ScenarioOptions& options, const SweepPlan& plan,
                 const SweepReport& report) {
  print_summary(scenario.name, report);
  std::size_t shown = 0;
  for (const SeedOutcome& o : report.failed) {
    if (++shown > 10) {
      fmt::print("... and {} more failures\n", report.failed.size() - 10);
      break;
    }
    const SeedFile file = seed_file_for(scenario.name, options, o.seed);
    fmt::print("FAIL seed {} {}\n  faults: {}\n  replay: {}\n", o.seed, o.describe(), o.faults,
               file.replay_command());
  }
  int status = report.failed.empty() && report.stopped != "incomplete" ? 0 : 1;
  if (!args.save_failures_dir.empty()) {
    const Result<std::vector<std::string>> saved = save_failures(args.save_failures_dir, scenario, options, report);
    if (!saved) {
      fmt::print(stderr, "{}: {}\n", program_name(), saved.error().message);
      status = 2;
    } else {
      for (const std::string& path : saved.value()) {
        fmt::print("saved {}\n", path);
      }
    }
  }
  if (!args.json_path.empty()) {
    std::ofstream out(args.json_path);
    out << report_json(report, scenario, options, plan);
    if (!out) {
      fmt::print(stderr, "{}: cannot write '{}'\n", program_name(), args.json_path);
      status = 2;
    }
  }
  return status;
}

}  // namespace

// The scenarios the driver serves: the binary's own, or the built-in ones
// when it registers none.
std::vector<const Scenario*> served_scenarios() {
  const std::vector<Scenario>& all = ScenarioRegistry::instance().all();
  const bool own = std::any_of(all.begin(), all.end(), [](const Scenario& s) { return !s.builtin; });
  std::vector<const Scenario*> served;
  for (const Scenario& s : all) {
    if (!own || !s.builtin) {
      served.push_back(&s);
    }
  }
  return served;
}

const Scenario* find_scenario(const std::string& name) {
  const Scenario* scenario = ScenarioRegistry::instance().find(name);
  if (scenario == nullptr) {
    std::string known;
    for (const Scenario* s : served_scenarios()) {
      known += known.empty() ? s->name : ", " + s->name;
    }
    fmt::print(stderr, "{}: unknown scenario '{}'; known scenarios: {}\n", program_name(), name, known);
  }
  return scenario;
}

bool parse_strategy_arg(const std::string& text, StrategySpec& out) {
  Result<StrategySpec> parsed = parse_strategy(text);
  if (!parsed) {
    fmt::print(stderr, "{}: {}\n", program_name(), parsed.error().message);
    return false;
  }
  out = parsed.value();
  return true;
}

int list_command() {
  const std::vector<const Scenario*> served = served_scenarios();
  std::size_t width = 0;
  for (const Scenario* s : served) {
    width = std::max(width, s->name.size());
  }
  for (const Scenario* s : served) {
    fmt::print("{:<{}}  {}\n", s->name, width, s->description);
  }
  return 0;
}

int run_command(const RunArgs& args) {
  const Scenario* scenario = find_scenario(args.scenario);
  ScenarioOptions options;
  if (scenario == nullptr || !parse_strategy_arg(args.strategy, options.sim.strategy)) {
    return 2;
  }
  options.swarm = args.swarm;
  args.sync.apply_to(options.sim);
  if (options.sim.strategy.systematic()) {
    return explore_command(args, *scenario, options);
  }
  if (args.first_seed > std::numeric_limits<std::uint64_t>::max() - (args.seeds - 1)) {
    fmt::print(stderr, "{}: --first-seed {} with --seeds {} runs past the largest seed, {}\n", program_name(),
               args.first_seed, args.seeds, std::numeric_limits<std::uint64_t>::max());
    return 2;
  }
  SweepPlan plan;
  plan.first_seed = args.first_seed;
  plan.seeds = args.seeds;
  plan.jobs = args.jobs;
  plan.max_failures = args.max_failures;
  plan.time_budget = std::chrono::milliseconds(static_cast<std::int64_t>(args.time_budget_s * 1000));
  plan.progress = !args.quiet;
  if (!args.shard.empty()) {
    const auto shard = parse_shard(args.shard);
    if (!shard) {
      fmt::print(stderr, "{}: --shard: {}\n", program_name(), shard.error().message);
      return 2;
    }
    std::tie(plan.shard_index, plan.shard_count) = shard.value();
  }
  // Every replay command and seed file below names the resolved strategy.
  const ResolvedStrategy resolved = resolve_scenario_strategy(*scenario, options, plan);
  options.sim.strategy = resolved.strategy;
  fmt::print("sweep {}: {} seeds from {} (shard {}/{}), strategy {}{}{}{}, {} job(s)\n", scenario->name,
             plan.planned(), plan.first_seed, plan.shard_index, plan.shard_count, resolved.describe(),
             options.swarm ? ", swarm" : "", SyncSwitches::of(options.sim).flags(),
             args.check_determinism ? ", each seed twice" : "", plan.jobs);
  std::fflush(stdout);
  const SweepReport report = sweep_scenario(*scenario, options, plan, args.check_determinism);
  return finish_sweep(args, *scenario, options, plan, report);
}

// Adds the JSON reports of the shards of one plan: counts and coverage
// summed, failures in seed order, so that the result equals the report of
// one process running every seed.
int merge_command(const std::vector<std::string>& inputs, const std::string& output) {
  json merged;
  for (const std::string& path : inputs) {
    std::ifstream in(path);
    const json part = json::parse(in, nullptr, false);
    const auto bad = [&](std::string_view why) {
      fmt::print(stderr, "{}: '{}' {}\n", program_name(), path, why);
      return 2;
    };
    if (!in.is_open() && part.is_discarded()) {
      return bad("cannot be read");
    }
    if (part.is_discarded() || !part.is_object() || !part.contains("seeds_run") || !part.contains("failures")) {
      return bad("is not a JSON result of 'run --json'");
    }
    if (merged.is_null()) {
      merged = part;
      merged["shard"] = "merged";
      continue;
    }
    for (const char* key : {"scenario", "strategy", "swarm", "sync", "first_seed", "seeds"}) {
      if (part.value(key, json()) != merged.value(key, json())) {
        return bad(fmt::format("is of another sweep: its {} is {}, not {}", key, part.value(key, json()).dump(),
                               merged.value(key, json()).dump()));
      }
    }
    try {
      for (const char* key : {"seeds_planned", "seeds_run", "steps", "virtual_ns"}) {
        merged[key] = merged[key].get<std::uint64_t>() + part.at(key).get<std::uint64_t>();
      }
      merged["wall_seconds"] = std::max(merged["wall_seconds"].get<double>(), part.at("wall_seconds").get<double>());
      if (merged.value("stopped", std::string()).empty()) {
        merged["stopped"] = part.value("stopped", std::string());
      }
      for (const auto& f : part.at("failures")) {
        merged["failures"].push_back(f);
      }
      for (const auto& [key, counts] : part.at("coverage").items()) {
        json& into = merged["coverage"][key];
        into["runs"] = into.value("runs", 0ULL) + counts.at("runs").get<std::uint64_t>();
        into["hits"] = into.value("hits", 0ULL) + counts.at("hits").get<std::uint64_t>();
      }
    } catch (const json::exception& e) {
      return bad(fmt::format("has a malformed field: {}", e.what()));
    }
  }
  std::sort(merged["failures"].begin(), merged["failures"].end(),
            [](const json& a, const json& b) { return a.value("seed", 0ULL) < b.value("seed", 0ULL); });
  fmt::print("merged {} files: {} seeds, {} failures\n", inputs.size(), merged["seeds_run"].get<std::uint64_t>(),
             merged["failures"].size());
  for (const auto& f : merged["failures"]) {
    fmt::print("FAIL seed {} [{}]\n  replay: {}\n", f.value("seed", 0ULL), f.value("kind", std::string()),
               f.value("replay", std::string()));
  }
  if (!output.empty()) {
    std::ofstream out(output);
    out << merged.dump(2) << "\n";
    if (!out) {
      fmt::print(stderr, "{}: cannot write '{}'\n", program_name(), output);
      return 2;
    }
  }
  return merged["failures"].empty() ? 0 : 1;
}

std::string program_name() { return std::filesystem::path(replay_program()).filename().string(); }

}  // namespace seedpool::sim::tool
