#pragma once

// Systematic search: every schedule of a program within a preemption or
// delay bound, in a fixed order, instead of a sample of seeds. Beside the
// Sweeper, which samples.
//
// The search walks the decision tree of a bounded strategy
// ("dfs:preemptions=P" or "delay:D", see strategy.hpp). A run replays a
// prefix of decisions, every later decision being 0 (the default: no
// preemption, no delay), and the strategy records its choice points. A
// schedule's children are its decision list cut at one of its choice
// points after its last deviation (a non-default choice), that point
// taking another alternative within the bound; so every decision list
// within the bound is reached exactly once, and replays like any other
// run's (a seed file with the strategy and the decisions).
//
// Order: fewest deviations first. Level L runs every schedule with L
// deviations, depth-first in lexicographic order of the decision lists,
// after every schedule with fewer; the schedules of shallower levels run
// again (not counted) only to give their children, which costs about one
// run in the tree's branching factor. A bug a single preemption deep is
// met within about (choice points x tasks) schedules, however many orders
// of the rest of the run the bound allows — under preemption bounding a
// switch at a block or an exit is free, so a program of n tasks that never
// preempt still has up to n! schedules at bound 0. The search is exhausted
// when a level has no schedule with children left.
//
// Decisions the program makes itself — SimWorld::decide, fault sites,
// latencies, a workload drawn from the stream — are 0 in every schedule:
// the tree searched is the scheduling tree of the program's default data,
// and no fault fires. Sweep seeds to vary those.
//
// Every schedule's prefix is checked to have replayed exactly; a program
// whose runs differ under the same decisions fails the search as
// "nondeterministic". No state-space reduction is made (no sleep sets, no
// partial-order reduction, no symmetry): schedules that differ only in the
// order of independent steps, or of identical tasks, are all run.

#include <seedpool/sim/scenario.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace seedpool::sim {

struct ExploreSpec {
  StrategySpec strategy;  // systematic: dfs:preemptions=P or delay:D
  std::uint64_t schedules_max = 100'000;  // the search stops after this many
  bool check_determinism = false;         // run each schedule twice, traces compared
  bool progress = false;                  // progress lines on stderr
};

// The first failing schedule: its decision list replays it under the
// search's strategy.
struct ExploreFailure {
  std::uint64_t schedule = 0;  // 1-based, in the search's order
  std::string kind;            // failure_kind of the run, or "nondeterministic"
  std::string message;
  bool invariant = false;      // the run broke the invariant named `kind`; `message` begins "[kind]"
  std::vector<std::uint64_t> decisions;
  std::uint64_t steps = 0;
  std::uint64_t trace_hash = 0;
};

struct ExploreReport {
  StrategySpec strategy;
  std::uint64_t schedules = 0;  // distinct schedules run and checked
  std::uint64_t runs = 0;       // runs, with those that only gave children
  std::uint64_t deviations_max = 0;  // the level the search reached
  bool exhausted = false;       // every schedule within the bound ran, none failed
  std::optional<ExploreFailure> failure;
  std::uint64_t steps = 0;          // over all schedules
  std::uint64_t choice_points_max = 0;  // the most choices one schedule met
  double wall_seconds = 0;

  bool ok() const noexcept { return !failure.has_value(); }
  // "exhausted: N schedules, no failure within bound B (strategy)", or
  // "schedule budget reached: ...", or "failed at schedule N of strategy: [kind] message".
  std::string describe() const;
};

// Told after each schedule: its number and its run.
using ScheduleObserver = std::function<void(std::uint64_t schedule, const RunResult& run)>;

// One run of the search: `body` replaying `decisions` under `strategy`
// (which carries the choice log to fill). The run's failure kind is "" when
// it passed.
struct ScheduleRun {
  RunResult run;
  std::string failure_kind;
};
using ScheduleRunner =
    std::function<ScheduleRun(const StrategySpec& strategy, const std::vector<std::uint64_t>& decisions)>;

// The search over runs of `run_schedule`. Requires a systematic strategy.
ExploreReport explore_runs(const ExploreSpec& spec, const ScheduleRunner& run_schedule,
                           const ScheduleObserver& observer = {});

// The search over a plain program: `body` on a fresh SimWorld under
// `config` (budgets; its seed, decisions and strategy are the search's).
ExploreReport explore_program(SimConfig config, const std::function<void(SimWorld&)>& body, const ExploreSpec& spec,
                              const ScheduleObserver& observer = {});

// The search over a scenario run under `options` (their seed, decisions and
// strategy are the search's; every data decision is 0, so no fault fires).
ExploreReport explore(const Scenario& scenario, const ScenarioOptions& options, const ExploreSpec& spec,
                      const ScheduleObserver& observer = {});

// The options that replay the report's failure (which it must have):
// `options` with the search's strategy and the failure's decisions, for
// describe_run and a seed file.
ScenarioOptions failure_options(const ScenarioOptions& options, const ExploreReport& report);

}  // namespace seedpool::sim
