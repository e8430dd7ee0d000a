#pragma once

// Scheduling strategies: given the runnable tasks, choose the one that runs
// the next step. A strategy draws every choice it makes from the run's
// decision stream, so any strategy's run replays from its decision list.

#include <seedpool/core/result.hpp>
#include <seedpool/sim/decision.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace seedpool::sim {

using TaskId = std::uint32_t;

class Strategy {
 public:
  virtual ~Strategy() = default;

  // Called once before the first step.
  virtual void on_run_start(DecisionSource& decisions) = 0;

  // Called when a task is created, before it can be picked.
  virtual void on_spawn(TaskId task, DecisionSource& decisions) = 0;

  // Returns an index into `runnable` (never empty) for step number `step`.
  // `runnable` is in no particular order.
  virtual std::size_t pick(std::span<const TaskId> runnable, std::uint64_t step,
                           DecisionSource& decisions) = 0;

  // A scheduling choice that is not a pick of the next task: which of
  // `alternatives` (at least 2) waiters a ConditionVariable::notify_one
  // wakes, or whether a condition wait wakes spuriously. Alternative 0 is
  // the default (the longest waiter; no spurious wakeup). Random walk and
  // PCT draw it uniformly from the stream; the bounded strategies record it
  // as a choice point, each non-default alternative costing as a
  // preemption (or a delay per alternative skipped), so the explorer
  // searches it within the bound.
  virtual std::uint64_t choose(std::uint64_t alternatives, DecisionSource& decisions) {
    return decisions.decide(alternatives);
  }
};

// One choice a systematic strategy made, as the explorer (explore.hpp) sees
// it: where its decision sits in the run's decision list, how many
// alternatives it had, and what each costs against the strategy's bound.
// Alternative 0 is the default and costs nothing.
struct ChoicePoint {
  std::size_t decision_index = 0;  // in RunResult::decisions
  std::uint64_t alternatives = 0;  // the decision's bound, at least 2
  std::uint64_t spent_before = 0;  // bound used by the run's earlier choices
  std::uint64_t first_cost = 0;    // the cost of alternative 1
  std::uint64_t step_cost = 0;     // what each further alternative adds

  std::uint64_t cost(std::uint64_t alternative) const noexcept {
    return alternative == 0 ? 0 : first_cost + (alternative - 1) * step_cost;
  }
};
using ChoiceLog = std::vector<ChoicePoint>;

// Which strategy a run uses; parsed from "random", "pct:D[:K]",
// "dfs:preemptions=P" or "delay:D".
struct StrategySpec {
  enum class Kind {
    random_walk,
    pct,
    preemption_bounded,  // "dfs:preemptions=P"
    delay_bounded,       // "delay:D"
  };
  Kind kind = Kind::random_walk;
  unsigned depth = 3;  // PCT: bug depth d; d - 1 priority change points
  // PCT: k, the range the change points are drawn from. steps_estimate_auto
  // ("pct:D") asks the Sweeper to estimate it before a sweep (see
  // resolve_strategy in sweeper.hpp); a run itself always has a k.
  std::uint64_t steps_estimate = steps_estimate_auto;
  unsigned bound = 0;  // systematic: the most preemptions or delays a schedule may have
  // Where a systematic strategy records its choice points, when set: the
  // explorer sets it for each run. Copies share it; not part of the name.
  std::shared_ptr<ChoiceLog> choices;

  static constexpr unsigned depth_max = 64;
  static constexpr unsigned bound_max = 64;
  static constexpr std::uint64_t steps_estimate_auto = 0;

  // PCT without a k: the Sweeper must estimate one before runs can start.
  bool steps_estimate_is_auto() const noexcept { return kind == Kind::pct && steps_estimate == steps_estimate_auto; }
  // Searched exhaustively by the explorer (explore.hpp) rather than sampled by seed.
  bool systematic() const noexcept { return kind == Kind::preemption_bounded || kind == Kind::delay_bounded; }

  // "random", "pct:3", "pct:3:5000", "dfs:preemptions=2" or "delay:1".
  std::string to_string() const;
};

// Parses a strategy name; the error names the bad text and the accepted forms.
Result<StrategySpec> parse_strategy(std::string_view text);

// Uniform random choice among runnable tasks at every step.
std::unique_ptr<Strategy> make_random_walk();

// Probabilistic Concurrency Testing (Burckhardt, Kothari, Musuvathi,
// Nagarakatte, ASPLOS 2010): random distinct task priorities, always run the
// highest-priority runnable task, and lower the running task's priority at
// depth - 1 change points drawn from [1, steps_estimate]. Finds a bug of depth
// d in a run of k steps with n tasks with probability at least 1 / (n k^(d-1)).
std::unique_ptr<Strategy> make_pct(unsigned depth, std::uint64_t steps_estimate);

// Bounded systematic scheduling. The previous task is the one the strategy
// picked at the previous step. A decision v at a step with n > 1 runnable
// tasks picks the v-th task of an order of those tasks, v = 0 being the
// default; past the end of a replayed list every decision is 0, so a prefix
// of decisions followed by defaults is a schedule.
//
// Preemption-bounded (CHESS; Musuvathi and Qadeer, PLDI 2007): the order is
// the previous task first if it is runnable, then the others by task id.
// Picking another task while the previous one is runnable is a preemption
// and costs 1; when the previous task blocked or finished every pick is free.
//
// Delay-bounded (Emmi, Qadeer and Rakamaric, POPL 2011): the base scheduler
// is round robin by task id: it continues the previous task while that is
// runnable, and otherwise takes the next runnable id after it, cyclically.
// The order is the runnable tasks cyclically from the previous task's id;
// picking the v-th skips v tasks and costs v delays.
//
// A task that blocked and was woken again by the time the next step is
// picked (a sleep, with other tasks waking at the same instant) counts as
// the previous task still runnable: a switch away from it is charged, so
// the bounds are never undercounted. A choice that would take the schedule
// past `bound` is taken as the default, so any decision list, shrunk or
// random, replays as a schedule within the bound.
std::unique_ptr<Strategy> make_preemption_bounded(unsigned bound, std::shared_ptr<ChoiceLog> choices = {});
std::unique_ptr<Strategy> make_delay_bounded(unsigned bound, std::shared_ptr<ChoiceLog> choices = {});

// The strategy of `spec`. Requires a k for PCT (not steps_estimate_auto):
// resolve the spec first (sweeper.hpp).
std::unique_ptr<Strategy> make_strategy(const StrategySpec& spec);

}  // namespace seedpool::sim
