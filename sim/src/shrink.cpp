#include <seedpool/core/assert.hpp>
#include <seedpool/sim/shrink.hpp>

#include <algorithm>

namespace seedpool::sim {

std::size_t count_nonzero(const std::vector<std::uint64_t>& decisions) {
  return static_cast<std::size_t>(std::count_if(decisions.begin(), decisions.end(), [](std::uint64_t d) { return d != 0; }));
}

namespace {

class Shrinker {
 public:
  Shrinker(const Scenario& scenario, const ScenarioOptions& base, const std::string& kind, std::size_t runs_max,
           const std::function<void(const ShrinkResult&)>& progress)
      : scenario_(scenario), base_(base), kind_(kind), runs_max_(runs_max), progress_(progress) {}

  // Replays `candidate`; keeps it when it still fails the same way. A
  // candidate's recorded decisions (what the run actually used) replace it,
  // which also drops unused tail entries.
  bool try_candidate(const std::vector<std::uint64_t>& candidate) {
    if (result_.runs >= runs_max_) {
      return false;
    }
    ++result_.runs;
    ScenarioOptions options = base_;
    options.sim.decisions = candidate;
    ScenarioResult run = run_scenario(scenario_, options);
    if (run.failure_kind != kind_) {
      return false;
    }
    std::vector<std::uint64_t> used = run.run.decisions;
    while (!used.empty() && used.back() == 0) {
      used.pop_back();
    }
    result_.decisions = std::move(used);
    result_.last_failure = std::move(run);
    if (progress_) {
      progress_(result_);
    }
    return true;
  }

  void remove_chunks() {
    for (std::size_t chunk = std::max<std::size_t>(result_.decisions.size() / 2, 1); chunk >= 1; chunk /= 2) {
      for (std::size_t at = 0; at < result_.decisions.size() && !exhausted();) {
        std::vector<std::uint64_t> candidate = result_.decisions;
        const std::size_t end = std::min(at + chunk, candidate.size());
        candidate.erase(candidate.begin() + static_cast<std::ptrdiff_t>(at),
                        candidate.begin() + static_cast<std::ptrdiff_t>(end));
        if (!try_candidate(candidate)) {
          at += chunk;
        }
      }
      if (chunk == 1) {
        break;
      }
    }
  }

  void simplify_values() {
    for (std::size_t i = 0; i < result_.decisions.size() && !exhausted(); ++i) {
      const std::uint64_t value = result_.decisions[i];
      if (value == 0) {
        continue;
      }
      for (const std::uint64_t smaller : {std::uint64_t{0}, value / 2, value - 1}) {
        if (smaller >= value || i >= result_.decisions.size()) {
          continue;
        }
        std::vector<std::uint64_t> candidate = result_.decisions;
        candidate[i] = smaller;
        if (try_candidate(candidate)) {
          break;
        }
      }
    }
  }

  bool exhausted() const { return result_.runs >= runs_max_; }
  ShrinkResult& result() { return result_; }

 private:
  const Scenario& scenario_;
  const ScenarioOptions& base_;
  const std::string& kind_;
  std::size_t runs_max_;
  const std::function<void(const ShrinkResult&)>& progress_;
  ShrinkResult result_;
};

}  // namespace

ShrinkResult shrink(const Scenario& scenario, const ScenarioOptions& base, std::vector<std::uint64_t> decisions,
                    const std::string& failure_kind, std::size_t runs_max,
                    const std::function<void(const ShrinkResult&)>& progress) {
  SEEDPOOL_ASSERT(!failure_kind.empty());
  Shrinker shrinker(scenario, base, failure_kind, runs_max, progress);
  ShrinkResult& result = shrinker.result();
  result.original_size = decisions.size();
  result.original_nonzero = count_nonzero(decisions);
  const bool fails = shrinker.try_candidate(decisions);
  SEEDPOOL_ASSERT_MSG(fails, "the decision list to shrink does not fail as expected");
  std::size_t before = 0;
  std::size_t before_nonzero = 0;
  // Alternate passes until neither makes progress or the budget is spent.
  while (!shrinker.exhausted() &&
         (result.decisions.size() != before || count_nonzero(result.decisions) != before_nonzero)) {
    before = result.decisions.size();
    before_nonzero = count_nonzero(result.decisions);
    shrinker.remove_chunks();
    shrinker.simplify_values();
  }
  return result;
}

}  // namespace seedpool::sim
