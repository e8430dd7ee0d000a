#pragma once

// A scenario is a body run on a fresh SimWorld — the system under test, its
// workload and its invariants — with a fault profile for its fault sites.
// Scenarios are registered by name, like GoogleTest tests: the built-in pool
// scenarios come with the library, and a user's own binary registers more
// with SEEDPOOL_SCENARIO (and links seedpool::sim_main for a driver).
//
// A scenario runs in two phases, as TigerBeetle's VOPR does: a safety phase
// with faults on, in which invariants are checked at every step, then a
// liveness phase with faults off (ScenarioContext::quiet, finish), in which
// the system must converge within a bounded virtual time.

#include <seedpool/sim/faults.hpp>
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
// It is the same for every scenario: the pool's own plumbing (a pool whose
// telemetry feeds its checker, the callers' workload) is PoolHarness, in
// <seedpool/sim/pool_scenario.hpp>.
struct ScenarioContext {
  SimWorld& world;          // tasks, time, channels, decide(), fail(), note()
  FaultInjector& faults;    // named fault sites (SEEDPOOL_FAULT), latencies on the run's grid
  Coverage& coverage;       // counts of what the run exercised, merged into the sweep's report
  Timeline& timeline;       // lanes for the Perfetto trace, when one is kept (replay --trace)
  SimProcessHost& host;     // the simulated programs World::launch starts
  bool model = true;        // ScenarioOptions::model: run the scenario's reference model, if it has one

  // A decision of the run's stream in [0, bound): world.decide(bound).
  std::uint64_t decide(std::uint64_t bound) { return world.decide(bound); }

  // The liveness phase, as TigerBeetle's VOPR has it: from now on no fault
  // fires (and fault sites draw no decision), so the system must converge.
  void quiet() { faults.set_enabled(false); }

  // The standard ending of a scenario of your own: quiet(), then `done` must
  // hold within `bound` of virtual time — checked now and every `bound`/64
  // (at least 1 ms) — or the run fails `invariant` (by default "converged"):
  // "[converged] not done within <bound>". Returns whether it held.
  bool finish(Duration bound, const std::function<bool()>& done);
  bool finish(Duration bound, const std::function<bool()>& done, Invariant invariant);
};

// The injector a fault site asks: SEEDPOOL_FAULT(ctx, "name", ppm) works
// with a ScenarioContext as with a FaultInjector.
inline FaultInjector& fault_injector(const ScenarioContext& ctx) noexcept { return ctx.faults; }

// A named, runnable scenario. The body runs as the simulation's main task;
// it fails the run through SimWorld::fail(invariant, message) (directly or
// through a checker) and must leave no task or process behind.
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
  std::string failure_kind;  // "" when ok; the invariant's name (RunResult::invariant), or the outcome's ("deadlock")
  FaultOptions faults;       // the sites this run met, at their rates in it (FaultInjector::in_effect)
  Coverage coverage;
  Timeline timeline{false};
};

// Runs `scenario` once on a fresh SimWorld with simulated worker processes
// and a fault injector. The same options give the same result, trace hash
// included; options.sim.decisions replays a recorded run.
ScenarioResult run_scenario(const Scenario& scenario, const ScenarioOptions& options);

// The name of the invariant the run broke (RunResult::invariant,
// "lease-exclusive"); otherwise the outcome's name ("deadlock"); "" when ok.
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
