#pragma once

// GoogleTest glue: sweep a scenario inside a test. On failure the test fails
// with the run's summary, a seed file written for the regression corpus,
// and the command that reruns exactly that run in this test binary.
//
//   TEST(MyQueue, SurvivesChurn) {
//     EXPECT_TRUE(seedpool::sim::testing::sweep_passes("my-queue", {.seeds = 2000, .jobs = 2}));
//   }
//
// The environment overrides the spec, so that a sweep can be widened or a
// failure rerun without editing the test:
//   SEEDPOOL_SEEDS=N               sweep N seeds
//   SEEDPOOL_SEED=S                run seed S alone
//   SEEDPOOL_JOBS=N                N forked processes (a crash is then reported)
//   SEEDPOOL_STRATEGY=pct:3        the strategy (pct:D estimates its K before the
//                                  sweep; dfs:preemptions=P and delay:D search every
//                                  schedule within the bound, at most SEEDS of them)
//   SEEDPOOL_CHECK_DETERMINISM=1   run each seed twice and compare the traces
//   SEEDPOOL_REPLAY=FILE           run the seed file FILE instead of the sweep
//   SEEDPOOL_FAILURE_DIR=DIR       where failing runs are saved
// A malformed value fails the test naming the variable.
//
// Header-only, so that the seedpool::sim library itself does not depend on
// GoogleTest; include it from test code only.

#include <seedpool/sim/explore.hpp>
#include <seedpool/sim/scenario.hpp>
#include <seedpool/sim/seed_file.hpp>
#include <seedpool/sim/sweeper.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace seedpool::sim::testing {

struct SweepSpec {
  std::uint64_t seeds = 100;  // with a systematic strategy: the most schedules searched
  std::uint64_t first_seed = 1;
  StrategySpec strategy = {};
  bool swarm = false;
  unsigned jobs = 1;
  bool check_determinism = false;
  // Where failing runs are saved; SEEDPOOL_FAILURE_DIR overrides it.
  std::string failure_dir = "seedpool-failures";
};

// The first failing seed of a sweep: its outcome, the seed file written for
// it, and the command that reruns exactly that run. Of a systematic search,
// the first failing schedule: its outcome's seed is 0, its number is
// `schedule`, and seeds_run counts schedules.
struct FoundFailure {
  SeedOutcome outcome;
  std::string seed_file;       // empty when it could not be written (see message)
  std::string replay_command;
  std::uint64_t seeds_run = 0;  // seeds swept up to and including it
  std::uint64_t schedule = 0;   // a systematic search's failing schedule; 0 otherwise
  std::string strategy;         // the strategy it failed under, resolved ("pct:3:152")
};

namespace detail {

inline Result<std::uint64_t> env_number(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') {
    return fallback;
  }
  std::uint64_t value = 0;
  const std::string_view view(text);
  const auto [end, ec] = std::from_chars(view.data(), view.data() + view.size(), value);
  if (ec != std::errc() || end != view.data() + view.size()) {
    return Error{ErrorCode::invalid_argument, fmt::format("{}='{}' is not a whole number", name, text), {}};
  }
  return value;
}

// The spec with the environment's overrides applied.
inline Result<SweepSpec> from_environment(SweepSpec spec) {
  const Result<std::uint64_t> seeds = env_number("SEEDPOOL_SEEDS", spec.seeds);
  const Result<std::uint64_t> seed = env_number("SEEDPOOL_SEED", 0);
  const Result<std::uint64_t> jobs = env_number("SEEDPOOL_JOBS", spec.jobs);
  const Result<std::uint64_t> check = env_number("SEEDPOOL_CHECK_DETERMINISM", spec.check_determinism ? 1 : 0);
  for (const auto* r : {&seeds, &seed, &jobs, &check}) {
    if (!*r) {
      return r->error();
    }
  }
  if (seeds.value() == 0 || jobs.value() == 0 || jobs.value() > 256) {
    return Error{ErrorCode::invalid_argument, "SEEDPOOL_SEEDS must be >= 1 and SEEDPOOL_JOBS in 1..256", {}};
  }
  spec.seeds = seeds.value();
  spec.jobs = static_cast<unsigned>(jobs.value());
  spec.check_determinism = check.value() != 0;
  if (seed.value() != 0) {
    spec.first_seed = seed.value();
    spec.seeds = 1;
  }
  if (const char* strategy = std::getenv("SEEDPOOL_STRATEGY"); strategy != nullptr && *strategy != '\0') {
    Result<StrategySpec> parsed = parse_strategy(strategy);
    if (!parsed) {
      return Error{ErrorCode::invalid_argument, "SEEDPOOL_STRATEGY: " + parsed.error().message, {}};
    }
    spec.strategy = parsed.value();
  }
  if (const char* dir = std::getenv("SEEDPOOL_FAILURE_DIR"); dir != nullptr && *dir != '\0') {
    spec.failure_dir = dir;
  }
  return spec;
}

// The command that reruns `seed_file` in this test binary, in this test.
inline std::string replay_in_this_test(const std::string& seed_file) {
  std::error_code ec;
  const std::filesystem::path binary = std::filesystem::read_symlink("/proc/self/exe", ec);
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  return fmt::format("SEEDPOOL_REPLAY={} {}{}", std::filesystem::absolute(seed_file).string(),
                     ec ? "<this test binary>" : binary.string(),
                     test == nullptr ? "" : fmt::format(" --gtest_filter='{}.{}'", test->test_suite_name(), test->name()));
}

// Runs `options` (which replay a failing run) again, saves the run as a
// seed file `name` in `dir`, and fills in where it went and how to rerun it.
inline void save_found(const Scenario& scenario, const ScenarioOptions& options, const std::string& dir,
                       const std::string& name, FoundFailure& found) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string path = (std::filesystem::path(dir) / name).string();
  const SeedFile file = describe_run(scenario.name, options, run_scenario(scenario, options), true);
  const Status written = ec ? Status(Error{ErrorCode::io_error, ec.message(), {}}) : write_seed_file(path, file);
  if (written) {
    found.seed_file = path;
    found.replay_command = replay_in_this_test(path);
  } else {
    found.replay_command = fmt::format("(the seed file could not be written: {})", written.error().message);
  }
}

// A systematic search of `scenario` up to its first failing schedule.
inline std::optional<FoundFailure> first_failing_schedule(const Scenario& scenario, const SweepSpec& spec) {
  ScenarioOptions options;
  ExploreSpec explore_spec;
  explore_spec.strategy = spec.strategy;
  explore_spec.schedules_max = spec.seeds;
  explore_spec.check_determinism = spec.check_determinism;
  const ExploreReport report = explore(scenario, options, explore_spec);
  if (report.ok()) {
    return std::nullopt;
  }
  FoundFailure found;
  found.outcome.kind = report.failure->kind;
  found.outcome.message = report.failure->message;
  found.outcome.steps = report.failure->steps;
  found.outcome.trace_hash = report.failure->trace_hash;
  found.seeds_run = report.schedules;
  found.schedule = report.failure->schedule;
  found.strategy = report.strategy.to_string();
  std::string name = fmt::format("{}-{}-schedule-{}.json", scenario.name, found.strategy, found.schedule);
  std::replace_if(name.begin(), name.end(), [](char c) { return c == ':' || c == '='; }, '-');
  save_found(scenario, failure_options(options, report), spec.failure_dir, name, found);
  return found;
}

}  // namespace detail

// Sweeps `scenario` under `spec` (with the environment's overrides) up to
// its first failing seed, or with a systematic strategy searches it up to
// its first failing schedule; nullopt when all passed. pct:D runs as
// pct:D:K with the K the Sweeper estimates (see resolve_strategy). The
// failure is written as a seed file with its decision list. Bad input (a
// malformed environment variable) is an Error.
inline Result<std::optional<FoundFailure>> first_failure(const Scenario& scenario, const SweepSpec& given = {}) {
  Result<SweepSpec> resolved = detail::from_environment(given);
  if (!resolved) {
    return resolved.error();
  }
  const SweepSpec& spec = resolved.value();
  if (spec.strategy.systematic()) {
    return detail::first_failing_schedule(scenario, spec);
  }
  ScenarioOptions options;
  options.sim.strategy = spec.strategy;
  options.swarm = spec.swarm;
  SweepPlan plan;
  plan.first_seed = spec.first_seed;
  plan.seeds = spec.seeds;
  plan.jobs = spec.jobs;
  plan.max_failures = 1;
  // The seed file and the rerun name the resolved strategy (pct:D:K).
  options.sim.strategy = resolve_scenario_strategy(scenario, options, plan).strategy;
  const SweepReport report = sweep_scenario(scenario, options, plan, spec.check_determinism);
  if (report.failed.empty()) {
    return std::optional<FoundFailure>();
  }
  FoundFailure found;
  found.outcome = report.failed.front();
  found.seeds_run = report.seeds_run;
  found.strategy = options.sim.strategy.to_string();
  SweepReport first;
  first.failed.push_back(found.outcome);
  const Result<std::vector<std::string>> saved = save_failures(spec.failure_dir, scenario, options, first);
  if (saved && !saved.value().empty()) {
    found.seed_file = saved.value().front();
    found.replay_command = detail::replay_in_this_test(found.seed_file);
  } else {
    found.replay_command = fmt::format("SEEDPOOL_SEED={} SEEDPOOL_STRATEGY={} (the seed file could not be written: {})",
                                       found.outcome.seed, found.strategy, saved ? "none" : saved.error().message);
  }
  return std::optional<FoundFailure>(std::move(found));
}

// Runs the seed file named by SEEDPOOL_REPLAY, if set, and says how it went.
inline std::optional<::testing::AssertionResult> replay_from_environment(const Scenario& scenario) {
  const char* path = std::getenv("SEEDPOOL_REPLAY");
  if (path == nullptr || *path == '\0') {
    return std::nullopt;
  }
  Result<SeedFile> file = read_seed_file(path);
  if (!file) {
    return ::testing::AssertionFailure() << "SEEDPOOL_REPLAY: " << file.error().message;
  }
  if (file.value().scenario != scenario.name) {
    return ::testing::AssertionSuccess() << "SEEDPOOL_REPLAY is a seed file of " << file.value().scenario
                                         << ", not of " << scenario.name << ": not run here";
  }
  const ScenarioResult result = run_scenario(scenario, file.value().options());
  if (result.run.ok()) {
    return ::testing::AssertionSuccess() << path << " passes: " << result.run.summary();
  }
  return ::testing::AssertionFailure() << scenario.name << " replayed from " << path << " failed ["
                                       << result.failure_kind << "]: " << result.run.summary()
                                       << "\n  faults: " << result.faults.describe();
}

// Sweeps (or searches) `scenario`; succeeds when every seed or schedule
// passes (or, with SEEDPOOL_REPLAY set, when that seed file passes).
inline ::testing::AssertionResult sweep_passes(const Scenario& scenario, const SweepSpec& spec = {}) {
  if (std::optional<::testing::AssertionResult> replayed = replay_from_environment(scenario)) {
    return *replayed;
  }
  const Result<std::optional<FoundFailure>> found = first_failure(scenario, spec);
  if (!found) {
    return ::testing::AssertionFailure() << found.error().message;
  }
  if (!found.value()) {
    return ::testing::AssertionSuccess() << "every seed or schedule of " << scenario.name << " passed";
  }
  const FoundFailure& f = *found.value();
  const std::string which = f.schedule != 0 ? fmt::format("schedule {} of {}", f.schedule, f.strategy)
                                            : fmt::format("seed {} ({})", f.outcome.seed, f.strategy);
  const std::string after = fmt::format("{} {}", f.seeds_run, f.schedule != 0 ? "schedules" : "seeds");
  return ::testing::AssertionFailure() << scenario.name << " " << which << " failed [" << f.outcome.kind
                                       << "] after " << after << ": " << f.outcome.message
                                       << "\n  faults: " << f.outcome.faults << "\n  seed file: " << f.seed_file
                                       << "\n  rerun: " << f.replay_command;
}

// The same, for a registered scenario by name.
inline ::testing::AssertionResult sweep_passes(const std::string& name, const SweepSpec& spec = {}) {
  const Scenario* scenario = ScenarioRegistry::instance().find(name);
  if (scenario == nullptr) {
    return ::testing::AssertionFailure() << "no scenario named '" << name << "' is registered";
  }
  return sweep_passes(*scenario, spec);
}

}  // namespace seedpool::sim::testing
