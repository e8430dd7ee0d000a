// seedpool-sim run / merge / list: sweeps over seeds, in one process, in
// several (--jobs), or as one shard of many machines (--shard), with a summary
// of failures by kind and of the fault and recovery paths exercised.

#include "commands.hpp"

#include <seedpool/sim/seed_file.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

namespace seedpool::sim::tool {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// One seed's outcome, as exchanged between --jobs processes (a JSON line).
struct SeedOutcome {
  std::uint64_t seed = 0;
  std::string kind;  // "" when ok
  std::string message;
  std::uint64_t steps = 0;
  std::int64_t virtual_ns = 0;
  std::uint64_t trace_hash = 0;
  Coverage coverage;
  std::string faults;
};

json to_json(const SeedOutcome& o) {
  return json{{"seed", o.seed}, {"kind", o.kind}, {"message", o.message}, {"steps", o.steps},
              {"virtual_ns", o.virtual_ns}, {"trace_hash", o.trace_hash}, {"coverage", o.coverage},
              {"faults", o.faults}};
}

SeedOutcome outcome_from_json(const json& j) {
  SeedOutcome o;
  o.seed = j.at("seed").get<std::uint64_t>();
  o.kind = j.at("kind").get<std::string>();
  o.message = j.at("message").get<std::string>();
  o.steps = j.at("steps").get<std::uint64_t>();
  o.virtual_ns = j.at("virtual_ns").get<std::int64_t>();
  o.trace_hash = j.at("trace_hash").get<std::uint64_t>();
  o.coverage = j.at("coverage").get<Coverage>();
  o.faults = j.at("faults").get<std::string>();
  return o;
}

struct Summary {
  std::uint64_t seeds_run = 0;
  std::uint64_t steps = 0;
  std::int64_t virtual_ns = 0;
  double wall_seconds = 0;
  std::map<std::string, std::vector<std::uint64_t>> failures;  // kind -> seeds
  std::vector<SeedOutcome> failed;                             // in the order seen
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> coverage;  // path -> (runs, hits)

  void add(const SeedOutcome& o) {
    ++seeds_run;
    steps += o.steps;
    virtual_ns += o.virtual_ns;
    for (const auto& [path, hits] : o.coverage) {
      auto& [runs, total] = coverage[path];
      ++runs;
      total += hits;
    }
    if (!o.kind.empty()) {
      failures[o.kind].push_back(o.seed);
      failed.push_back(o);
    }
  }
  std::uint64_t failure_count() const { return failed.size(); }
};

struct Plan {
  const Scenario* scenario = nullptr;
  ScenarioOptions options;
  std::vector<std::uint64_t> seeds;
};

SeedOutcome run_one(const Plan& plan, std::uint64_t seed) {
  ScenarioOptions options = plan.options;
  options.sim.seed = seed;
  const ScenarioResult result = run_scenario(*plan.scenario, options);
  return SeedOutcome{seed,           result.failure_kind, result.run.message, result.run.steps,
                     result.run.virtual_time.ns(), result.run.trace_hash, result.coverage,
                     result.faults.describe()};
}

class Progress {
 public:
  Progress(std::uint64_t total, bool quiet) : total_(total), quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}

  void update(const Summary& s, bool final_line = false) {
    if (quiet_) {
      return;
    }
    const auto now = Clock::now();
    if (!final_line && now - last_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::seconds(5))) {
      return;
    }
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(s.seeds_run) / elapsed : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - s.seeds_run) / rate : 0.0;
    if (tty_) {
      constexpr int width = 30;
      const int filled = static_cast<int>(width * static_cast<double>(s.seeds_run) / static_cast<double>(total_));
      fmt::print(stderr, "\r[{:=<{}}{:<{}}] {}/{} seeds  {:.0f}/s  ETA {:.0f}s  failures {}   ", "", filled, "",
                 width - filled, s.seeds_run, total_, rate, eta, s.failure_count());
      if (final_line) {
        fmt::print(stderr, "\n");
      }
    } else {
      fmt::print(stderr, "{}/{} seeds, {:.0f} seeds/s, ETA {:.0f}s, {} failures\n", s.seeds_run, total_, rate, eta,
                 s.failure_count());
    }
  }
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  std::uint64_t total_;
  bool quiet_;
  bool tty_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_{};
};

bool stop_early(const RunArgs& args, const Summary& s) {
  return args.max_failures != 0 && s.failure_count() >= args.max_failures;
}

void run_serial(const Plan& plan, const RunArgs& args, Summary& summary, Progress& progress) {
  for (const std::uint64_t seed : plan.seeds) {
    summary.add(run_one(plan, seed));
    progress.update(summary);
    if (stop_early(args, summary)) {
      return;
    }
  }
}

// Forks `jobs` children; child j runs every jobs-th seed of the plan and
// streams one JSON line per seed back through a pipe.
void run_parallel(const Plan& plan, const RunArgs& args, Summary& summary, Progress& progress) {
  std::fflush(stdout);
  std::fflush(stderr);
  struct Child {
    pid_t pid;
    int fd;
    std::string buffer;
  };
  std::vector<Child> children;
  for (unsigned j = 0; j < args.jobs; ++j) {
    int fds[2];
    if (pipe(fds) != 0) {
      std::perror("seedpool-sim: pipe");
      std::exit(2);
    }
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      for (std::size_t i = j; i < plan.seeds.size(); i += args.jobs) {
        const std::string line = to_json(run_one(plan, plan.seeds[i])).dump() + "\n";
        if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          _exit(3);
        }
      }
      _exit(0);
    }
    close(fds[1]);
    children.push_back(Child{pid, fds[0], {}});
  }
  std::size_t open = children.size();
  while (open > 0) {
    std::vector<pollfd> polls;
    for (const Child& c : children) {
      polls.push_back(pollfd{c.fd, POLLIN, 0});
    }
    if (poll(polls.data(), polls.size(), 1000) < 0) {
      continue;
    }
    for (std::size_t i = 0; i < children.size(); ++i) {
      if (children[i].fd < 0 || (polls[i].revents & (POLLIN | POLLHUP)) == 0) {
        continue;
      }
      char chunk[65536];
      const ssize_t n = read(children[i].fd, chunk, sizeof chunk);
      if (n <= 0) {
        close(children[i].fd);
        children[i].fd = -1;
        --open;
        continue;
      }
      children[i].buffer.append(chunk, static_cast<std::size_t>(n));
      for (std::size_t nl; (nl = children[i].buffer.find('\n')) != std::string::npos;) {
        summary.add(outcome_from_json(json::parse(children[i].buffer.substr(0, nl))));
        children[i].buffer.erase(0, nl + 1);
      }
      progress.update(summary);
    }
    if (stop_early(args, summary)) {
      for (const Child& c : children) {
        kill(c.pid, SIGKILL);
      }
      break;
    }
  }
  for (const Child& c : children) {
    if (c.fd >= 0) {
      close(c.fd);
    }
    int status = 0;
    waitpid(c.pid, &status, 0);
  }
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_shard(const std::string& text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string::npos) {
    return std::nullopt;
  }
  try {
    std::size_t used = 0;
    const std::uint64_t index = std::stoull(text.substr(0, slash), &used);
    const std::uint64_t count = std::stoull(text.substr(slash + 1));
    if (used != slash || count == 0 || index >= count) {
      return std::nullopt;
    }
    return std::make_pair(index, count);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string replay_for(const Plan& plan, std::uint64_t seed) {
  SeedFile file;
  file.scenario = plan.scenario->name;
  file.seed = seed;
  file.strategy = plan.options.sim.strategy;
  file.swarm = plan.options.swarm;
  return file.replay_command();
}

json summary_json(const RunArgs& args, const Plan& plan, const Summary& s) {
  json failures = json::array();
  for (const SeedOutcome& o : s.failed) {
    failures.push_back({{"seed", o.seed}, {"kind", o.kind}, {"message", o.message}, {"faults", o.faults},
                        {"trace_hash", fmt::format("{:016x}", o.trace_hash)}, {"replay", replay_for(plan, o.seed)}});
  }
  json coverage = json::object();
  for (const auto& [path, counts] : s.coverage) {
    coverage[path] = {{"runs", counts.first}, {"hits", counts.second}};
  }
  return json{{"scenario", plan.scenario->name}, {"strategy", plan.options.sim.strategy.to_string()},
              {"swarm", plan.options.swarm},     {"first_seed", args.first_seed},
              {"seeds", args.seeds},             {"shard", args.shard},
              {"seeds_run", s.seeds_run},        {"steps", s.steps},
              {"virtual_ns", s.virtual_ns},      {"wall_seconds", s.wall_seconds},
              {"failures", failures},            {"coverage", coverage}};
}

void print_summary(const std::string& scenario, const Summary& s) {
  const double wall = s.wall_seconds > 0 ? s.wall_seconds : 1e-9;
  fmt::print("{}: {} seeds in {:.2f}s, {} failed — {:.0f} seeds/s, {:.0f} simulated s per wall s, {:.1f}M steps/s\n",
             scenario, s.seeds_run, s.wall_seconds, s.failure_count(), static_cast<double>(s.seeds_run) / wall,
             static_cast<double>(s.virtual_ns) / 1e9 / wall, static_cast<double>(s.steps) / wall / 1e6);
  if (!s.failures.empty()) {
    fmt::print("failures by kind:\n");
    for (const auto& [kind, seeds] : s.failures) {
      std::string list;
      for (std::size_t i = 0; i < seeds.size() && i < 8; ++i) {
        list += fmt::format("{}{}", i == 0 ? "" : ", ", seeds[i]);
      }
      fmt::print("  {:<24} {:>6}  (seeds {}{})\n", kind, seeds.size(), list, seeds.size() > 8 ? ", ..." : "");
    }
  }
  fmt::print("paths exercised (runs / hits):\n");
  for (const auto& [path, counts] : s.coverage) {
    fmt::print("  {:<32} {:>8} / {}\n", path, counts.first, counts.second);
  }
}

int finish_sweep(const RunArgs& args, const Plan& plan, const Summary& summary) {
  print_summary(plan.scenario->name, summary);
  std::size_t shown = 0;
  for (const SeedOutcome& o : summary.failed) {
    if (++shown > 10) {
      fmt::print("... and {} more failures\n", summary.failed.size() - 10);
      break;
    }
    fmt::print("FAIL seed {} [{}] {}\n  faults: {}\n  replay: {}\n", o.seed, o.kind, o.message, o.faults,
               replay_for(plan, o.seed));
  }
  if (!args.save_failures_dir.empty()) {
    std::filesystem::create_directories(args.save_failures_dir);
    for (const SeedOutcome& o : summary.failed) {
      ScenarioOptions options = plan.options;
      options.sim.seed = o.seed;
      const ScenarioResult result = run_scenario(*plan.scenario, options);  // for the decision list
      const std::string path = fmt::format("{}/{}-{}.json", args.save_failures_dir, plan.scenario->name, o.seed);
      (void)write_seed_file(path, describe_run(plan.scenario->name, options, result, true));
      fmt::print("saved {}\n", path);
    }
  }
  if (!args.json_path.empty()) {
    std::ofstream(args.json_path) << summary_json(args, plan, summary).dump(2) << "\n";
  }
  return summary.failed.empty() ? 0 : 1;
}

}  // namespace

const Scenario* find_scenario(const std::string& name) {
  const Scenario* scenario = ScenarioRegistry::instance().find(name);
  if (scenario == nullptr) {
    std::string known;
    for (const Scenario& s : ScenarioRegistry::instance().all()) {
      known += known.empty() ? s.name : ", " + s.name;
    }
    fmt::print(stderr, "seedpool-sim: unknown scenario '{}'; known scenarios: {}\n", name, known);
  }
  return scenario;
}

bool parse_strategy_arg(const std::string& text, StrategySpec& out) {
  Result<StrategySpec> parsed = parse_strategy(text);
  if (!parsed) {
    fmt::print(stderr, "seedpool-sim: {}\n", parsed.error().message);
    return false;
  }
  out = parsed.value();
  return true;
}

int list_command() {
  for (const Scenario& s : ScenarioRegistry::instance().all()) {
    fmt::print("{:<14} {}\n", s.name, s.description);
  }
  return 0;
}

int run_command(const RunArgs& args) {
  Plan plan;
  plan.scenario = find_scenario(args.scenario);
  if (plan.scenario == nullptr || !parse_strategy_arg(args.strategy, plan.options.sim.strategy)) {
    return 2;
  }
  plan.options.swarm = args.swarm;
  std::pair<std::uint64_t, std::uint64_t> shard{0, 1};
  if (!args.shard.empty()) {
    const auto parsed = parse_shard(args.shard);
    if (!parsed) {
      fmt::print(stderr, "seedpool-sim: invalid --shard '{}': expected I/N with 0 <= I < N, e.g. 3/16\n", args.shard);
      return 2;
    }
    shard = *parsed;
  }
  for (std::uint64_t i = shard.first; i < args.seeds; i += shard.second) {
    plan.seeds.push_back(args.first_seed + i);
  }
  fmt::print("sweep {}: {} seeds from {} (shard {}/{}), strategy {}{}, {} job(s)\n", plan.scenario->name,
             plan.seeds.size(), args.first_seed, shard.first, shard.second, plan.options.sim.strategy.to_string(),
             args.swarm ? ", swarm" : "", args.jobs);
  std::fflush(stdout);
  Summary summary;
  Progress progress(plan.seeds.size(), args.quiet);
  if (args.jobs <= 1) {
    run_serial(plan, args, summary, progress);
  } else {
    run_parallel(plan, args, summary, progress);
  }
  summary.wall_seconds = progress.elapsed();
  progress.update(summary, true);
  return finish_sweep(args, plan, summary);
}

int merge_command(const std::vector<std::string>& inputs, const std::string& output) {
  json merged;
  for (const std::string& path : inputs) {
    std::ifstream in(path);
    const json part = json::parse(in, nullptr, false);
    if (part.is_discarded() || !part.contains("seeds_run")) {
      fmt::print(stderr, "seedpool-sim: '{}' is not a JSON result of 'seedpool-sim run --json'\n", path);
      return 2;
    }
    if (merged.is_null()) {
      merged = part;
      merged["shard"] = "merged";
      continue;
    }
    if (part["scenario"] != merged["scenario"]) {
      fmt::print(stderr, "seedpool-sim: '{}' is for scenario {}, not {}\n", path, part["scenario"].dump(),
                 merged["scenario"].dump());
      return 2;
    }
    for (const char* key : {"seeds_run", "steps", "virtual_ns"}) {
      merged[key] = merged[key].get<std::uint64_t>() + part[key].get<std::uint64_t>();
    }
    merged["wall_seconds"] = std::max(merged["wall_seconds"].get<double>(), part["wall_seconds"].get<double>());
    for (const auto& f : part["failures"]) {
      merged["failures"].push_back(f);
    }
    for (const auto& [path_name, counts] : part["coverage"].items()) {
      json& into = merged["coverage"][path_name];
      into["runs"] = into.value("runs", 0ULL) + counts["runs"].get<std::uint64_t>();
      into["hits"] = into.value("hits", 0ULL) + counts["hits"].get<std::uint64_t>();
    }
  }
  fmt::print("merged {} files: {} seeds, {} failures\n", inputs.size(), merged["seeds_run"].get<std::uint64_t>(),
             merged["failures"].size());
  for (const auto& f : merged["failures"]) {
    fmt::print("FAIL seed {} [{}]\n  replay: {}\n", f["seed"].get<std::uint64_t>(), f["kind"].get<std::string>(),
               f["replay"].get<std::string>());
  }
  if (!output.empty()) {
    std::ofstream(output) << merged.dump(2) << "\n";
  }
  return merged["failures"].empty() ? 0 : 1;
}

}  // namespace seedpool::sim::tool
