#pragma once

// The pool checker: runs a PoolModel (the pool's contract, pool_model.hpp) in
// lockstep with a simulated pool and fails the run at the first divergence
// with the rule's invariant (invariant_of): "[fifo] checkout 7 was granted
// ...". It feeds the model the pool's telemetry, what the scenario's callers
// report, and every advance of virtual time; it also keeps the timeline and
// the coverage report (which rules each run exercised, as "rule:<name>", and
// coincidences at one instant, as "instant:<name>"), and runs the liveness
// checks after a quiet period with faults off.
//
// With the model switched off (ScenarioOptions::model) only the checks that
// need no model run: lease exclusivity, replies, call outcomes, the telemetry
// counts and the liveness checks. It exists to measure what the model costs.

#include <seedpool/core/pool.hpp>
#include <seedpool/core/telemetry.hpp>
#include <seedpool/sim/faults.hpp>
#include <seedpool/sim/pool_model.hpp>
#include <seedpool/sim/sim_process.hpp>
#include <seedpool/sim/sim_world.hpp>
#include <seedpool/sim/timeline.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seedpool::sim {

class PoolChecker final : public TelemetrySink, public LogSink, public TimeObserver {
 public:
  // `faults` (optional) tells which faults fired, for the call outcomes a
  // broken worker allows. Installs itself as `world`'s time observer.
  PoolChecker(SimWorld& world, const PoolConfig& config, Timeline& timeline, Coverage& coverage,
              const FaultInjector* faults = nullptr, bool model = true);
  // Adds the rule and instant coverage of the run; removes the observer.
  ~PoolChecker() override;
  PoolChecker(const PoolChecker&) = delete;
  PoolChecker& operator=(const PoolChecker&) = delete;

  // Safety checks on every pool event; also feeds the timeline and coverage.
  void on_event(const TelemetryEvent& event) override;
  // The pool's LogSink: each line is counted under its worker's process
  // name, for expect_reaped to compare with what the processes sent.
  void on_stderr(std::string_view pool, WorkerRef worker, std::string_view line) override;
  void before_time_advance(Instant now, Instant next) override;

  // What the callers see. A caller reports each checkout the pool took (its
  // PendingCheckout::id) and each call; cancel_requested/cancel_returned
  // bracket PendingCheckout::cancel().
  void start_requested(Instant deadline, std::size_t min_ready);
  void start_returned(const Status& status);
  void cancel_requested(std::uint64_t checkout);
  void cancel_returned(std::uint64_t checkout, bool took_effect);
  // Every checkout with an affinity key in this run asks for `mode` (the
  // workload's): the pool's checkout_request must say so.
  void expect_affinity_mode(AffinityMode mode) { affinity_mode_ = mode; }
  // The worker serving the call of `payload` wrote a frame nobody asked
  // for while serving it: it must be replaced at once, whatever the call got.
  void expect_protocol_break(std::string payload) { protocol_breaks_.push_back(std::move(payload)); }
  // A caller's Pool::execute(payload) returned `answer`.
  // `deadline`: the one ExecuteOptions::deadline of its checkout and call.
  void execute_answered(std::uint32_t caller, std::string_view payload, const Result<std::string>& answer,
                        Instant deadline);
  // The caller assigned another checkout over the PendingCheckout of
  // `checkout` (after cancel_requested), which drops it: `token`, taken
  // from it before, must find it ended.
  void checkout_dropped(std::uint64_t checkout, const CheckoutCancelToken& token);
  // `checkout` 0: begin_checkout failed, the pool never took it.
  void checkout_answered(std::uint64_t checkout, const std::optional<ErrorCode>& error);
  void lease_acquired(std::uint32_t caller, WorkerRef worker, Instant deadline);
  void lease_released(std::uint32_t caller, WorkerRef worker);
  // Returns the call's id for call_answered.
  std::uint64_t call_begun(WorkerRef worker, Instant deadline);
  void call_answered(std::uint64_t call, std::uint32_t caller, std::string_view payload,
                     const Result<std::string>& answer);
  // Calls and checkouts are compared with the stats at the end only when
  // every one of them was reported (run_workload does; a scenario that also
  // calls the pool directly says so here).
  void set_callers_complete(bool complete) noexcept { callers_complete_ = complete; }
  // Every start that fails in this run writes `line` to stderr first (a
  // scenario whose worker program fails one way): a failed start() must name
  // it, and so must the pool_unavailable a checkout gets from the breaker
  // (the last failure's stderr tail).
  void expect_failure_stderr(std::string line) { failure_stderr_ = std::move(line); }
  // A checkout the caller saw fail, with the error it got.
  void checkout_failed(const Error& error);

  // Liveness after the workload: polls the pool until it has `ready` ready
  // workers (any number when nullopt) and none busy or starting, for at most
  // `bound`.
  void expect_recovered(Pool& pool, std::optional<std::size_t> ready, Duration bound);
  // After shutdown: no simulated process left running, and every stderr
  // line a process sent reached the LogSink under its worker, in order.
  void expect_reaped(const SimProcessHost& host);
  // After shutdown: the aggregator against the events, and the stats against
  // what the callers saw.
  void expect_counts_match(const PoolStats& stats);
  // pool.stats(), checked: its workers gauge must be the one the events
  // delivered while the snapshot was taken made at some point.
  PoolStats stats_of(Pool& pool);

  // A caller is about to call shutdown() with grace until `deadline`.
  void shutdown_requested(Instant deadline);
  // shutdown() returned `status`: it must succeed.
  void shutdown_returned(const Status& status);
  // `finished` of `callers` callers were done within `bound`.
  void workload_finished(std::size_t callers, std::size_t finished, Duration bound);

  // Fails the run with the rule's invariant: "[rule] message".
  void violation(Rule rule, const std::string& message);
  // A scenario's own invariant: "[name] message".
  void violation(Invariant invariant, const std::string& message);
  bool violated() const noexcept { return violated_; }
  // The rule of the first violation, when it was one of Rule.
  std::optional<Rule> violated_rule() const noexcept { return violated_rule_; }

  // The quiet-period bound the configuration implies: everything a pool may
  // still be doing when faults stop (a stopped worker's escalation, the
  // largest backoff, the breaker's cooldown, a probe's init, a hung idle
  // worker found by its health check), one after another.
  static Duration recovery_bound(const PoolConfig& config);
  const PoolConfig& config() const noexcept { return config_; }

 private:
  void report_model();
  void check_stderr_tail(const Error& error);
  void exercise(Rule rule);


  // The recovery and path coverage keys counted on pool events.
  enum class Path : std::uint8_t { worker_exit, init_failed, init_ok, recycle, health_failure };
  static constexpr std::size_t path_count = 5;
  static std::string path_key(std::size_t path);
  static std::string call_key(std::size_t outcome);
  static std::string checkout_key(std::size_t outcome);
  static constexpr std::size_t shelf_step_count = 7;  // hand-over steps on the shelf, "shelf:<step>"
  static std::string shelf_key(std::size_t step);

  using Holders = std::vector<std::pair<WorkerRef, std::uint32_t>>;  // worker -> caller holding its lease
  Holders::iterator find_holder(WorkerRef worker);

  SimWorld& world_;
  const PoolConfig config_;
  Timeline& timeline_;
  Coverage& coverage_;
  const FaultInjector* faults_;
  std::optional<PoolModel> model_;
  Holders holders_;
  OutcomeTally checkouts_{};  // by outcome, from events
  OutcomeTally calls_{};
  CoverageCounters<path_count> paths_;
  CoverageCounters<outcome_count> call_outcomes_;      // "call:<outcome>"
  CoverageCounters<outcome_count> checkout_outcomes_;  // "checkout:<outcome>"
  CoverageCounters<shelf_step_count> shelf_steps_;
  // The latency histograms as documented (cumulative "<= bound" buckets),
  // rebuilt from the events independently of seedpool::Histogram.
  struct Buckets {
    std::array<std::uint64_t, Histogram::bounds_ns.size()> at{};  // in the first bucket whose bound is >= it
    std::uint64_t count = 0;
    std::int64_t sum_ns = 0;
    void observe(Duration d);
    // "" when `h` agrees, else what differs.
    std::string compare(const Histogram& h) const;
  };
  Buckets checkout_wait_;
  Buckets call_duration_;
  Buckets init_duration_;
  std::uint64_t exits_ = 0;
  std::map<std::string, LineDigest> stderr_logged_;  // the LogSink's lines, by process name ("pool/worker")
  std::array<std::int64_t, worker_state_count> gauges_{};  // live workers by state, from the events
  std::vector<std::array<std::int64_t, worker_state_count>> gauge_window_;  // while a stats() is under way
  bool gauge_recording_ = false;
  std::uint64_t returned_ = 0;  // checkout_returned events
  std::uint64_t next_call_ = 1;
  bool callers_complete_ = false;
  std::optional<std::string> failure_stderr_;
  std::optional<AffinityMode> affinity_mode_;
  std::vector<std::string> protocol_breaks_;  // payloads of calls whose worker broke the protocol
  bool violated_ = false;
  std::optional<Rule> violated_rule_;
  std::array<std::uint64_t, rule_count> exercised_{};  // the checker's own rules, then the model's added
};

}  // namespace seedpool::sim
