#include <seedpool/sim/explore.hpp>

#include <seedpool/core/assert.hpp>
#include <seedpool/sim/determinism.hpp>
#include <seedpool/sim/sweeper.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <utility>

namespace seedpool::sim {
namespace {

using Clock = std::chrono::steady_clock;

// The next schedule's prefix: `decisions` up to the deepest choice point
// with an alternative left within `bound`, that alternative taken. None
// when every choice point has run out: the search is exhausted.
std::optional<std::vector<std::uint64_t>> next_prefix(const ChoiceLog& choices,
                                                      const std::vector<std::uint64_t>& decisions,
                                                      std::uint64_t bound) {
  for (std::size_t i = choices.size(); i-- > 0;) {
    const ChoicePoint& point = choices[i];
    SEEDPOOL_ASSERT(point.decision_index < decisions.size());
    const std::uint64_t taken = decisions[point.decision_index];
    SEEDPOOL_ASSERT(taken < point.alternatives);
    SEEDPOOL_ASSERT(point.spent_before + point.cost(taken) <= bound);
    // Costs grow with the alternative: past the bound here, past it for
    // every later alternative too.
    const std::uint64_t next = taken + 1;
    if (next < point.alternatives && point.spent_before + point.cost(next) <= bound) {
      std::vector<std::uint64_t> prefix(decisions.begin(),
                                        decisions.begin() + static_cast<std::ptrdiff_t>(point.decision_index));
      prefix.push_back(next);
      return prefix;
    }
  }
  return std::nullopt;
}

// Why a run did not replay `prefix`, or "" when it did.
std::string prefix_divergence(const std::vector<std::uint64_t>& prefix, const std::vector<std::uint64_t>& decisions) {
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (i >= decisions.size()) {
      return fmt::format("the run made {} decisions, fewer than its replayed prefix of {}", decisions.size(),
                         prefix.size());
    }
    if (decisions[i] != prefix[i]) {
      return fmt::format("decision {} of its replayed prefix came out {}, not {}", i, decisions[i], prefix[i]);
    }
  }
  return {};
}

void print_progress(const ExploreReport& report, Clock::time_point start, Clock::time_point& last, bool final_line) {
  const auto now = Clock::now();
  if (!final_line && now - last < std::chrono::seconds(2)) {
    return;
  }
  last = now;
  const double elapsed = std::chrono::duration<double>(now - start).count();
  fmt::print(stderr, "{} schedules of {} in {:.1f}s ({:.0f}/s)\n", report.schedules, report.strategy.to_string(),
             elapsed, elapsed > 0 ? static_cast<double>(report.schedules) / elapsed : 0.0);
}

ExploreFailure failure_of(std::uint64_t schedule, const RunResult& run, std::string kind, std::string message,
                          bool invariant) {
  ExploreFailure failure;
  failure.schedule = schedule;
  failure.kind = std::move(kind);
  failure.message = std::move(message);
  failure.invariant = invariant;
  failure.decisions = run.decisions;
  failure.steps = run.steps;
  failure.trace_hash = run.trace_hash;
  return failure;
}

}  // namespace

std::string ExploreReport::describe() const {
  const std::string name = strategy.to_string();
  if (failure) {
    // An invariant's message begins with its "[name]" already.
    return fmt::format("failed at schedule {} of {}: {}", failure->schedule, name,
                       failure->invariant ? failure->message
                                          : fmt::format("[{}] {}", failure->kind, failure->message));
  }
  if (exhausted) {
    return fmt::format("exhausted: {} schedules, no failure within bound {} ({})", schedules, strategy.bound, name);
  }
  return fmt::format("schedule budget reached: {} schedules, no failure; {} not exhausted", schedules, name);
}

ExploreReport explore_runs(const ExploreSpec& spec, const ScheduleRunner& run_schedule,
                           const ScheduleObserver& observer) {
  SEEDPOOL_ASSERT_MSG(spec.strategy.systematic(), "explore needs dfs:preemptions=P or delay:D");
  SEEDPOOL_ASSERT(spec.schedules_max >= 1);
  const Clock::time_point start = Clock::now();
  Clock::time_point last_progress = start;
  ExploreReport report;
  report.strategy = spec.strategy;
  report.strategy.choices.reset();
  StrategySpec strategy = report.strategy;
  strategy.choices = std::make_shared<ChoiceLog>();
  std::vector<std::uint64_t> prefix;
  while (report.schedules < spec.schedules_max) {
    const ScheduleRun ran = run_schedule(strategy, prefix);
    ++report.schedules;
    report.steps += ran.run.steps;
    report.choice_points_max = std::max<std::uint64_t>(report.choice_points_max, strategy.choices->size());
    if (observer) {
      observer(report.schedules, ran.run);
    }
    if (const std::string diverged = prefix_divergence(prefix, ran.run.decisions); !diverged.empty()) {
      report.failure = failure_of(report.schedules, ran.run, std::string(nondeterministic_kind),
                                  fmt::format("schedule {}: {}", report.schedules, diverged), false);
      break;
    }
    if (spec.check_determinism) {
      const ScheduleRun again = run_schedule(strategy, prefix);
      if (const DeterminismReport same = compare_runs(ran.run, again.run); !same.deterministic) {
        report.failure =
            failure_of(report.schedules, ran.run, std::string(nondeterministic_kind), same.describe(), false);
        break;
      }
    }
    if (!ran.failure_kind.empty()) {
      report.failure =
          failure_of(report.schedules, ran.run, ran.failure_kind, ran.run.message, ran.run.invariant.has_value());
      break;
    }
    std::optional<std::vector<std::uint64_t>> next = next_prefix(*strategy.choices, ran.run.decisions, strategy.bound);
    if (!next) {
      report.exhausted = true;
      break;
    }
    prefix = std::move(*next);
    if (spec.progress) {
      print_progress(report, start, last_progress, false);
    }
  }
  report.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (spec.progress) {
    print_progress(report, start, last_progress, true);
  }
  SEEDPOOL_ASSERT(!(report.exhausted && report.failure));
  return report;
}

ExploreReport explore_program(SimConfig config, const std::function<void(SimWorld&)>& body, const ExploreSpec& spec,
                              const ScheduleObserver& observer) {
  config.keep_trace_events = config.keep_trace_events || spec.check_determinism;
  config.seed = 0;
  return explore_runs(
      spec,
      [&](const StrategySpec& strategy, const std::vector<std::uint64_t>& decisions) {
        config.strategy = strategy;
        config.decisions = decisions;
        ScheduleRun ran;
        ran.run = simulate(config, body);
        ran.failure_kind = failure_kind(ran.run);
        return ran;
      },
      observer);
}

ExploreReport explore(const Scenario& scenario, const ScenarioOptions& options, const ExploreSpec& spec,
                      const ScheduleObserver& observer) {
  ScenarioOptions run = options;
  run.sim.keep_trace_events = run.sim.keep_trace_events || spec.check_determinism;
  run.sim.seed = 0;
  return explore_runs(
      spec,
      [&](const StrategySpec& strategy, const std::vector<std::uint64_t>& decisions) {
        run.sim.strategy = strategy;
        run.sim.decisions = decisions;
        ScenarioResult result = run_scenario(scenario, run);
        return ScheduleRun{std::move(result.run), std::move(result.failure_kind)};
      },
      observer);
}

ScenarioOptions failure_options(const ScenarioOptions& options, const ExploreReport& report) {
  SEEDPOOL_ASSERT(report.failure.has_value());
  ScenarioOptions replay = options;
  replay.sim.seed = 0;
  replay.sim.strategy = report.strategy;
  replay.sim.decisions = report.failure->decisions;
  return replay;
}

}  // namespace seedpool::sim
