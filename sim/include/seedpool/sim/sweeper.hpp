#pragma once

// The one loop over seeds. Every sweep — seedpool-sim and any binary linked
// with seedpool::sim_main, the GoogleTest helpers, the benchmarks — runs its
// seeds through run_sweep: seed ranges and shards, forked jobs with crash
// isolation, stop rules, progress, and one report with the failures, the
// counts and the coverage.
//
// A shard I/N of a plan runs the seeds first_seed + i for every i < seeds
// with i % N == I; the N shards of a plan together run each seed once, so
// their merged reports equal the report of one process running them all
// (failures are kept in seed order).
//
// With jobs > 1 the seeds run in forked processes, each taking every
// jobs-th seed of the shard. A child announces each seed before it runs it
// and sends its outcome after; a child that dies in between (a signal, an
// abort, an exit) costs that seed a failure of kind "crash" naming how the
// child ended, and a new child takes over the rest of its seeds.

#include <seedpool/sim/scenario.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace seedpool::sim {

// A run that took its process down with it (only seen with jobs > 1).
inline constexpr std::string_view crash_kind = "crash";
// A seed whose two runs differed (SweepPlan::check_determinism).
inline constexpr std::string_view nondeterministic_kind = "nondeterministic";

// What one seed did.
struct SeedOutcome {
  std::uint64_t seed = 0;
  std::string kind;  // "" when the run passed; the failure kind otherwise
  std::string message;
  bool invariant = false;  // the run broke the invariant named `kind`; `message` begins "[kind]"
  std::uint64_t steps = 0;
  std::int64_t virtual_ns = 0;
  std::uint64_t trace_hash = 0;
  Coverage coverage;
  std::string faults;  // the fault rates the run used

  bool ok() const noexcept { return kind.empty(); }
  // "[kind] message", as a failure report prints it.
  std::string describe() const;
};

struct SweepPlan {
  std::uint64_t first_seed = 1;
  std::uint64_t seeds = 100;
  std::uint64_t shard_index = 0;  // run only shard shard_index of shard_count
  std::uint64_t shard_count = 1;
  unsigned jobs = 1;               // > 1: that many forked processes
  std::uint64_t max_failures = 0;  // stop once this many seeds failed; 0: run every seed
  std::chrono::milliseconds time_budget{0};  // start no seed after this much wall time; 0: none
  bool progress = false;           // progress lines on stderr

  // The seeds of this shard, and the k-th of them.
  std::uint64_t planned() const noexcept;
  std::uint64_t seed_at(std::uint64_t k) const noexcept { return first_seed + shard_index + k * shard_count; }
  // The k of a seed of this shard.
  std::uint64_t index_of(std::uint64_t seed) const noexcept { return (seed - first_seed - shard_index) / shard_count; }
};

// "I/N" with 0 <= I < N; an error naming the text otherwise.
Result<std::pair<std::uint64_t, std::uint64_t>> parse_shard(std::string_view text);

// The strategy a sweep runs, with any automatic k filled in
// (see resolve_strategy).
struct ResolvedStrategy {
  StrategySpec strategy;
  std::uint64_t warmup_runs = 0;       // 0: nothing was estimated
  std::uint64_t warmup_steps_max = 0;  // the largest step count the warm-up saw

  // "pct:3 (K = 152, estimated from 16 warm-up runs)", or the name alone.
  std::string describe() const;
};

struct SweepReport {
  std::uint64_t planned = 0;
  std::uint64_t seeds_run = 0;
  std::uint64_t steps = 0;
  std::int64_t virtual_ns = 0;
  double wall_seconds = 0;
  std::vector<SeedOutcome> failed;  // in seed order
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> coverage;  // key -> (runs, hits)
  // Why seeds were left unrun: "" (none were), "max-failures", "time-budget",
  // or "incomplete" (a job process could not be started; the sweep failed).
  std::string stopped;
  // The strategy the seeds ran under, set by sweep_scenario and
  // sweep_program (run_sweep knows no strategy).
  std::optional<ResolvedStrategy> strategy;

  void add(const SeedOutcome& outcome);
  // Seeds by failure kind, each list in seed order.
  std::map<std::string, std::vector<std::uint64_t>> failures_by_kind() const;
};

// Runs one seed; it may crash the process only when jobs > 1.
using SeedRunner = std::function<SeedOutcome(std::uint64_t seed)>;
// Called with the report so far after each seed (in the parent with jobs > 1).
using SweepObserver = std::function<void(const SeedOutcome&, const SweepReport&)>;

SweepReport run_sweep(const SweepPlan& plan, const SeedRunner& run_seed, const SweepObserver& observer = {});

// One seed of a plain simulated program: `body` under `config` with the
// seed set; the kind is failure_kind of its run.
SeedOutcome run_program_seed(SimConfig config, const std::function<void(SimWorld&)>& body, std::uint64_t seed);

// ------------------------------------------------------- PCT's step estimate
//
// PCT's guarantee, a bug of depth d found with probability at least
// 1 / (n k^(d-1)), holds when k is near the run's real step count; a k ten
// times too large makes each change point ten times less likely to land in
// the run. "pct:D" leaves k to the Sweeper: before a sweep it runs a
// warm-up of steps_warmup_seeds seeds under the random walk — the plan's
// first seeds, first_seed .. first_seed + steps_warmup_seeds - 1, whatever
// the shard, the job or the plan's own seed count, so every shard and job
// of a plan settles on the same k — and takes half the largest step count
// among them, rounded up. Half: on the classic-bug suite (tests/classics)
// the bugs happen early in their runs, and K = max/2 found each at least
// half as often as the best of K/4 .. 4K and 2000, where K = max did not
// (deadlock01 124 vs 342 failing seeds of 2000; reorder_3 20 vs 68). The whole sweep
// then runs as pct:D:K, which is the name its replay commands and seed
// files carry. The warm-up's outcomes are not part of the sweep's report.
inline constexpr std::uint64_t steps_warmup_seeds = 16;

// The k a warm-up whose largest step count is `steps_max` gives: half that
// count rounded up, at least 1.
std::uint64_t steps_estimate_from(std::uint64_t steps_max) noexcept;

// `given` with an automatic k estimated for `plan`: the warm-up seeds run
// through `run_random_walk` (which must run a seed under the random walk),
// in plan.jobs processes when that is more than one. Any other strategy
// comes back as it is. run_sweep users with a strategy of their own call
// this before they sweep; sweep_scenario and sweep_program do it themselves.
ResolvedStrategy resolve_strategy(const StrategySpec& given, const SweepPlan& plan, const SeedRunner& run_random_walk);

// The same for a plain program (its warm-up runs `body` under `config`)
// and for a scenario (under `options`).
ResolvedStrategy resolve_program_strategy(const SimConfig& config, const std::function<void(SimWorld&)>& body,
                                          const SweepPlan& plan);

// A sweep of a plain program: run_program_seed for each seed of `plan`,
// under `config` with its strategy resolved (report.strategy).
SweepReport sweep_program(const SimConfig& config, const std::function<void(SimWorld&)>& body, const SweepPlan& plan,
                          const SweepObserver& observer = {});

// ---------------------------------------------------------------- scenarios

// One seed of `scenario`; with `check_determinism` run twice, a difference
// in the traces being a failure of kind "nondeterministic" that names the
// first event where they part.
SeedOutcome run_scenario_seed(const Scenario& scenario, ScenarioOptions options, std::uint64_t seed,
                              bool check_determinism = false);

ResolvedStrategy resolve_scenario_strategy(const Scenario& scenario, const ScenarioOptions& options,
                                           const SweepPlan& plan);

// Sweeps `scenario` over `plan` with its strategy resolved first; the
// report says which (report.strategy). Callers that name the strategy in
// what they print or save (replay commands, seed files, report_json)
// resolve it themselves first and pass the resolved options.
SweepReport sweep_scenario(const Scenario& scenario, const ScenarioOptions& options, const SweepPlan& plan,
                           bool check_determinism = false, const SweepObserver& observer = {});

// Writes a seed file per failure of `report` into `dir` (created), each
// with the run's decision list (a crash is written by its seed alone: it
// is not re-run here). Returns the paths written. `options` names a
// resolved strategy (no automatic k): the files must replay exactly.
Result<std::vector<std::string>> save_failures(const std::string& dir, const Scenario& scenario,
                                               const ScenarioOptions& options, const SweepReport& report);

// The JSON text of a report: the plan, every count, the coverage, and each
// failure with its replay command (the driver's `merge` adds such reports
// of the shards of one plan).
std::string report_json(const SweepReport& report, const Scenario& scenario, const ScenarioOptions& options,
                        const SweepPlan& plan);

}  // namespace seedpool::sim
