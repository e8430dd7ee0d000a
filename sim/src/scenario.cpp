#include <seedpool/core/assert.hpp>
#include <seedpool/core/channel.hpp>
#include <seedpool/sim/pool_faults.hpp>
#include <seedpool/sim/scenario.hpp>

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string_view>

namespace seedpool::sim {

bool ScenarioContext::finish(Duration bound, const std::function<bool()>& done) {
  return finish(bound, done, SEEDPOOL_INVARIANT("converged"));
}

bool ScenarioContext::finish(Duration bound, const std::function<bool()>& done, Invariant invariant) {
  quiet();
  const Instant until = world.now() + bound;
  const Duration every = std::max(milliseconds(1), Duration::from_ns(bound.ns() / 64));
  while (!done()) {
    if (world.now() >= until) {
      world.fail(invariant, fmt::format("not done within {:.3f} ms of the quiet period",
                                        static_cast<double>(bound.ns()) / 1e6));
      return false;
    }
    world.sleep_until(std::min(until, world.now() + every));
  }
  return true;
}

ScenarioRegistry& ScenarioRegistry::instance() {
  static ScenarioRegistry* registry = [] {
    auto* r = new ScenarioRegistry();  // never destroyed: registration may run during static init
    register_builtin_scenarios(*r);
    return r;
  }();
  return *registry;
}

void ScenarioRegistry::add(Scenario scenario) {
  SEEDPOOL_ASSERT_MSG(find(scenario.name) == nullptr, "duplicate scenario name");
  scenarios_.push_back(std::move(scenario));
}

void ScenarioRegistry::mark_builtin(std::size_t first) {
  for (std::size_t i = first; i < scenarios_.size(); ++i) {
    scenarios_[i].builtin = true;
  }
}

const Scenario* ScenarioRegistry::find(std::string_view name) const {
  const auto it = std::find_if(scenarios_.begin(), scenarios_.end(), [name](const Scenario& s) { return s.name == name; });
  return it == scenarios_.end() ? nullptr : &*it;
}

std::string failure_kind(const RunResult& run) {
  if (run.ok()) {
    return {};
  }
  if (run.invariant) {
    return std::string(run.invariant->name());
  }
  return std::string(to_string(run.outcome));
}

ScenarioResult run_scenario(const Scenario& scenario, const ScenarioOptions& options) {
  ScenarioResult result;
  result.timeline = Timeline(options.keep_timeline);
  // Kept past the run: its sites are settled as the run meets them, so the
  // run's rates are known only once it has ended, however it ended.
  std::unique_ptr<FaultInjector> faults;
  result.run = simulate(options.sim, [&](SimWorld& world) {
    SimProcessHost host(world);
    faults = std::make_unique<FaultInjector>(world, scenario.faults, options.swarm, result.coverage);
    install_pool_faults(*faults, host);
    ScenarioContext ctx{world, *faults, result.coverage, result.timeline, host, options.model};
    scenario.body(ctx);
    host.add_coverage(result.coverage);  // the caller-read hand-off's branches
  });
  if (faults != nullptr) {
    result.faults = faults->in_effect();
  }
  result.failure_kind = failure_kind(result.run);
  return result;
}

}  // namespace seedpool::sim
