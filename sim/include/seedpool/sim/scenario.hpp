#pragma once

// A scenario is a pool configuration, a caller workload, a fault profile and
// the invariants, run on a SimWorld. Scenarios are registered by name, like
// GoogleTest tests: the built-in ones come with the library, and a user's own
// binary registers more with SEEDPOOL_SCENARIO.
//
// Every scenario runs in two phases, as TigerBeetle's VOPR does: a safety
// phase with faults on, in which the checker watches every step, then a
// liveness phase with faults off, in which the pool must converge — every
// caller answered, the pool back to size, every process reaped — within a
// bounded virtual time.

#include <seedpool/core/pool.hpp>
#include <seedpool/sim/faults.hpp>
#include <seedpool/sim/pool_checker.hpp>
#include <seedpool/sim/pool_faults.hpp>
#include <seedpool/sim/sim_process.hpp>
#include <seedpool/sim/sim_world.hpp>
#include <seedpool/sim/timeline.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace seedpool::sim {

// What a scenario body gets to work with. All of it lives for the whole run.
struct ScenarioContext {
  SimWorld& world;
  SimProcessHost& host;
  FaultInjector& faults;
  Timeline& timeline;
  Coverage& coverage;
  bool model = true;  // the checker runs the pool's reference model (ScenarioOptions::model)

  // Creates a pool whose telemetry feeds a fresh checker (kept in the
  // context), or fails the run when the config is invalid. One per run.
  Pool& make_pool(PoolConfig config);
  // The checker of the pool make_pool created. Requires make_pool first.
  PoolChecker& checker();
  // pool.start(deadline), reported to the checker (start() must return once
  // min_ready workers are ready, and by its deadline).
  Status start_pool(std::optional<Instant> deadline = {});

  // The standard ending: faults off, then the pool must be back to `ready`
  // ready workers (any number when nullopt, as in a lazy pool) with none
  // busy or starting within `bound` (default: PoolChecker::recovery_bound of
  // the pool's config); telemetry counters must match; then shutdown, and
  // every process must be reaped.
  void finish(std::optional<std::size_t> ready, std::optional<Duration> bound = {});

  // Owned by the context for the run; use make_pool() and checker().
  std::unique_ptr<Pool> pool_;
  std::unique_ptr<PoolChecker> checker_;
};

// The injector a fault site asks: SEEDPOOL_FAULT(ctx, "name", ppm) works
// with a ScenarioContext as with a FaultInjector.
inline FaultInjector& fault_injector(const ScenarioContext& ctx) noexcept { return ctx.faults; }

// The callers of a scenario.
struct Workload {
  std::size_t callers = 16;
  std::size_t leases_per_caller = 5;    // checkouts each caller makes, one after another
  std::size_t calls_per_lease_max = 2;  // each lease makes 1..max calls (a failed call ends it)
  Duration checkout_timeout_min = milliseconds(50);
  Duration checkout_timeout_max = seconds(2);
  Duration call_timeout = seconds(1);
  Duration think_time_max = milliseconds(20);
  std::size_t affinity_keys = 0;  // 0: anonymous checkouts
  AffinityMode affinity_mode = AffinityMode::prefer;
  bool external_kills = false;     // a chaos task kills random workers while faults are on
};

// Runs `workload` against `pool` and returns when every caller finished; a
// caller still running after `bound` is a callers-answered violation.
void run_workload(ScenarioContext& ctx, Pool& pool, const Workload& workload, Duration bound = minutes(30));

// A named, runnable scenario. The body runs as the simulation's main task;
// it fails the run through SimWorld::fail("[invariant] ...") (directly or
// through a PoolChecker) and must leave no task or process behind.
struct Scenario {
  std::string name;
  std::string description;
  FaultOptions faults;  // the profile; swarm mode draws a subset per seed
  std::function<void(ScenarioContext&)> body;
  bool builtin = false;  // registered by the library: seedpool-sim can replay it
};

class ScenarioRegistry {
 public:
  // The process-wide registry, with the built-in scenarios in it.
  static ScenarioRegistry& instance();
  // Adds a scenario; a duplicate name is a programming error (asserted).
  void add(Scenario scenario);
  // The scenario of that name, or nullptr.
  const Scenario* find(std::string_view name) const;
  // Every scenario, in registration order (the built-ins first).
  const std::vector<Scenario>& all() const noexcept { return scenarios_; }
  // Marks the scenarios from index `first` on as built in.
  void mark_builtin(std::size_t first);

 private:
  std::vector<Scenario> scenarios_;
};

// Registers the built-in scenarios (startup, churn, cancel-storm, affinity,
// recycle, health, breaker, shutdown, lazy) into `registry`.
void register_builtin_scenarios(ScenarioRegistry& registry);

// How to run a scenario once.
struct ScenarioOptions {
  SimConfig sim;             // seed or decisions, strategy, budgets
  bool swarm = false;        // draw the fault mix from the seed
  bool keep_timeline = false;
  bool model = true;         // check the pool against its reference model (off: survival checks only)
};

// One run of a scenario: the simulation's result and what the run exercised.
struct ScenarioResult {
  RunResult run;
  std::string failure_kind;  // "" when ok; the invariant name, or the run outcome ("deadlock")
  FaultOptions faults;       // the sites this run met, at their rates in it (FaultInjector::in_effect)
  Coverage coverage;
  Timeline timeline{false};
};

// Runs `scenario` once on a fresh SimWorld with simulated worker processes
// and a fault injector. The same options give the same result, trace hash
// included; options.sim.decisions replays a recorded run.
ScenarioResult run_scenario(const Scenario& scenario, const ScenarioOptions& options);

// "[lease-exclusive] ..." -> "lease-exclusive"; otherwise the outcome's name.
std::string failure_kind(const RunResult& run);

}  // namespace seedpool::sim

// Registers a scenario from a user's binary:
//   SEEDPOOL_SCENARIO(my_scenario, "my-scenario", "what it does", faults) { ... ctx ... }
#define SEEDPOOL_SCENARIO(ident, name, description, fault_options)                                 \
  static void ident##_body(::seedpool::sim::ScenarioContext& ctx);                                 \
  static const bool ident##_registered = [] {                                                      \
    ::seedpool::sim::ScenarioRegistry::instance().add({name, description, fault_options, &ident##_body}); \
    return true;                                                                                   \
  }();                                                                                             \
  static void ident##_body([[maybe_unused]] ::seedpool::sim::ScenarioContext& ctx)
