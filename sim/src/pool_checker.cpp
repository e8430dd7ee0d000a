#include <seedpool/core/assert.hpp>
#include <seedpool/core/codec.hpp>
#include <seedpool/sim/pool_checker.hpp>
#include <seedpool/sim/pool_faults.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

namespace seedpool::sim {
namespace {

std::string lane(WorkerRef w) { return fmt::format("worker {}", w.to_string()); }

// "rule:<name>" for every rule, formatted once: each run reports them all.
const std::array<std::string, rule_count>& rule_keys() {
  static const std::array<std::string, rule_count> keys = [] {
    std::array<std::string, rule_count> k;
    for (std::size_t i = 0; i < rule_count; ++i) {
      k[i] = fmt::format("rule:{}", rule_name(static_cast<Rule>(i)));
    }
    return k;
  }();
  return keys;
}

// The label of the outcome numbered `index` (seedpool::outcome_index).
std::string_view outcome_of(std::size_t index) { return outcome_label(outcome_at(index)); }

// Coverage of the hand-over steps by who made them (StepBy): a caller on
// the shelf or the pool task. Empty for every other step.
constexpr std::string_view shelf_keys[] = {
    "shelf:taken_by_caller",   "shelf:taken_by_pool_task", "shelf:grant_on_checkout",    "shelf:grant_on_release",
    "shelf:grant_by_pool_task", "shelf:release_to_shelf",  "shelf:release_by_pool_task",
};

// The hand-over step an event reports (an index into shelf_keys), if any.
std::optional<std::size_t> shelf_step(const TelemetryEvent& e) {
  const bool caller = e.by != StepBy::pool_task;
  switch (e.kind) {
    case TelemetryKind::checkout_request: return caller ? 0 : 1;
    case TelemetryKind::checkout:
      if (e.error) {
        return std::nullopt;
      }
      return e.by == StepBy::checkout ? 2 : e.by == StepBy::release ? 3 : 4;
    case TelemetryKind::worker_state:
      if (e.from != WorkerState::busy || e.to != WorkerState::ready) {
        return std::nullopt;
      }
      return caller ? 5 : 6;
    default: return std::nullopt;
  }
}

// Faults after which a caller may rightly see protocol_error.
constexpr FaultSite protocol_faults[] = {pool_faults::call_garbage, pool_faults::call_truncated,
                                         pool_faults::call_wrong_id, pool_faults::init_garbage,
                                         pool_faults::call_stray_pong};

}  // namespace

PoolChecker::PoolChecker(SimWorld& world, const PoolConfig& config, Timeline& timeline, Coverage& coverage,
                         const FaultInjector* faults, bool model)
    : world_(world),
      config_(config),
      timeline_(timeline),
      coverage_(coverage),
      faults_(faults),
      paths_(coverage, &path_key),
      call_outcomes_(coverage, &call_key),
      checkout_outcomes_(coverage, &checkout_key),
      shelf_steps_(coverage, &shelf_key) {
  if (model) {
    model_.emplace(config_);
    world_.set_time_observer(this);
  }
}

PoolChecker::~PoolChecker() {
  if (model_) {
    world_.set_time_observer(nullptr);
    for (std::size_t i = 0; i < rule_count; ++i) {
      exercised_[i] += model_->exercised()[i];
    }
    const PoolModel::Instants& instants = model_->instants();
    for (const auto& [key, count] : {std::pair{"instant:grant_crossed_cancel", instants.grant_crossed_cancel},
                                     std::pair{"instant:grant_crossed_deadline", instants.grant_crossed_deadline},
                                     std::pair{"instant:exit_during_call", instants.exit_during_call}}) {
      if (count != 0) {
        coverage_[key] += count;
      }
    }
  }
  for (std::size_t i = 0; i < rule_count; ++i) {
    if (exercised_[i] != 0) {
      coverage_[rule_keys()[i]] += exercised_[i];
    }
  }
}

Duration PoolChecker::recovery_bound(const PoolConfig& c) {
  // One round: a stopped worker's escalation, the largest backoff, the
  // breaker's cooldown and an init that may time out. A probe started while
  // faults were on may fail, so two rounds; then a worker launched to ignore
  // pings is found by its health check.
  const Duration round = c.terminate_grace * 2 + c.restart_backoff_max + c.breaker_cooldown + c.init_timeout;
  const Duration health = c.health_interval > Duration::zero() ? c.health_interval + c.health_timeout : Duration::zero();
  return round * 2 + health;
}

std::string PoolChecker::shelf_key(std::size_t step) {
  static_assert(std::size(shelf_keys) == shelf_step_count);
  return std::string(shelf_keys[step]);
}

std::string PoolChecker::path_key(std::size_t path) {
  switch (static_cast<Path>(path)) {
    case Path::worker_exit: return "recovery:worker_exit";
    case Path::init_failed: return "recovery:init_failed";
    case Path::init_ok: return "path:init_ok";
    case Path::recycle: return "recovery:recycle";
    case Path::health_failure: return "recovery:health_failure";
  }
  SEEDPOOL_ASSERT_MSG(false, "unknown PoolChecker::Path");
  return {};
}

std::string PoolChecker::call_key(std::size_t outcome) { return fmt::format("call:{}", outcome_of(outcome)); }

std::string PoolChecker::checkout_key(std::size_t outcome) { return fmt::format("checkout:{}", outcome_of(outcome)); }

PoolChecker::Holders::iterator PoolChecker::find_holder(WorkerRef worker) {
  return std::find_if(holders_.begin(), holders_.end(), [worker](const auto& entry) { return entry.first == worker; });
}

void PoolChecker::violation(Rule rule, const std::string& message) {
  if (!violated_) {
    violated_rule_ = rule;
  }
  violation(invariant_of(rule), message);
}

// An observation of d belongs to the first bucket whose bound is at or
// above it (Prometheus "le" counts it in that one and every later one); a
// negative duration counts as zero.
void PoolChecker::Buckets::observe(Duration d) {
  const std::int64_t ns = std::max<std::int64_t>(d.ns(), 0);
  std::size_t i = 0;
  while (i < at.size() && ns > Histogram::bounds_ns[i]) {
    ++i;
  }
  if (i < at.size()) {
    ++at[i];
  }
  ++count;
  sum_ns += ns;
}

std::string PoolChecker::Buckets::compare(const Histogram& h) const {
  if (h.count() != count || h.sum_ns() != sum_ns) {
    return fmt::format("count {} sum {} ns; the events say count {} sum {} ns", h.count(), h.sum_ns(), count, sum_ns);
  }
  std::uint64_t le = 0;
  for (std::size_t i = 0; i < at.size(); ++i) {
    le += at[i];
    if (h.cumulative(i) != le) {
      return fmt::format("{} observations <= {} ns; the events say {}", h.cumulative(i), Histogram::bounds_ns[i], le);
    }
  }
  return {};
}

void PoolChecker::shutdown_requested(Instant deadline) {
  if (model_) {
    model_->shutdown_requested(deadline);
  }
}

void PoolChecker::shutdown_returned(const Status& status) {
  exercise(Rule::shutdown);
  if (!status) {
    violation(Rule::shutdown, status.error().describe());
  }
}

void PoolChecker::workload_finished(std::size_t callers, std::size_t finished, Duration bound) {
  exercise(Rule::callers_answered);
  if (finished < callers) {
    violation(Rule::callers_answered, fmt::format("{} of {} callers still waiting after {}", callers - finished,
                                                  callers, format_instant(Instant::zero() + bound)));
  }
}

void PoolChecker::violation(Invariant invariant, const std::string& message) {
  if (!violated_) {
    violated_ = true;
    world_.fail(invariant, message);
  }
}

void PoolChecker::report_model() {
  if (model_ && model_->violation() && !violated_) {
    violation(model_->violation()->rule, model_->violation()->message);
  }
}

void PoolChecker::before_time_advance(Instant now, Instant next) {
  SEEDPOOL_ASSERT(model_.has_value());
  model_->before_time_advance(now, next);
  report_model();
}

void PoolChecker::on_event(const TelemetryEvent& event) {
  if (model_) {
    if (event.kind == TelemetryKind::worker_exit && faults_ != nullptr) {
      model_->set_external_kills(faults_->fired(pool_faults::external_kill) + faults_->fired(pool_faults::burst_kill) > 0);
    }
    model_->on_event(event);
    report_model();
  }
  if (const std::optional<std::size_t> step = shelf_step(event); step) {
    shelf_steps_.increment(*step);
  }
  switch (event.kind) {
    case TelemetryKind::worker_state: {
      if (event.from != WorkerState::dead) {
        --gauges_[static_cast<std::size_t>(event.from)];
      }
      if (event.to != WorkerState::dead) {
        ++gauges_[static_cast<std::size_t>(event.to)];
      }
      if (gauge_recording_) {
        gauge_window_.push_back(gauges_);
      }
      if (!timeline_.enabled()) {
        break;
      }
      if (event.to == WorkerState::dead) {
        timeline_.end(lane(*event.worker), event.at);
      } else {
        timeline_.begin(lane(*event.worker), to_string(event.to), event.at);
      }
      break;
    }
    case TelemetryKind::checkout:
      ++checkouts_[outcome_index(event.error)];
      checkout_wait_.observe(event.duration);
      break;
    case TelemetryKind::checkout_returned:
      ++returned_;
      --checkouts_[outcome_index(std::nullopt)];
      ++checkouts_[outcome_index(event.error)];
      break;
    case TelemetryKind::call:
      ++calls_[outcome_index(event.error)];
      call_duration_.observe(event.duration);
      break;
    case TelemetryKind::worker_exit:
      ++exits_;
      paths_.increment(static_cast<std::size_t>(Path::worker_exit));
      if (timeline_.enabled()) {
        timeline_.instant(lane(*event.worker), "exit: " + event.detail, event.at);
      }
      break;
    case TelemetryKind::worker_init:
      init_duration_.observe(event.duration);
      paths_.increment(static_cast<std::size_t>(event.error ? Path::init_failed : Path::init_ok));
      break;
    case TelemetryKind::worker_recycle: paths_.increment(static_cast<std::size_t>(Path::recycle)); break;
    case TelemetryKind::health_failure:
      paths_.increment(static_cast<std::size_t>(Path::health_failure));
      if (timeline_.enabled()) {
        timeline_.instant(lane(*event.worker), "health failure", event.at);
      }
      break;
    case TelemetryKind::breaker:
      increment(coverage_, fmt::format("recovery:breaker_{}", to_string(event.breaker)));
      timeline_.instant("breaker", to_string(event.breaker), event.at);
      break;
    case TelemetryKind::checkout_request:
      if (affinity_mode_ && !event.detail.empty()) {
        const bool strict = *affinity_mode_ == AffinityMode::strict;
        exercise(strict ? Rule::affinity_strict : Rule::affinity_prefer);
        if (event.affinity_strict != strict) {
          violation(strict ? Rule::affinity_strict : Rule::affinity_prefer,
                    fmt::format("checkout {} (key '{}') was taken as {}, but its caller asked for {}", event.checkout,
                                event.detail, event.affinity_strict ? "affinity-strict" : "affinity (prefer)",
                                strict ? "affinity-strict" : "affinity (prefer)"));
        }
      }
      break;
    case TelemetryKind::health_ping:
    case TelemetryKind::health_pong:
    case TelemetryKind::pool_shutdown: break;
  }
}

void PoolChecker::execute_answered(std::uint32_t caller, std::string_view payload, const Result<std::string>& answer,
                                   Instant deadline) {
  const std::optional<ErrorCode> error = answer.ok() ? std::nullopt : std::optional<ErrorCode>(answer.error().code);
  // One deadline bounds the checkout and the call together: an execute()
  // times out at it, never before or after.
  if (error == ErrorCode::timeout) {
    exercise(Rule::call_deadline);
    if (world_.now() != deadline) {
      violation(Rule::call_deadline, fmt::format("caller {} executed '{}' with the deadline {} and got a timeout at {}: "
                                                 "{}", caller, payload, format_instant(deadline),
                                                 format_instant(world_.now()), answer.error().describe()));
    }
  }
  if (!answer.ok()) {
    check_stderr_tail(answer.error());
  }
  call_outcomes_.increment(outcome_index(error));
  if (model_) {
    model_->execute_answered(error);
  }
  if (answer.ok() && answer.value() != payload) {
    violation(Rule::reply_mismatch, fmt::format("caller {} executed '{}' and got the reply '{}'", caller, payload,
                                                answer.value()));
  }
}

void PoolChecker::start_requested(Instant deadline, std::size_t min_ready) {
  if (model_) {
    model_->start_requested(deadline, min_ready);
  }
}

void PoolChecker::start_returned(const Status& status) {
  exercise(Rule::start_error);
  exercise(Rule::start_deadline);
  if (!status) {
    check_stderr_tail(status.error());
  }
  if (!status && status.error().code != ErrorCode::pool_shutting_down &&
      status.error().message.find("failed to start") == std::string::npos) {
    violation(Rule::start_error, "start failed without saying why: " + status.error().describe());
  }
  if (failure_stderr_ && !status && status.error().code != ErrorCode::pool_shutting_down &&
      status.error().message.find("no worker failed") == std::string::npos &&
      status.error().describe().find(*failure_stderr_) == std::string::npos) {
    violation(Rule::start_error, fmt::format("start failed without the failed workers' stderr ('{}'): {}",
                                             *failure_stderr_, status.error().describe()));
  }
  if (model_) {
    model_->start_returned(world_.now(), status.ok());
    report_model();
  }
}

void PoolChecker::cancel_requested(std::uint64_t checkout) {
  if (model_) {
    model_->cancel_requested(checkout);
  }
}

void PoolChecker::cancel_returned(std::uint64_t checkout, bool took_effect) {
  if (model_) {
    model_->cancel_returned(checkout, took_effect, world_.now());
  }
}

void PoolChecker::checkout_dropped(std::uint64_t checkout, const CheckoutCancelToken& token) {
  exercise(Rule::cancel_prompt);
  if (model_) {
    model_->checkout_dropped(checkout, world_.now());
    report_model();
  }
  if (token.cancel()) {
    violation(Rule::cancel_prompt, fmt::format("checkout {} could still be cancelled after its PendingCheckout was "
                                               "assigned over: the assignment must drop (cancel) it", checkout));
  }
}

void PoolChecker::checkout_answered(std::uint64_t checkout, const std::optional<ErrorCode>& error) {
  checkout_outcomes_.increment(outcome_index(error));
  if (model_ && checkout != 0) {
    model_->checkout_answered(checkout, error, world_.now());
    report_model();
  }
}

void PoolChecker::checkout_failed(const Error& error) {
  check_stderr_tail(error);
  if (failure_stderr_ && error.code == ErrorCode::pool_unavailable) {
    exercise(Rule::breaker_fast_fail);
    if (error.stderr_tail.find(*failure_stderr_) == std::string::npos) {
      violation(Rule::breaker_fast_fail, fmt::format("a checkout was refused pool_unavailable without the last failed "
                                                     "start's stderr ('{}'): {}", *failure_stderr_, error.describe()));
    }
  }
}

// The stderr tail an error carries is the worker's ring: at most
// stderr_lines_kept lines, each at most stderr_line_bytes_max bytes plus the
// mark of a cut.
void PoolChecker::check_stderr_tail(const Error& error) {
  if (error.stderr_tail.empty()) {
    return;
  }
  exercise(Rule::stderr_tail);
  constexpr std::string_view cut_mark = "…[cut]";
  std::size_t lines = 0;
  for (std::size_t at = 0; at <= error.stderr_tail.size(); ++lines) {
    const std::size_t end = std::min(error.stderr_tail.find('\n', at), error.stderr_tail.size());
    if (end - at > config_.stderr_line_bytes_max + cut_mark.size()) {
      violation(Rule::stderr_tail, fmt::format("a stderr line of {} bytes in an error, stderr_line_bytes_max is {}: {}",
                                               end - at, config_.stderr_line_bytes_max, error.describe()));
      return;
    }
    at = end + 1;
  }
  if (lines > config_.stderr_lines_kept) {
    violation(Rule::stderr_tail, fmt::format("an error's stderr tail has {} lines, stderr_lines_kept is {}: {}", lines,
                                             config_.stderr_lines_kept, error.describe()));
  }
}

// The checker's own rules count as exercised where they run; the model
// counts its own.
void PoolChecker::exercise(Rule rule) { ++exercised_[static_cast<std::size_t>(rule)]; }

void PoolChecker::lease_acquired(std::uint32_t caller, WorkerRef worker, Instant deadline) {
  exercise(Rule::lease_exclusive);
  if (world_.now() > deadline) {
    violation(Rule::grant_after_deadline,
              fmt::format("caller {} got worker {} at {} after its deadline {}", caller, worker.to_string(),
                          format_instant(world_.now()), format_instant(deadline)));
  }
  if (const auto it = find_holder(worker); it != holders_.end()) {
    violation(Rule::lease_exclusive, fmt::format("worker {} leased to caller {} while caller {} holds it",
                                                 worker.to_string(), caller, it->second));
  } else {
    holders_.emplace_back(worker, caller);
  }
}

void PoolChecker::lease_released(std::uint32_t caller, WorkerRef worker) {
  const auto it = find_holder(worker);
  if (it != holders_.end() && it->second == caller) {
    holders_.erase(it);
  }
}

std::uint64_t PoolChecker::call_begun(WorkerRef worker, Instant deadline) {
  const std::uint64_t call = next_call_++;
  if (model_) {
    model_->call_begun(call, worker, world_.now(), deadline);
  }
  return call;
}

void PoolChecker::call_answered(std::uint64_t call, std::uint32_t caller, std::string_view payload,
                                const Result<std::string>& answer) {
  const std::optional<ErrorCode> error = answer.ok() ? std::nullopt : std::optional<ErrorCode>(answer.error().code);
  if (!answer.ok()) {
    check_stderr_tail(answer.error());
  }
  call_outcomes_.increment(outcome_index(error));
  if (const auto broke = std::find(protocol_breaks_.begin(), protocol_breaks_.end(), payload);
      broke != protocol_breaks_.end()) {
    protocol_breaks_.erase(broke);
    if (model_) {
      model_->protocol_broken(call);
    }
  }
  if (model_) {
    model_->call_answered(call, error, world_.now());
    report_model();
  }
  if (kFrameHeaderBytes + payload.size() > config_.frame_bytes_max) {
    exercise(Rule::frame_limit);
    if (error != ErrorCode::invalid_argument) {
      violation(Rule::frame_limit, fmt::format("caller {} sent a call of {} bytes, a frame over frame_bytes_max {}, "
                                               "and got {}: it must be refused invalid_argument, unsent",
                                               caller, payload.size(), config_.frame_bytes_max,
                                               answer.ok() ? std::string("a reply") : answer.error().describe()));
    }
    return;
  }
  exercise(answer.ok() ? Rule::reply_mismatch : Rule::call_outcome);
  if (answer.ok()) {
    if (answer.value() != payload) {
      violation(Rule::reply_mismatch, fmt::format("caller {} sent '{}' and got the reply '{}'", caller, payload,
                                                  answer.value()));
    }
    return;
  }
  switch (*error) {
    case ErrorCode::protocol_error:
      for (const FaultSite fault : protocol_faults) {
        if (faults_ != nullptr && faults_->fired(fault) > 0) {
          return;
        }
      }
      violation(Rule::call_outcome, fmt::format("caller {} got a protocol error though no simulated worker broke the "
                                                "protocol in this run: {}",
                                                caller, answer.error().describe()));
      return;
    case ErrorCode::timeout:
    case ErrorCode::worker_crashed:
    case ErrorCode::worker_error:
    case ErrorCode::pool_shutting_down: return;
    case ErrorCode::invalid_argument:
      violation(Rule::frame_limit, fmt::format("caller {} got invalid_argument for a call of {} bytes, within "
                                               "frame_bytes_max {}: {}", caller, payload.size(),
                                               config_.frame_bytes_max, answer.error().describe()));
      return;
    case ErrorCode::launch_failed:
    case ErrorCode::cancelled:
    case ErrorCode::closed:
    case ErrorCode::pool_saturated:
    case ErrorCode::pool_unavailable:
    case ErrorCode::io_error: break;
  }
  violation(Rule::call_outcome, fmt::format("caller {} got an unexpected call error: {}", caller,
                                            answer.error().describe()));
}

void PoolChecker::expect_recovered(Pool& pool, std::optional<std::size_t> ready, Duration bound) {
  exercise(Rule::pool_recovered);
  const Instant until = world_.now() + bound;
  PoolStats stats = stats_of(pool);
  while (true) {
    const bool recovered = (!ready || stats.workers_in(WorkerState::ready) == static_cast<std::int64_t>(*ready)) &&
                           stats.workers_in(WorkerState::busy) == 0 &&
                           stats.workers_in(WorkerState::starting) == 0 &&
                           stats.workers_in(WorkerState::initializing) == 0;
    if (recovered) {
      return;
    }
    if (world_.now() >= until) {
      violation(Rule::pool_recovered,
                fmt::format("pool not back to {} ready workers {} after the faults stopped: ready={} busy={} "
                            "starting={} initializing={} stopping={} breaker={}",
                            ready ? std::to_string(*ready) : std::string("any"), format_instant(Instant::zero() + bound),
                            stats.workers_in(WorkerState::ready), stats.workers_in(WorkerState::busy),
                            stats.workers_in(WorkerState::starting), stats.workers_in(WorkerState::initializing),
                            stats.workers_in(WorkerState::stopping), to_string(stats.breaker)));
      return;
    }
    world_.sleep_for(milliseconds(100));
    stats = stats_of(pool);
  }
}

void PoolChecker::on_stderr(std::string_view pool, WorkerRef worker, std::string_view line) {
  stderr_logged_[fmt::format("{}/{}", pool, worker.to_string())].add(line);
}

void PoolChecker::expect_reaped(const SimProcessHost& host) {
  exercise(Rule::processes_reaped);
  if (host.alive() != 0) {
    std::string pids;
    for (const std::int64_t pid : host.alive_pids()) {
      pids += fmt::format(" {}", pid);
    }
    violation(Rule::processes_reaped,
              fmt::format("{} worker processes still running after shutdown:{}", host.alive(), pids));
    return;
  }
  // Every process has exited and the pool has read its events to the end:
  // its LogSink has had every line the process sent, and no other.
  const std::map<std::string, LineDigest>& sent = host.stderr_sent();
  const LineDigest none;
  for (const auto& [name, lines] : sent) {
    exercise(Rule::stderr_log);
    const auto logged = stderr_logged_.find(name);
    const LineDigest& got = logged == stderr_logged_.end() ? none : logged->second;
    if (got != lines) {
      violation(Rule::stderr_log,
                fmt::format("worker process '{}' sent {} stderr lines; the LogSink got {}{}", name, lines.lines,
                            got.lines, got.lines == lines.lines ? ", other lines or in another order" : ""));
      return;
    }
  }
  for (const auto& [name, lines] : stderr_logged_) {
    if (!sent.contains(name)) {
      violation(Rule::stderr_log, fmt::format("the LogSink got {} stderr lines tagged '{}', a worker whose process "
                                              "sent none",
                                              lines.lines, name));
      return;
    }
  }
}

PoolStats PoolChecker::stats_of(Pool& pool) {
  gauge_window_.assign(1, gauges_);
  gauge_recording_ = true;
  PoolStats stats = pool.stats();
  gauge_recording_ = false;
  exercise(Rule::telemetry_counts);
  if (std::find(gauge_window_.begin(), gauge_window_.end(), stats.workers) == gauge_window_.end()) {
    std::string theirs;
    std::string mine;
    for (std::size_t i = 0; i < worker_state_count; ++i) {
      theirs += fmt::format(" {}={}", to_string(static_cast<WorkerState>(i)), stats.workers[i]);
      mine += fmt::format(" {}={}", to_string(static_cast<WorkerState>(i)), gauges_[i]);
    }
    violation(Rule::telemetry_counts, fmt::format("the workers gauge says{}; the events say{}", theirs, mine));
  }
  return stats;
}

void PoolChecker::expect_counts_match(const PoolStats& stats) {
  exercise(Rule::telemetry_counts);
  // Calls refused after the pool task ended are in the stats without an event.
  OutcomeTally calls = tally_of(stats.calls);
  const OutcomeTally late = tally_of(stats.calls_after_shutdown);
  for (std::size_t i = 0; i < calls.size(); ++i) {
    calls[i] -= late[i];
  }
  const OutcomeTally checkouts = tally_of(stats.checkouts);
  if (checkouts != checkouts_ || calls != calls_ || stats.worker_exits != exits_) {
    violation(Rule::telemetry_counts,
              fmt::format("the aggregator counts checkouts {}, calls {}, {} exits; the events say {}, {}, {}",
                          describe(checkouts), describe(calls), stats.worker_exits, describe(checkouts_),
                          describe(calls_), exits_));
    return;
  }
  for (const auto& [name, mine, theirs] : {std::tuple{"checkout_wait", &checkout_wait_, &stats.checkout_wait},
                                           std::tuple{"call_duration", &call_duration_, &stats.call_duration},
                                           std::tuple{"init_duration", &init_duration_, &stats.init_duration}}) {
    if (const std::string differs = mine->compare(*theirs); !differs.empty()) {
      violation(Rule::telemetry_counts, fmt::format("the {} histogram disagrees with the events: {}", name, differs));
      return;
    }
  }
  if (model_ && callers_complete_) {
    model_->check_accounting(stats);
    report_model();
  }
}

}  // namespace seedpool::sim
