#include <seedpool/sim/sweeper.hpp>

#include <seedpool/sim/determinism.hpp>
#include <seedpool/sim/seed_file.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

namespace seedpool::sim {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

json to_json(const SeedOutcome& o) {
  return json{{"seed", o.seed},         {"kind", o.kind},         {"message", o.message},
              {"invariant", o.invariant}, {"steps", o.steps},     {"virtual_ns", o.virtual_ns},
              {"trace_hash", o.trace_hash}, {"coverage", o.coverage}, {"faults", o.faults}};
}

// A result line from a child; nullopt when it is not one (a torn line).
std::optional<SeedOutcome> outcome_from_line(std::string_view line) {
  const json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return std::nullopt;
  }
  try {
    SeedOutcome o;
    o.seed = j.at("seed").get<std::uint64_t>();
    o.kind = j.at("kind").get<std::string>();
    o.message = j.at("message").get<std::string>();
    o.invariant = j.at("invariant").get<bool>();
    o.steps = j.at("steps").get<std::uint64_t>();
    o.virtual_ns = j.at("virtual_ns").get<std::int64_t>();
    o.trace_hash = j.at("trace_hash").get<std::uint64_t>();
    o.coverage = j.at("coverage").get<Coverage>();
    o.faults = j.at("faults").get<std::string>();
    return o;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    return fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  }
  if (WIFEXITED(status)) {
    return fmt::format("exited with status {}", WEXITSTATUS(status));
  }
  return fmt::format("ended with wait status {}", status);
}

// Progress on stderr: a bar redrawn ten times a second on a terminal, a
// line every five seconds otherwise.
class Progress {
 public:
  Progress(std::uint64_t total, bool on) : total_(total), on_(on), tty_(isatty(STDERR_FILENO) != 0) {}

  void update(const SweepReport& r, bool final_line = false) {
    if (!on_) {
      return;
    }
    const auto now = Clock::now();
    if (!final_line && now - last_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::seconds(5))) {
      return;
    }
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(r.seeds_run) / elapsed : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - std::min(total_, r.seeds_run)) / rate : 0.0;
    const double done = total_ == 0 ? 1.0 : static_cast<double>(r.seeds_run) / static_cast<double>(total_);
    if (tty_) {
      constexpr int width = 30;
      const int filled = static_cast<int>(width * std::clamp(done, 0.0, 1.0));
      fmt::print(stderr, "\r[{:=<{}}{:<{}}] {}/{} seeds  {:.0f}/s  ETA {:.0f}s  failures {}   ", "", filled, "",
                 width - filled, r.seeds_run, total_, rate, eta, r.failed.size());
      if (final_line) {
        fmt::print(stderr, "\n");
      }
    } else {
      fmt::print(stderr, "{}/{} seeds, {:.0f} seeds/s, ETA {:.0f}s, {} failures\n", r.seeds_run, total_, rate, eta,
                 r.failed.size());
    }
  }

 private:
  std::uint64_t total_;
  bool on_;
  bool tty_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_{};
};

// The loop's bookkeeping, shared by the serial and the forked paths.
class Loop {
 public:
  Loop(const SweepPlan& plan, const SweepObserver& observer)
      : plan_(plan), observer_(observer), progress_(plan.planned(), plan.progress) {
    report_.planned = plan.planned();
  }

  // Whether a stop rule says no further seed may start; records which.
  bool must_stop() {
    if (plan_.max_failures != 0 && report_.failed.size() >= plan_.max_failures) {
      report_.stopped = "max-failures";
    } else if (plan_.time_budget.count() > 0 && Clock::now() - start_ >= plan_.time_budget) {
      report_.stopped = "time-budget";
    }
    return !report_.stopped.empty();
  }
  Clock::duration budget_left() const {
    return plan_.time_budget.count() > 0 ? plan_.time_budget - (Clock::now() - start_) : Clock::duration::max();
  }

  // Counts one seed's outcome; once max_failures seeds failed, outcomes
  // still arriving from other jobs are dropped, so that a sweep stopped by
  // that rule reports exactly max_failures failures.
  void add(const SeedOutcome& outcome) {
    if (plan_.max_failures != 0 && report_.failed.size() >= plan_.max_failures) {
      return;
    }
    report_.add(outcome);
    if (observer_) {
      observer_(outcome, report_);
    }
    progress_.update(report_);
  }

  SweepReport finish() {
    if (report_.stopped.empty() && report_.seeds_run < report_.planned) {
      report_.stopped = "incomplete";  // a job could not be started: see stderr
    }
    std::sort(report_.failed.begin(), report_.failed.end(),
              [](const SeedOutcome& a, const SeedOutcome& b) { return a.seed < b.seed; });
    report_.wall_seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    progress_.update(report_, true);
    return std::move(report_);
  }

 private:
  const SweepPlan& plan_;
  const SweepObserver& observer_;
  Progress progress_;
  Clock::time_point start_ = Clock::now();
  SweepReport report_;
};

void run_serial(const SweepPlan& plan, const SeedRunner& run_seed, Loop& loop) {
  for (std::uint64_t k = 0; k < plan.planned() && !loop.must_stop(); ++k) {
    loop.add(run_seed(plan.seed_at(k)));
  }
}

// One forked process of a sweep: it runs the shard's seeds k, k + jobs, ...
// from `next_k` on, writing "seed <n>" before each and its outcome's JSON
// line after.
struct Child {
  pid_t pid = -1;
  int fd = -1;
  std::uint64_t next_k = 0;  // the shard index of the seed it runs after the current one
  std::optional<std::uint64_t> running;  // announced and not yet answered
  std::string buffer;
};

[[noreturn]] void child_main(const SweepPlan& plan, const SeedRunner& run_seed, std::uint64_t k, unsigned stride,
                             int fd) {
  const auto send = [fd](const std::string& line) {
    std::size_t sent = 0;
    while (sent < line.size()) {
      const ssize_t n = write(fd, line.data() + sent, line.size() - sent);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        _exit(3);  // the parent is gone
      }
      sent += static_cast<std::size_t>(n);
    }
  };
  for (; k < plan.planned(); k += stride) {
    const std::uint64_t seed = plan.seed_at(k);
    send(fmt::format("seed {}\n", seed));
    send(to_json(run_seed(seed)).dump() + "\n");
  }
  _exit(0);
}

bool start_child(const SweepPlan& plan, const SeedRunner& run_seed, Child& child) {
  int fds[2];
  if (pipe(fds) != 0) {
    fmt::print(stderr, "sweep: pipe: {}\n", std::strerror(errno));
    return false;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) {
    fmt::print(stderr, "sweep: fork: {}\n", std::strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return false;
  }
  if (pid == 0) {
    close(fds[0]);
    child_main(plan, run_seed, child.next_k, plan.jobs, fds[1]);
  }
  close(fds[1]);
  child.pid = pid;
  child.fd = fds[0];
  child.running.reset();
  child.buffer.clear();
  return true;
}

// Takes the complete lines of `child`'s buffer. A line that is neither an
// announcement nor the announced seed's result (a torn write) is false.
bool take_lines(const SweepPlan& plan, Child& child, Loop& loop) {
  for (std::size_t nl; (nl = child.buffer.find('\n')) != std::string::npos;) {
    const std::string line = child.buffer.substr(0, nl);
    child.buffer.erase(0, nl + 1);
    if (line.starts_with("seed ")) {
      child.running = std::strtoull(line.c_str() + 5, nullptr, 10);
      child.next_k = plan.index_of(*child.running) + plan.jobs;
      continue;
    }
    const std::optional<SeedOutcome> outcome = outcome_from_line(line);
    if (!outcome || !child.running || outcome->seed != *child.running) {
      return false;
    }
    child.running.reset();
    loop.add(*outcome);
  }
  return true;
}

void run_parallel(const SweepPlan& plan, const SeedRunner& run_seed, Loop& loop) {
  std::vector<Child> children(plan.jobs);
  for (unsigned j = 0; j < plan.jobs && j < plan.planned(); ++j) {
    children[j].next_k = j;
    if (!start_child(plan, run_seed, children[j])) {
      break;
    }
  }
  // A child is over. Unless it ran all its seeds, the seed it was running
  // (or, dead before announcing one, the seed it was to run next) is a
  // crash, and a new child takes the seeds after it.
  const auto child_ended = [&](Child& child, bool torn) {
    close(child.fd);
    child.fd = -1;
    int status = 0;
    while (waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
    }
    child.pid = -1;
    if (!child.running && !torn && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      return;
    }
    SeedOutcome crash;
    crash.kind = std::string(crash_kind);
    if (child.running) {
      crash.seed = *child.running;
      crash.message = fmt::format("the process running seed {} {}{}", crash.seed,
                                  torn ? "wrote a malformed result line and was " : "", describe_exit(status));
    } else if (child.next_k < plan.planned()) {
      crash.seed = plan.seed_at(child.next_k);
      crash.message = fmt::format("the sweep process {} before it announced seed {}", describe_exit(status), crash.seed);
      child.next_k += plan.jobs;
    } else {
      fmt::print(stderr, "sweep: a sweep process {} after its last seed\n", describe_exit(status));
      return;
    }
    loop.add(crash);
    if (child.next_k < plan.planned() && !loop.must_stop()) {
      (void)start_child(plan, run_seed, child);
    }
  };
  for (;;) {
    std::vector<pollfd> polls;
    std::vector<Child*> polled;
    for (Child& child : children) {
      if (child.fd >= 0) {
        polls.push_back(pollfd{child.fd, POLLIN, 0});
        polled.push_back(&child);
      }
    }
    if (polls.empty() || loop.must_stop()) {
      break;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(loop.budget_left());
    const int timeout_ms = static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 1000));
    if (poll(polls.data(), polls.size(), timeout_ms) < 0) {
      if (errno == EINTR) {
        continue;
      }
      fmt::print(stderr, "sweep: poll: {}\n", std::strerror(errno));
      break;
    }
    for (std::size_t i = 0; i < polls.size(); ++i) {
      Child& child = *polled[i];
      if ((polls[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        continue;
      }
      char chunk[65536];
      const ssize_t n = read(child.fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        child_ended(child, false);
        continue;
      }
      child.buffer.append(chunk, static_cast<std::size_t>(n));
      if (!take_lines(plan, child, loop)) {
        kill(child.pid, SIGKILL);
        child_ended(child, true);
      }
    }
  }
  // Stopped early, or done: no child outlives the sweep.
  for (Child& child : children) {
    if (child.fd < 0) {
      continue;
    }
    kill(child.pid, SIGKILL);
    close(child.fd);
    while (waitpid(child.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

std::string replay_for(const Scenario& scenario, const ScenarioOptions& options, std::uint64_t seed) {
  SEEDPOOL_ASSERT_MSG(!options.sim.strategy.steps_estimate_is_auto(), "a replay command names pct:D:K");
  return seed_file_for(scenario.name, options, seed).replay_command();
}

}  // namespace

std::uint64_t SweepPlan::planned() const noexcept {
  SEEDPOOL_ASSERT(shard_count >= 1 && shard_index < shard_count);
  return seeds <= shard_index ? 0 : (seeds - shard_index + shard_count - 1) / shard_count;
}

Result<std::pair<std::uint64_t, std::uint64_t>> parse_shard(std::string_view text) {
  const Error bad{ErrorCode::invalid_argument,
                  fmt::format("invalid shard '{}': expected I/N with 0 <= I < N, e.g. 3/16", text), {}};
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return bad;
  }
  const auto number = [](std::string_view digits) -> std::optional<std::uint64_t> {
    if (digits.empty() || digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) {
      return std::nullopt;
    }
    return std::stoull(std::string(digits));
  };
  const std::optional<std::uint64_t> index = number(text.substr(0, slash));
  const std::optional<std::uint64_t> count = number(text.substr(slash + 1));
  if (!index || !count || *count == 0 || *index >= *count) {
    return bad;
  }
  return std::make_pair(*index, *count);
}

void SweepReport::add(const SeedOutcome& outcome) {
  ++seeds_run;
  steps += outcome.steps;
  virtual_ns += outcome.virtual_ns;
  for (const auto& [key, hits] : outcome.coverage) {
    auto& [runs, total] = coverage[key];
    ++runs;
    total += hits;
  }
  if (!outcome.ok()) {
    failed.push_back(outcome);
  }
}

std::map<std::string, std::vector<std::uint64_t>> SweepReport::failures_by_kind() const {
  std::map<std::string, std::vector<std::uint64_t>> by_kind;
  for (const SeedOutcome& o : failed) {
    by_kind[o.kind].push_back(o.seed);
  }
  return by_kind;
}

SweepReport run_sweep(const SweepPlan& plan, const SeedRunner& run_seed, const SweepObserver& observer) {
  SEEDPOOL_ASSERT(plan.jobs >= 1);
  Loop loop(plan, observer);
  if (plan.jobs == 1) {
    run_serial(plan, run_seed, loop);
  } else {
    run_parallel(plan, run_seed, loop);
  }
  return loop.finish();
}

std::string ResolvedStrategy::describe() const {
  if (warmup_runs == 0) {
    return strategy.to_string();
  }
  return fmt::format("pct:{} (K = {}, estimated from {} warm-up runs)", strategy.depth, strategy.steps_estimate,
                     warmup_runs);
}

std::uint64_t steps_estimate_from(std::uint64_t steps_max) noexcept {
  return std::max<std::uint64_t>(1, (steps_max + 1) / 2);
}

ResolvedStrategy resolve_strategy(const StrategySpec& given, const SweepPlan& plan, const SeedRunner& run_random_walk) {
  ResolvedStrategy resolved;
  resolved.strategy = given;
  if (!given.steps_estimate_is_auto()) {
    return resolved;
  }
  // The plan's first seeds, not the shard's: the same k everywhere.
  SweepPlan warmup;
  warmup.first_seed = plan.first_seed;
  warmup.seeds = steps_warmup_seeds;
  warmup.jobs = std::min<unsigned>(plan.jobs, static_cast<unsigned>(steps_warmup_seeds));
  const SweepReport report = run_sweep(warmup, run_random_walk, [&](const SeedOutcome& outcome, const SweepReport&) {
    resolved.warmup_steps_max = std::max(resolved.warmup_steps_max, outcome.steps);
  });
  resolved.warmup_runs = report.seeds_run;
  resolved.strategy.steps_estimate = steps_estimate_from(resolved.warmup_steps_max);
  SEEDPOOL_ASSERT(!resolved.strategy.steps_estimate_is_auto());
  SEEDPOOL_ASSERT(resolved.strategy.steps_estimate * 2 >= resolved.warmup_steps_max);
  return resolved;
}

ResolvedStrategy resolve_program_strategy(const SimConfig& config, const std::function<void(SimWorld&)>& body,
                                          const SweepPlan& plan) {
  SimConfig walk = config;
  walk.strategy = StrategySpec{};
  return resolve_strategy(config.strategy, plan,
                          [&](std::uint64_t seed) { return run_program_seed(walk, body, seed); });
}

SweepReport sweep_program(const SimConfig& config, const std::function<void(SimWorld&)>& body, const SweepPlan& plan,
                          const SweepObserver& observer) {
  const ResolvedStrategy resolved = resolve_program_strategy(config, body, plan);
  SimConfig run = config;
  run.strategy = resolved.strategy;
  SweepReport report = run_sweep(
      plan, [&](std::uint64_t seed) { return run_program_seed(run, body, seed); }, observer);
  report.strategy = resolved;
  return report;
}

SeedOutcome run_program_seed(SimConfig config, const std::function<void(SimWorld&)>& body, std::uint64_t seed) {
  config.seed = seed;
  const RunResult run = simulate(config, body);
  SeedOutcome outcome;
  outcome.seed = seed;
  outcome.kind = run.ok() ? std::string() : failure_kind(run);
  outcome.message = run.message;
  outcome.invariant = run.invariant.has_value();
  outcome.steps = run.steps;
  outcome.virtual_ns = run.virtual_time.ns();
  outcome.trace_hash = run.trace_hash;
  return outcome;
}

std::string SeedOutcome::describe() const {
  // An invariant's message begins with its "[name]" already.
  return invariant ? message : fmt::format("[{}] {}", kind, message);
}

// ---------------------------------------------------------------- scenarios

SeedOutcome run_scenario_seed(const Scenario& scenario, ScenarioOptions options, std::uint64_t seed,
                              bool check_determinism) {
  options.sim.seed = seed;
  options.sim.keep_trace_events = options.sim.keep_trace_events || check_determinism;
  const ScenarioResult result = run_scenario(scenario, options);
  SeedOutcome outcome{seed,
                      result.failure_kind,
                      result.run.message,
                      result.run.invariant.has_value(),
                      result.run.steps,
                      result.run.virtual_time.ns(),
                      result.run.trace_hash,
                      result.coverage,
                      result.faults.describe()};
  if (check_determinism) {
    const ScenarioResult again = run_scenario(scenario, options);
    const DeterminismReport report = compare_runs(result.run, again.run);
    if (!report.deterministic) {
      outcome.kind = std::string(nondeterministic_kind);
      outcome.invariant = false;
      outcome.message = report.describe();
    }
  }
  return outcome;
}

ResolvedStrategy resolve_scenario_strategy(const Scenario& scenario, const ScenarioOptions& options,
                                           const SweepPlan& plan) {
  ScenarioOptions walk = options;
  walk.sim.strategy = StrategySpec{};
  walk.sim.decisions.reset();
  return resolve_strategy(options.sim.strategy, plan,
                          [&](std::uint64_t seed) { return run_scenario_seed(scenario, walk, seed); });
}

SweepReport sweep_scenario(const Scenario& scenario, const ScenarioOptions& options, const SweepPlan& plan,
                           bool check_determinism, const SweepObserver& observer) {
  const ResolvedStrategy resolved = resolve_scenario_strategy(scenario, options, plan);
  ScenarioOptions run = options;
  run.sim.strategy = resolved.strategy;
  SweepReport report = run_sweep(
      plan, [&](std::uint64_t seed) { return run_scenario_seed(scenario, run, seed, check_determinism); }, observer);
  report.strategy = resolved;
  return report;
}

Result<std::vector<std::string>> save_failures(const std::string& dir, const Scenario& scenario,
                                               const ScenarioOptions& options, const SweepReport& report) {
  SEEDPOOL_ASSERT_MSG(!options.sim.strategy.steps_estimate_is_auto(), "a seed file names pct:D:K");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Error{ErrorCode::io_error, fmt::format("cannot create '{}': {}", dir, ec.message()), {}};
  }
  std::vector<std::string> paths;
  for (const SeedOutcome& o : report.failed) {
    ScenarioOptions replay = options;
    replay.sim.seed = o.seed;
    SeedFile file;
    if (o.kind == crash_kind) {
      file = seed_file_for(scenario.name, options, o.seed);
      file.expected_outcome = o.kind;
      file.note = o.message;
      file.faults = o.faults;
    } else {
      file = describe_run(scenario.name, replay, run_scenario(scenario, replay), true);
    }
    const std::string path = fmt::format("{}/{}-{}.json", dir, scenario.name, o.seed);
    if (Status written = write_seed_file(path, file); !written) {
      return written.error();
    }
    paths.push_back(path);
  }
  return paths;
}

std::string report_json(const SweepReport& report, const Scenario& scenario, const ScenarioOptions& options,
                        const SweepPlan& plan) {
  json failures = json::array();
  for (const SeedOutcome& o : report.failed) {
    failures.push_back({{"seed", o.seed},
                        {"kind", o.kind},
                        {"message", o.message},
                        {"faults", o.faults},
                        {"trace_hash", fmt::format("{:016x}", o.trace_hash)},
                        {"replay", replay_for(scenario, options, o.seed)}});
  }
  json coverage = json::object();
  for (const auto& [key, counts] : report.coverage) {
    coverage[key] = {{"runs", counts.first}, {"hits", counts.second}};
  }
  const json doc{{"scenario", scenario.name},
                 {"strategy", options.sim.strategy.to_string()},
                 {"swarm", options.swarm},
                 {"sync", SyncSwitches::of(options.sim).flags()},
                 {"first_seed", plan.first_seed},
                 {"seeds", plan.seeds},
                 {"shard", fmt::format("{}/{}", plan.shard_index, plan.shard_count)},
                 {"seeds_planned", report.planned},
                 {"seeds_run", report.seeds_run},
                 {"stopped", report.stopped},
                 {"steps", report.steps},
                 {"virtual_ns", report.virtual_ns},
                 {"wall_seconds", report.wall_seconds},
                 {"failures", failures},
                 {"coverage", coverage}};
  return doc.dump(2) + "\n";
}

}  // namespace seedpool::sim
