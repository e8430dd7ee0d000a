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

// A schedule of the search tree and the children it has left to give:
// every schedule is its parent's decision list up to one of the parent's
// choice points after the parent's last deviation, that point taking a
// non-default alternative within the bound (and every later choice its
// default). So each decision list within the bound has exactly one parent:
// the list cut before its last deviation.
class Expansion {
 public:
  Expansion(std::vector<std::uint64_t> decisions, const ChoiceLog& choices, std::size_t prefix_size,
            std::uint64_t depth)
      : decisions_(std::move(decisions)), depth_(depth) {
    for (const ChoicePoint& point : choices) {
      if (point.decision_index >= prefix_size) {
        choices_.push_back(point);
      }
    }
  }

  std::uint64_t depth() const noexcept { return depth_; }

  // The next child's decision list, in lexicographic order; none when
  // every child was given.
  std::optional<std::vector<std::uint64_t>> next_child(std::uint64_t bound) {
    for (; point_ < choices_.size(); ++point_, alternative_ = 1) {
      const ChoicePoint& point = choices_[point_];
      SEEDPOOL_ASSERT(point.decision_index < decisions_.size());
      // Costs grow with the alternative: past the bound here, past it for
      // every later alternative too.
      if (alternative_ < point.alternatives && point.spent_before + point.cost(alternative_) <= bound) {
        std::vector<std::uint64_t> child(decisions_.begin(),
                                         decisions_.begin() + static_cast<std::ptrdiff_t>(point.decision_index));
        child.push_back(alternative_++);
        return child;
      }
    }
    return std::nullopt;
  }

 private:
  std::vector<std::uint64_t> decisions_;
  ChoiceLog choices_;  // the points after the schedule's last deviation
  std::uint64_t depth_;
  std::size_t point_ = 0;
  std::uint64_t alternative_ = 1;
};

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
  const std::uint64_t bound = strategy.bound;

  // Runs the schedule `prefix` (with `depth` deviations). A schedule of the
  // level being searched is counted and checked; a shallower one, counted
  // in an earlier level, runs again only to give its children. Returns
  // whether the search goes on.
  std::vector<Expansion> stack;
  bool deeper = false;  // a schedule of this level has children
  const auto visit = [&](const std::vector<std::uint64_t>& prefix, std::uint64_t depth, std::uint64_t level) {
    const ScheduleRun ran = run_schedule(strategy, prefix);
    ++report.runs;
    const std::uint64_t schedule = report.schedules + 1;
    if (const std::string diverged = prefix_divergence(prefix, ran.run.decisions); !diverged.empty()) {
      report.failure = failure_of(schedule, ran.run, std::string(nondeterministic_kind),
                                  fmt::format("schedule {}: {}", schedule, diverged), false);
      return false;
    }
    Expansion expansion(ran.run.decisions, *strategy.choices, prefix.size(), depth);
    if (depth < level) {
      stack.push_back(std::move(expansion));
      return true;
    }
    report.schedules = schedule;
    report.deviations_max = depth;
    report.steps += ran.run.steps;
    report.choice_points_max = std::max<std::uint64_t>(report.choice_points_max, strategy.choices->size());
    if (observer) {
      observer(schedule, ran.run);
    }
    if (spec.check_determinism) {
      const ScheduleRun again = run_schedule(strategy, prefix);
      if (const DeterminismReport same = compare_runs(ran.run, again.run); !same.deterministic) {
        report.failure = failure_of(schedule, ran.run, std::string(nondeterministic_kind), same.describe(), false);
        return false;
      }
    }
    if (!ran.failure_kind.empty()) {
      report.failure =
          failure_of(schedule, ran.run, ran.failure_kind, ran.run.message, ran.run.invariant.has_value());
      return false;
    }
    deeper = deeper || expansion.next_child(bound).has_value();
    if (spec.progress) {
      print_progress(report, start, last_progress, false);
    }
    return report.schedules < spec.schedules_max;
  };

  // Level by level: every schedule with `level` deviations (non-default
  // choices) after every schedule with fewer, each level a depth-first walk
  // from the all-default schedule. A bug a few deviations deep is met after
  // the shallow levels, not after every order of the schedule's tail.
  bool going = true;
  for (std::uint64_t level = 0; going; ++level) {
    deeper = false;
    stack.clear();
    going = visit({}, 0, level);
    while (going && !stack.empty()) {
      Expansion& top = stack.back();
      const std::uint64_t depth = top.depth() + 1;
      const std::optional<std::vector<std::uint64_t>> child = top.next_child(bound);  // before visit moves the stack
      if (!child) {
        stack.pop_back();
        continue;
      }
      going = visit(*child, depth, level);
    }
    if (going && !deeper) {
      report.exhausted = true;
      going = false;
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
