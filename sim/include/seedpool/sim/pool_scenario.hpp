#pragma once

// The pool's scenarios: a pool whose telemetry feeds a PoolChecker (the
// invariants and the reference model of the pool's promises), the callers'
// workload, and the pool's ending — recovery, counts, shutdown, reaping.
// Built on the generic ScenarioContext of <seedpool/sim/scenario.hpp>:
//
//   void churn(ScenarioContext& ctx) {
//     PoolHarness harness(ctx);
//     Pool& pool = harness.make_pool(config);
//     (void)harness.start_pool();
//     run_workload(harness, pool, Workload{.callers = 64});
//     harness.finish(8);
//   }

#include <seedpool/core/pool.hpp>
#include <seedpool/sim/pool_checker.hpp>
#include <seedpool/sim/pool_faults.hpp>
#include <seedpool/sim/scenario.hpp>

#include <cstddef>
#include <memory>
#include <optional>

namespace seedpool::sim {

// One pool under test and its checker, for one scenario run. Keep it in the
// scenario body's frame: it lives as long as the body.
class PoolHarness {
 public:
  explicit PoolHarness(ScenarioContext& context) : ctx(context) {}
  PoolHarness(const PoolHarness&) = delete;
  PoolHarness& operator=(const PoolHarness&) = delete;

  // Creates the pool, its telemetry feeding a fresh checker (with the
  // reference model unless ScenarioOptions::model is off). An invalid
  // config fails the run. One per run.
  Pool& make_pool(PoolConfig config);
  // The checker of the pool make_pool created. Requires make_pool first.
  PoolChecker& checker();
  // pool.start(deadline), reported to the checker (start() must return once
  // min_ready workers are ready, and by its deadline). `pool_default` with
  // no deadline: start() is called without one, and its own default
  // (init_timeout from now) is the deadline the checker holds it to.
  Status start_pool(std::optional<Instant> deadline = {}, bool pool_default = false);
  // pool.shutdown(deadline), reported to the checker: the grace ends at the
  // earliest deadline any shutdown asked for, and shutdown() must succeed
  // and return only once every process is reaped.
  // No deadline: shutdown() is called without one, and its own default
  // (shutdown_grace from now) is the deadline the checker holds it to.
  void shutdown_pool(std::optional<Instant> deadline = {});

  // The pool's ending: quiet (faults off), then the pool must be back to
  // `ready` ready workers (any number when nullopt, as in a lazy pool) with
  // none busy or starting within `bound` (default: PoolChecker::recovery_bound
  // of the pool's config); telemetry counters must match; then shutdown, and
  // every process must be reaped.
  void finish(std::optional<std::size_t> ready, std::optional<Duration> bound = {});

  ScenarioContext& ctx;

 private:
  std::unique_ptr<PoolChecker> checker_;  // declared first: the pool's hooks point to it
  std::unique_ptr<Pool> pool_;
};

// The callers of a pool scenario.
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
  // One lease in this many is a Pool::execute() instead (checkout, one call,
  // release, under one deadline for both: the checkout's, or an hour); 0:
  // never.
  std::size_t execute_one_in = 0;
  // One caller_cancel in this many is done by dropping the PendingCheckout
  // instead (half destroyed unwaited, half assigned over by a new checkout:
  // either cancels it), and one lease in this many ends by assigning an
  // empty Lease over it (which releases it); 0: never.
  std::size_t reassign_one_in = 0;
};

// Runs `workload` against `pool` and returns when every caller finished; a
// caller still running after `bound` is a callers-answered violation.
void run_workload(PoolHarness& harness, Pool& pool, const Workload& workload, Duration bound = minutes(30));

}  // namespace seedpool::sim
