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
  virtual std::size_t pick(std::span<const TaskId> runnable, std::uint64_t step,
                           DecisionSource& decisions) = 0;
};

// Which strategy a run uses; parsed from "random" or "pct:D[:K]".
struct StrategySpec {
  enum class Kind { random_walk, pct };
  Kind kind = Kind::random_walk;
  unsigned depth = 3;  // PCT: bug depth d; d - 1 priority change points
  // PCT: k, the range the change points are drawn from. steps_estimate_auto
  // ("pct:D") asks the Sweeper to estimate it before a sweep (see
  // resolve_strategy in sweeper.hpp); a run itself always has a k.
  std::uint64_t steps_estimate = steps_estimate_auto;
  static constexpr unsigned depth_max = 64;
  static constexpr std::uint64_t steps_estimate_auto = 0;

  // PCT without a k: the Sweeper must estimate one before runs can start.
  bool steps_estimate_is_auto() const noexcept { return kind == Kind::pct && steps_estimate == steps_estimate_auto; }
  // "random", "pct:3" or "pct:3:5000".
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

// The strategy of `spec`. Requires a k for PCT (not steps_estimate_auto):
// resolve the spec first (sweeper.hpp).
std::unique_ptr<Strategy> make_strategy(const StrategySpec& spec);

}  // namespace seedpool::sim
