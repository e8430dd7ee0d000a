#pragma once

// Invariants of the pool, checked while a simulated run goes (safety) and
// after a quiet period with faults off (liveness). A violation fails the run
// through SimWorld::fail with a message that starts with the invariant's name
// in brackets, e.g. "[lease-exclusive] ...", so sweeps can group failures.
//
// Safety:  lease-exclusive   a worker is never leased to two callers at once
//          grant-after-deadline  no caller is granted a worker after its deadline
//          reply-mismatch    a reply is never delivered to the wrong caller
//          call-outcome      every call ends with a reply or an expected error
//          worker-count      active workers never exceed size.max
//          state-transition  worker states change only along legal edges
//          telemetry-counts  the aggregator's counters agree with the events
//          restart-backoff   after a failure (an init failure, or the exit of
//                            a ready or busy worker) no worker starts sooner
//                            than the smallest backoff the config allows:
//                            restart_backoff_base less its jitter share
//          call-outcome also fails a call that ends with protocol_error in a
//          run where no simulated worker broke the protocol (no garbage,
//          truncated or wrong-id fault fired): then the error can only come
//          from the pool, e.g. a late reply of a call it gave up on reaching
//          the next caller's call
// Liveness: callers-answered, pool-recovered, processes-reaped

#include <seedpool/core/pool.hpp>
#include <seedpool/core/telemetry.hpp>
#include <seedpool/sim/faults.hpp>
#include <seedpool/sim/sim_process.hpp>
#include <seedpool/sim/sim_world.hpp>
#include <seedpool/sim/timeline.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seedpool::sim {

class PoolChecker final : public TelemetrySink {
 public:
  PoolChecker(SimWorld& world, const PoolConfig& config, Timeline& timeline, Coverage& coverage);

  // Safety checks on every pool event; also feeds the timeline and coverage.
  void on_event(const TelemetryEvent& event) override;

  // Caller-side bookkeeping.
  void lease_acquired(std::uint32_t caller, WorkerRef worker, Instant deadline);
  void lease_released(std::uint32_t caller, WorkerRef worker);
  void call_answered(std::uint32_t caller, std::string_view payload, const Result<std::string>& answer);
  // Counts a checkout's outcome (nullopt: a lease) into the coverage.
  void checkout_answered(const std::optional<ErrorCode>& error);

  // Liveness after the workload: polls the pool until it has `ready` ready
  // workers (any number when nullopt) and none busy or starting, for at most
  // `bound`.
  void expect_recovered(Pool& pool, std::optional<std::size_t> ready, Duration bound);
  // After shutdown: no simulated process left running.
  void expect_reaped(const SimProcessHost& host);
  // The aggregator's counters against this checker's own tallies.
  void expect_counts_match(const PoolStats& stats);

  // Fails the run with "[invariant] message".
  void violation(std::string_view invariant, const std::string& message);
  bool violated() const noexcept { return violated_; }

 private:
  // Outcomes are counted by seedpool::outcome_index.
  using OutcomeTally = std::array<std::uint64_t, outcome_count>;
  static OutcomeCounts to_counts(const OutcomeTally& tally);

  // The recovery and path coverage keys counted on pool events.
  enum class Path : std::uint8_t { worker_exit, init_failed, init_ok, recycle, health_failure };
  static constexpr std::size_t path_count = 5;
  static std::string path_key(std::size_t path);
  static std::string call_key(std::size_t outcome);
  static std::string checkout_key(std::size_t outcome);

  // Small tables searched in place: no more entries than the pool has
  // workers that are not dead.
  using WorkerStates = std::vector<std::pair<WorkerRef, WorkerState>>;
  using Holders = std::vector<std::pair<WorkerRef, std::uint32_t>>;  // worker -> caller holding its lease
  WorkerStates::iterator find_state(WorkerRef worker);
  Holders::iterator find_holder(WorkerRef worker);

  SimWorld& world_;
  const PoolConfig config_;
  Timeline& timeline_;
  Coverage& coverage_;
  WorkerStates states_;
  Holders holders_;
  std::size_t active_ = 0;
  OutcomeTally checkouts_{};  // by outcome, from events
  OutcomeTally calls_{};
  CoverageCounters<path_count> paths_;
  CoverageCounters<outcome_count> call_outcomes_;      // "call:<outcome>"
  CoverageCounters<outcome_count> checkout_outcomes_;  // "checkout:<outcome>"
  std::uint64_t exits_ = 0;
  std::optional<Instant> last_failure_;  // the latest failure that calls for a restart backoff
  bool violated_ = false;
};

}  // namespace seedpool::sim
