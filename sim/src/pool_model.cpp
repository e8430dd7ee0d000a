// The pool's contract as a reference model; see pool_model.hpp.

#include <seedpool/core/assert.hpp>
#include <seedpool/sim/pool_model.hpp>
#include <seedpool/sim/trace.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace seedpool::sim {
namespace {

constexpr std::array<std::string_view, rule_count> rule_names = {
    "lease-exclusive",   "grant-after-deadline", "grant-after-cancel", "reply-mismatch",    "call-outcome",
    "call-deadline",     "frame-limit",
    "fifo",              "grant-prompt",         "expiry-prompt",      "cancel-prompt",     "saturation",
    "affinity-prefer",   "affinity-strict",      "worker-count",       "state-transition",  "start-on-demand",
    "restart-backoff",   "restart-prompt",       "init-timeout",       "health-ping",       "health-timeout",
    "recycle-max-calls", "recycle-lifetime",     "timeout-replaces",   "crash-prompt",      "stop-escalation",   "stderr-tail",
    "stderr-log",
    "breaker-opens",     "breaker-fast-fail",    "breaker-half-open",  "breaker-probe",     "start-prompt",
    "start-deadline",    "start-error",          "shutdown-refuses",   "shutdown-answers",  "shutdown-grace",
    "shutdown",          "checkout-accounting",  "call-accounting",    "telemetry-counts",  "callers-answered",
    "pool-recovered",    "processes-reaped",
};

std::string at(Instant t) { return format_instant(t); }

bool contains(const std::vector<std::uint64_t>& ids, std::uint64_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

bool answered_by_worker(const std::optional<ErrorCode>& error) {
  return !error || *error == ErrorCode::worker_error;
}

}  // namespace

std::string_view rule_name(Rule rule) noexcept { return rule_names[static_cast<std::size_t>(rule)]; }

Invariant invariant_of(Rule rule) {
  static const std::vector<Invariant> invariants = [] {
    std::vector<Invariant> all;
    all.reserve(rule_count);
    for (const std::string_view name : rule_names) {
      all.push_back(Invariant::named(name));
    }
    return all;
  }();
  return invariants[static_cast<std::size_t>(rule)];
}

std::optional<Rule> rule_from_name(std::string_view name) noexcept {
  for (std::size_t i = 0; i < rule_count; ++i) {
    if (rule_names[i] == name) {
      return static_cast<Rule>(i);
    }
  }
  return std::nullopt;
}

OutcomeTally tally_of(const OutcomeCounts& counts) {
  OutcomeTally tally{};
  for (std::size_t i = 0; i < tally.size(); ++i) {
    const auto it = counts.find(outcome_label(outcome_at(i)));
    tally[i] = it == counts.end() ? 0 : it->second;
  }
  return tally;
}

std::string describe(const OutcomeTally& tally) {
  std::string out;
  for (std::size_t i = 0; i < tally.size(); ++i) {
    if (tally[i] != 0) {
      out += fmt::format("{}{}={}", out.empty() ? "" : " ", outcome_label(outcome_at(i)), tally[i]);
    }
  }
  return out.empty() ? std::string("none") : out;
}

PoolModel::PoolModel(const PoolConfig& config)
    : config_(config), slots_(config.size.max), slot_active_(config.size.max) {}

void PoolModel::fail(Rule rule, std::string message) {
  if (!violation_) {
    violation_ = Violation{rule, std::move(message)};
  }
}

// ---------------------------------------------------------------- lookups

PoolModel::Worker* PoolModel::find(WorkerRef ref) {
  const auto it = std::find_if(workers_.begin(), workers_.end(), [ref](const Worker& w) { return w.ref == ref; });
  return it == workers_.end() ? nullptr : &*it;
}

PoolModel::Lease* PoolModel::find_lease(std::uint64_t id) {
  const auto it = std::find_if(leases_.begin(), leases_.end(), [id](const Lease& l) { return l.id == id; });
  return it == leases_.end() ? nullptr : &*it;
}

std::vector<PoolModel::Waiter>::iterator PoolModel::find_waiter(std::uint64_t id) {
  return std::find_if(live_begin(), waiters_.end(), [id](const Waiter& w) { return w.id == id && !w.gone; });
}

void PoolModel::erase_waiter(std::vector<Waiter>::iterator waiter) {
  SEEDPOOL_ASSERT(!waiter->cancelled || cancelled_waiting_ > 0);
  cancelled_waiting_ -= waiter->cancelled ? 1U : 0U;
  if (waiter->deadline <= earliest_deadline_) {
    earliest_stale_ = true;  // the earliest may have left; found again when needed
  }
  // Left in place and skipped: erasing from the middle moved every later
  // waiter. Compacted once the gone outnumber the waiting.
  waiter->gone = true;
  ++gone_waiters_;
  // Most leave in the order they came: the scans start past them.
  while (head_ < waiters_.size() && waiters_[head_].gone) {
    ++head_;
  }
  if (gone_waiters_ > 16 && gone_waiters_ * 2 > waiters_.size()) {
    std::erase_if(waiters_, [](const Waiter& w) { return w.gone; });
    gone_waiters_ = 0;
    head_ = 0;
  }
}

void PoolModel::caller_left(Lease& lease, Instant at) {
  gone_leases_ += lease.caller_gone ? 0U : 1U;
  lease.caller_gone = true;
  lease.gone_at = at;
}

Instant PoolModel::earliest_deadline() {
  if (earliest_stale_) {
    earliest_deadline_ = Instant::max();
    for (auto w = live_begin(); w != waiters_.end(); ++w) {
      earliest_deadline_ = w->gone ? earliest_deadline_ : std::min(earliest_deadline_, w->deadline);
    }
    earliest_stale_ = false;
  }
  return earliest_deadline_;
}

std::size_t PoolModel::count(WorkerState state) const { return state_counts_[static_cast<std::size_t>(state)]; }

std::size_t PoolModel::active() const {
  return count(WorkerState::starting) + count(WorkerState::initializing) + count(WorkerState::ready) +
         count(WorkerState::busy);
}

void PoolModel::set_state(Worker& w, WorkerState to) {
  --state_counts_[static_cast<std::size_t>(w.state)];
  ++state_counts_[static_cast<std::size_t>(to)];
  const bool was_active = w.state != WorkerState::stopping && w.state != WorkerState::dead;
  const bool now_active = to != WorkerState::stopping && to != WorkerState::dead;  // is_active, inline
  if (was_active != now_active) {
    SEEDPOOL_ASSERT(now_active || slot_active_[w.ref.slot] > 0);
    if (now_active) {
      ++slot_active_[w.ref.slot];
    } else {
      --slot_active_[w.ref.slot];
    }
  }
  w.state = to;
}

// The workers the pool must keep: the eager floor, and up to size.max as
// many as are serving or waited for.
std::size_t PoolModel::wanted() const {
  const std::size_t floor = config_.init == InitMode::eager ? config_.size.min : 0;
  const std::size_t serving = count(WorkerState::ready) + count(WorkerState::busy);
  return std::min(config_.size.max, std::max(floor, serving + waiting()));
}

const WorkerRef* PoolModel::bound(const std::string& key) const {
  const auto it = std::find_if(affinity_.begin(), affinity_.end(), [&key](const auto& b) { return b.first == key; });
  return it == affinity_.end() ? nullptr : &it->second;
}

// A binding is kept until affinity_keys_max newer keys have been bound; a
// key bound again keeps its place, as the pool's insertion order does.
void PoolModel::bind(const std::string& key, WorkerRef worker) {
  const auto it = std::find_if(affinity_.begin(), affinity_.end(), [&key](const auto& b) { return b.first == key; });
  if (it != affinity_.end()) {
    it->second = worker;
    return;
  }
  affinity_.emplace_back(key, worker);
  if (affinity_.size() > config_.affinity_keys_max) {
    affinity_.erase(affinity_.begin());
  }
}

bool PoolModel::eligible(const Waiter& waiter) const {
  const bool any_idle = count(WorkerState::ready) > 0;
  if (!any_idle || waiter.key.empty()) {
    return any_idle;
  }
  const WorkerRef* b = bound(waiter.key);
  if (b == nullptr || !waiter.strict) {
    return true;
  }
  const auto it = std::find_if(workers_.begin(), workers_.end(), [b](const Worker& w) { return w.ref == *b; });
  // Strict: only its own worker while that one is busy.
  return it == workers_.end() || it->state != WorkerState::busy;
}

// The largest delay the backoff may draw after `failures` consecutive failures.
Duration PoolModel::backoff_bound(std::uint32_t failures) const {
  const std::uint32_t doublings = std::min<std::uint32_t>(failures == 0 ? 0 : failures - 1, 30);
  const Duration max = config_.restart_backoff_max;
  // Doubling stops once past the max, so that the product cannot overflow.
  Duration delay = config_.restart_backoff_base;
  for (std::uint32_t i = 0; i < doublings && delay < max; ++i) {
    delay = delay * 2;
  }
  return std::min(delay, max);
}

// ---------------------------------------------------------------- telemetry

void PoolModel::on_event(const TelemetryEvent& e) {
  if (violation_) {
    return;
  }
  switch (e.kind) {
    case TelemetryKind::checkout_request: on_checkout_request(e); break;
    case TelemetryKind::checkout: on_checkout(e); break;
    case TelemetryKind::checkout_returned: on_checkout_returned(e); break;
    case TelemetryKind::call: break;  // counted by the checker against the aggregator
    case TelemetryKind::worker_state: on_worker_state(e); break;
    case TelemetryKind::worker_init: on_worker_init(e); break;
    case TelemetryKind::worker_exit: on_worker_exit(e); break;
    case TelemetryKind::worker_recycle: on_recycle(e); break;
    case TelemetryKind::health_ping:
    case TelemetryKind::health_pong:
    case TelemetryKind::health_failure: on_health(e); break;
    case TelemetryKind::breaker: on_breaker(e); break;
    case TelemetryKind::pool_shutdown: on_shutdown(e); break;
  }
}

void PoolModel::shutdown_requested(Instant deadline) {
  asked_deadline_ = std::min(asked_deadline_, deadline);
  if (shutting_down_) {
    grace_deadline_ = std::min(grace_deadline_, deadline);
  }
}

// A first pool_shutdown begins the shutdown; another may only report a
// grace shortened by a later shutdown, and no grace ends before a caller
// asked for it to.
void PoolModel::on_shutdown(const TelemetryEvent& e) {
  exercise(Rule::shutdown_answers);
  if (shutting_down_) {
    exercise(Rule::shutdown_grace);
    if (e.deadline >= reported_deadline_) {
      fail(Rule::shutdown_grace, fmt::format("a later shutdown reported the grace deadline {} where it was {}: it may "
                                             "only end the grace sooner", at(e.deadline), at(reported_deadline_)));
      return;
    }
  }
  if (asked_deadline_ != Instant::max() && e.deadline < asked_deadline_) {
    fail(Rule::shutdown_grace, fmt::format("the shutdown reported the grace deadline {}, before the earliest one asked "
                                           "for ({})", at(e.deadline), at(asked_deadline_)));
    return;
  }
  shutting_down_ = true;
  reported_deadline_ = e.deadline;
  grace_deadline_ = std::min(e.deadline, asked_deadline_);
}

void PoolModel::on_checkout_request(const TelemetryEvent& e) {
  started_ = true;
  // Ids grow with each checkout; only one at or below the highest taken so
  // far can be a second take (most arrive in order: no scan).
  if (e.checkout <= highest_checkout_ && find_waiter(e.checkout) != waiters_.end()) {
    fail(Rule::checkout_accounting, fmt::format("checkout {} was taken twice", e.checkout));
    return;
  }
  highest_checkout_ = std::max(highest_checkout_, e.checkout);
  Waiter waiter{e.checkout, e.deadline, e.detail, e.affinity_strict};
  waiter.requested_at = e.at;
  // A cancel the caller asked for before the pool took the request.
  waiter.cancel_requested = contains(cancel_requests_, e.checkout);
  if (contains(cancelled_ids_, e.checkout)) {
    waiter.cancelled = true;
    waiter.cancelled_at = e.at;
  }
  cancelled_waiting_ += waiter.cancelled ? 1U : 0U;
  earliest_deadline_ = std::min(earliest_deadline_, waiter.deadline);
  waiters_.push_back(std::move(waiter));
}

void PoolModel::on_checkout(const TelemetryEvent& e) {
  const auto waiter = find_waiter(e.checkout);
  if (waiter == waiters_.end()) {
    fail(Rule::checkout_accounting,
         fmt::format("the pool answered checkout {} ({}), which it had not taken or had answered already",
                     e.checkout, outcome_label(e.error)));
    return;
  }
  // The wait it reports is from the request to this answer (the pool
  // takes every request at the instant its caller made it in simulation).
  if (e.duration != e.at - waiter->requested_at) {
    fail(Rule::telemetry_counts, fmt::format("checkout {} ({}) was reported with a wait of {} ns; it was requested at "
                                             "{} and answered at {}", e.checkout, outcome_label(e.error),
                                             e.duration.ns(), at(waiter->requested_at), at(e.at)));
    return;
  }
  if (!e.error) {
    on_grant(e, waiter);
    return;
  }
  const Waiter gone = std::move(*waiter);
  erase_waiter(waiter);
  on_checkout_error(e, gone);
}

void PoolModel::on_grant(const TelemetryEvent& e, std::vector<Waiter>::iterator waiter) {
  const Waiter& w = *waiter;
  Worker* worker = e.worker ? find(*e.worker) : nullptr;
  if (worker == nullptr || worker->state != WorkerState::ready) {
    fail(Rule::lease_exclusive, fmt::format("checkout {} was granted worker {}, which is {}", w.id,
                                            e.worker ? e.worker->to_string() : "?",
                                            worker ? to_string(worker->state) : "not a live worker"));
    return;
  }
  if (e.at >= w.deadline) {
    fail(Rule::grant_after_deadline, fmt::format("checkout {} was granted worker {} at {}, at or after its deadline {}",
                                                 w.id, worker->ref.to_string(), at(e.at), at(w.deadline)));
    return;
  }
  if (shutting_down_) {
    fail(Rule::shutdown_refuses, fmt::format("checkout {} was granted worker {} after shutdown began", w.id,
                                             worker->ref.to_string()));
    return;
  }
  if (worker->reply_owed) {
    fail(Rule::timeout_replaces, fmt::format("checkout {} was granted worker {}, whose call timed out or broke the protocol: it may still "
                                             "owe that reply", w.id, worker->ref.to_string()));
    return;
  }
  if (config_.max_lifetime > Duration::zero() && e.at > worker->ready_at + config_.max_lifetime) {
    fail(Rule::recycle_lifetime, fmt::format("checkout {} was granted worker {} at {}, past its max_lifetime (ready "
                                             "at {})", w.id, worker->ref.to_string(), at(e.at), at(worker->ready_at)));
    return;
  }
  if (config_.max_calls > 0 && worker->answered_calls >= config_.max_calls) {
    fail(Rule::recycle_max_calls, fmt::format("checkout {} was granted worker {}, which has answered {} calls "
                                              "(max_calls {})", w.id, worker->ref.to_string(),
                                              worker->answered_calls, config_.max_calls));
    return;
  }
  // First come, first served: nobody ahead may still be able to take a worker.
  exercise(Rule::grant_after_deadline);
  if (waiting() > 1) {
    exercise(Rule::fifo);
  }
  for (auto it = live_begin(); it != waiter; ++it) {
    if (!it->gone && e.at < it->deadline && eligible(*it)) {
      fail(Rule::fifo, fmt::format("checkout {} was granted worker {} while checkout {}, taken earlier, still waited "
                                   "and could take an idle worker",
                                   w.id, worker->ref.to_string(), it->id));
      return;
    }
  }
  if (!w.key.empty()) {
    if (const WorkerRef* b = bound(w.key); b != nullptr && *b != worker->ref) {
      const Worker* own = find(*b);
      exercise(Rule::affinity_prefer);
      if (own != nullptr && own->state == WorkerState::ready) {
        fail(Rule::affinity_prefer, fmt::format("checkout {} (key '{}') was granted worker {} while the key's worker "
                                                "{} was idle", w.id, w.key, worker->ref.to_string(), b->to_string()));
        return;
      }
      if (w.strict) {
        exercise(Rule::affinity_strict);
        if (own != nullptr && own->state == WorkerState::busy) {
          fail(Rule::affinity_strict, fmt::format("strict checkout {} (key '{}') was granted worker {} while the key's "
                                                  "worker {} was busy: it must wait for it",
                                                  w.id, w.key, worker->ref.to_string(), b->to_string()));
          return;
        }
      }
    }
    bind(w.key, worker->ref);
  }
  Lease lease{w.id, worker->ref, e.at};
  if (w.cancelled) {
    lease.caller_gone = true;
    lease.gone_at = w.cancelled_at;
    ++gone_leases_;
  }
  if (w.cancel_requested && !w.cancelled) {
    ++instants_.grant_crossed_cancel;  // the pool granted while the caller was cancelling
  }
  worker->lease = w.id;
  leases_.push_back(lease);
  erase_waiter(waiter);
}

void PoolModel::on_checkout_error(const TelemetryEvent& e, const Waiter& w) {
  const ErrorCode code = *e.error;
  if (code != ErrorCode::cancelled) {
    failed_ids_.emplace_back(w.id, code);
    if (failed_ids_.size() > cancelled_ids_max) {
      failed_ids_.erase(failed_ids_.begin());
    }
  }
  switch (code) {
    case ErrorCode::timeout:
      exercise(Rule::expiry_prompt);
      if (e.at < w.deadline) {
        fail(Rule::expiry_prompt, fmt::format("checkout {} was answered timeout at {}, before its deadline {}", w.id,
                                              at(e.at), at(w.deadline)));
      }
      return;
    case ErrorCode::cancelled:
      exercise(Rule::cancel_prompt);
      if (!w.cancel_requested && !w.cancelled && !contains(cancel_requests_, w.id) && !contains(cancelled_ids_, w.id)) {
        fail(Rule::cancel_prompt, fmt::format("checkout {} was answered cancelled, but its caller never cancelled it",
                                              w.id));
      }
      return;
    case ErrorCode::pool_saturated:
      exercise(Rule::saturation);
      if (waiting() < config_.waiters_max) {
        fail(Rule::saturation, fmt::format("checkout {} was refused pool_saturated with {} checkouts waiting, fewer "
                                           "than waiters_max {}", w.id, waiting(), config_.waiters_max));
      } else if (eligible(w)) {
        fail(Rule::saturation, fmt::format("checkout {} was refused pool_saturated while an idle worker could serve it "
                                           "at once: only a checkout that would have to wait counts against "
                                           "waiters_max", w.id));
      }
      return;
    case ErrorCode::pool_unavailable:
      exercise(Rule::breaker_fast_fail);
      if (breaker_ == BreakerState::closed) {
        fail(Rule::breaker_fast_fail, fmt::format("checkout {} was refused pool_unavailable while the breaker is "
                                                  "closed", w.id));
      } else if (!w.queued_at_open && eligible(w)) {
        // A checkout the breaker finds waiting as it opens fails with the
        // others; one it refuses later must be one no idle worker can serve.
        fail(Rule::breaker_fast_fail, fmt::format("checkout {} was refused pool_unavailable while an idle worker "
                                                  "could serve it at once", w.id));
      }
      return;
    case ErrorCode::pool_shutting_down:
      exercise(Rule::shutdown_refuses);
      if (!shutting_down_) {
        fail(Rule::shutdown_refuses, fmt::format("checkout {} was refused pool_shutting_down before shutdown began",
                                                 w.id));
      }
      return;
    case ErrorCode::invalid_argument:
    case ErrorCode::launch_failed:
    case ErrorCode::worker_crashed:
    case ErrorCode::worker_error:
    case ErrorCode::protocol_error:
    case ErrorCode::closed:
    case ErrorCode::io_error: break;
  }
  fail(Rule::checkout_accounting, fmt::format("checkout {} ended with {}, which no checkout may end with", w.id,
                                              to_string(code)));
}

void PoolModel::on_checkout_returned(const TelemetryEvent& e) {
  Lease* lease = find_lease(e.checkout);
  if (lease == nullptr) {
    // Its worker left service under the lease before the caller's cancel or
    // deadline reached the pool; reported returned all the same, so that
    // the checkout counts as what its caller saw.
    if (const auto lost = std::find(lost_leases_.begin(), lost_leases_.end(), e.checkout); lost != lost_leases_.end()) {
      lost_leases_.erase(lost);
      exercise(Rule::cancel_prompt);
      return;
    }
    fail(Rule::checkout_accounting, fmt::format("the pool took back checkout {}, which holds no lease", e.checkout));
    return;
  }
  if (!lease->caller_gone) {
    fail(Rule::cancel_prompt, fmt::format("the pool took back the lease of checkout {}, whose caller had neither "
                                          "cancelled nor given up", e.checkout));
    return;
  }
  exercise(Rule::cancel_prompt);
}

void PoolModel::on_worker_state(const TelemetryEvent& e) {
  const WorkerRef ref = *e.worker;
  if (e.from == WorkerState::dead && e.to == WorkerState::starting) {
    on_new_worker(e);
    return;
  }
  Worker* w = find(ref);
  exercise(Rule::state_transition);
  const WorkerState known = w == nullptr ? WorkerState::dead : w->state;
  if (known != e.from || !is_legal_transition(e.from, e.to)) {
    fail(Rule::state_transition, fmt::format("worker {} went {} -> {} but was {}", ref.to_string(), to_string(e.from),
                                             to_string(e.to), to_string(known)));
    return;
  }
  if (e.from == WorkerState::ready && e.to == WorkerState::busy && (w->lease == 0 || find_lease(w->lease) == nullptr)) {
    fail(Rule::lease_exclusive, fmt::format("worker {} became busy without a grant", ref.to_string()));
    return;
  }
  if (e.from == WorkerState::busy) {
    on_checkin(*w, e);
    if (violation_) {
      return;
    }
  }
  if (e.to == WorkerState::stopping && (e.from == WorkerState::ready || e.from == WorkerState::busy) &&
      served(*w, e.at)) {
    slots_[ref.slot] = Slot{};  // stopped by the pool after it served: its slot starts afresh
  }
  if (e.to == WorkerState::stopping) {
    w->graceful_stop = (e.from == WorkerState::ready || e.from == WorkerState::busy) && !w->exited &&
                       !w->reply_owed && !w->broke_protocol &&
                       (w->recycle_reported || (shutting_down_ && e.from == WorkerState::ready));
  }
  set_state(*w, e.to);
  w->state_since = e.at;
  switch (e.to) {
    case WorkerState::ready:
      w->idle_since = e.at;
      if (w->ready_at == Instant::max()) {
        w->ready_at = e.at;
      }
      break;
    case WorkerState::dead:
      // A worker whose process was launched dies with that process: its
      // exit is reported first (worker_exits_total counts every exit).
      exercise(Rule::telemetry_counts);
      if (w->launched && !w->exited) {
        fail(Rule::telemetry_counts, fmt::format("worker {} went {} -> dead at {} without the exit of its process "
                                                 "being reported", ref.to_string(), to_string(e.from), at(e.at)));
        return;
      }
      --state_counts_[static_cast<std::size_t>(WorkerState::dead)];
      workers_.erase(workers_.begin() + (w - workers_.data()));
      break;
    case WorkerState::initializing: w->launched = true; break;
    case WorkerState::starting:
    case WorkerState::busy:
    case WorkerState::stopping: break;
  }
}

void PoolModel::on_new_worker(const TelemetryEvent& e) {
  started_ = true;
  exercise(Rule::start_on_demand);
  if (shutting_down_) {
    fail(Rule::shutdown_refuses, fmt::format("worker {} started after shutdown began", e.worker->to_string()));
    return;
  }
  if (breaker_ == BreakerState::open) {
    fail(Rule::start_on_demand, fmt::format("worker {} started while the breaker is open", e.worker->to_string()));
    return;
  }
  const bool probe = breaker_ == BreakerState::half_open;
  if (probe) {
    exercise(Rule::breaker_probe);
    const bool probing = std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.probe; });
    if (probing) {
      fail(Rule::breaker_probe, fmt::format("worker {} started while the half-open breaker's probe is still under way",
                                            e.worker->to_string()));
      return;
    }
  } else if (active() >= wanted()) {
    fail(Rule::start_on_demand, fmt::format("worker {} started with {} active workers, all the pool needs ({} waiting, "
                                            "size.min {}, init {})", e.worker->to_string(), active(), waiting(),
                                            config_.size.min, to_string(config_.init)));
    return;
  }
  if (active() >= config_.size.max) {
    fail(Rule::worker_count, fmt::format("worker {} started with {} active workers already, size.max {}",
                                         e.worker->to_string(), active(), config_.size.max));
    return;
  }
  exercise(Rule::worker_count);
  if (e.worker->slot >= slots_.size()) {
    fail(Rule::worker_count, fmt::format("worker {} started in a slot beyond size.max {}", e.worker->to_string(),
                                         config_.size.max));
    return;
  }
  if (breaker_ == BreakerState::closed) {
    const std::vector<std::uint32_t>& owed = owed_slots();
    if (std::find(owed.begin(), owed.end(), e.worker->slot) == owed.end()) {
      fail(Rule::restart_backoff, fmt::format("worker {} started in slot {}, not one of the lowest free slots the "
                                              "missing workers belong to ({})", e.worker->to_string(),
                                              e.worker->slot, fmt::join(owed, ", ")));
      return;
    }
  }
  const Slot& slot = slots_[e.worker->slot];
  if (slot.failures > 0) {
    exercise(Rule::restart_prompt);  // a replacement after a failure
    exercise(Rule::restart_backoff);
    const Duration largest = backoff_bound(slot.failures);
    const std::int64_t percent = std::min<std::int64_t>(config_.restart_backoff_jitter_percent, 100);
    const Duration smallest = largest - Duration::from_ns(largest.ns() / 100 * percent);
    if (e.at < *slot.last_failure + smallest) {
      fail(Rule::restart_backoff,
           fmt::format("worker {} started at {}, only {} ns after its slot's failure at {}: sooner than the "
                       "smallest backoff after {} failures in a row, {} ns",
                       e.worker->to_string(), at(e.at), (e.at - *slot.last_failure).ns(), at(*slot.last_failure),
                       slot.failures, smallest.ns()));
      return;
    }
  }
  Worker w;
  w.ref = *e.worker;
  w.created_at = e.at;
  w.state_since = e.at;
  w.probe = probe;
  workers_.push_back(w);
  ++state_counts_[static_cast<std::size_t>(WorkerState::starting)];
  ++slot_active_[w.ref.slot];
  SEEDPOOL_ASSERT(count(WorkerState::starting) <= workers_.size());
}

// A lease ends: the worker goes back to idle or out of service.
void PoolModel::on_checkin(Worker& w, const TelemetryEvent& e) {
  const auto lease = std::find_if(leases_.begin(), leases_.end(), [&w](const Lease& l) { return l.worker == w.ref; });
  if (lease != leases_.end()) {
    gone_leases_ -= lease->caller_gone ? 1U : 0U;
    if (e.to != WorkerState::ready) {
      lost_leases_.push_back(lease->id);
      if (lost_leases_.size() > lost_leases_max) {
        lost_leases_.erase(lost_leases_.begin());
      }
    }
    leases_.erase(lease);
  }
  w.lease = 0;
  if (e.to != WorkerState::ready) {
    return;
  }
  if (config_.max_lifetime > Duration::zero() && e.at > w.ready_at + config_.max_lifetime) {
    exercise(Rule::recycle_lifetime);
    fail(Rule::recycle_lifetime, fmt::format("worker {} went back to idle at {}, past its max_lifetime (ready at {}): "
                                             "it must be recycled at the checkin",
                                             w.ref.to_string(), at(e.at), at(w.ready_at)));
  } else if (w.reply_owed) {
    fail(Rule::timeout_replaces, fmt::format("worker {} went back to idle after a call on it timed out or broke the protocol", w.ref.to_string()));
  } else if (shutting_down_) {
    fail(Rule::shutdown_answers, fmt::format("worker {} went back to idle during shutdown", w.ref.to_string()));
  } else if (config_.max_calls > 0 && w.answered_calls >= config_.max_calls) {
    fail(Rule::recycle_max_calls, fmt::format("worker {} went back to idle after {} calls; max_calls is {}",
                                              w.ref.to_string(), w.answered_calls, config_.max_calls));
  }
  // A lease that ends past max_lifetime goes through idle to stopping at
  // once: the time-advance check below sees it idle only if it stays.
}

void PoolModel::record_failure(std::uint32_t slot, Instant t) {
  SEEDPOOL_ASSERT(slot < slots_.size());
  Slot& s = slots_[slot];
  ++s.failures;
  s.last_failure = t;
  s.due = t + backoff_bound(s.failures);
}

// The breaker's window, as documented: breaker_failures failed starts within
// breaker_window open it; a failed probe opens it again.
void PoolModel::count_failed_start(Instant t) {
  if (breaker_ == BreakerState::half_open) {
    must_open_ = true;
    return;
  }
  if (breaker_ == BreakerState::open) {
    return;
  }
  while (!init_failures_.empty() && t - init_failures_.front() >= config_.breaker_window) {
    init_failures_.pop_front();
  }
  init_failures_.push_back(t);
  if (init_failures_.size() >= config_.breaker_failures) {
    must_open_ = true;
  }
}

const std::vector<std::uint32_t>& PoolModel::owed_slots() {
  const std::size_t have = active();
  std::size_t missing = wanted() > have ? wanted() - have : 0;
  owed_.clear();
  for (std::uint32_t slot = 0; slot < slots_.size() && missing > 0; ++slot) {
    if (slot_active_[slot] == 0) {
      owed_.push_back(slot);
      --missing;
    }
  }
  return owed_;
}

void PoolModel::on_worker_init(const TelemetryEvent& e) {
  Worker* w = find(*e.worker);
  if (!e.error) {
    // A success closes a breaker that is not closed; the window keeps its
    // failures until they age out.
    if (breaker_ != BreakerState::closed) {
      must_close_ = true;
    }
    return;
  }
  if (*e.error == ErrorCode::timeout) {
    exercise(Rule::init_timeout);
    if (w != nullptr && e.at < w->created_at + config_.init_timeout) {
      fail(Rule::init_timeout, fmt::format("worker {} was failed for an init timeout at {}, before its init_timeout "
                                           "(started at {})", w->ref.to_string(), at(e.at), at(w->created_at)));
      return;
    }
  }
  record_failure(e.worker->slot, e.at);
  count_failed_start(e.at);
}

void PoolModel::on_worker_exit(const TelemetryEvent& e) {
  Worker* w = find(*e.worker);
  if (w == nullptr) {
    fail(Rule::state_transition, fmt::format("worker {} exited, but it is not a live worker", e.worker->to_string()));
    return;
  }
  // Only the pool sends terminate, and only to a worker that has been
  // stopping for terminate_grace (it sent the shutdown frame first): a
  // worker that dies of SIGTERM sooner got it too early.
  if (e.detail == "killed by signal 15") {
    exercise(Rule::stop_escalation);
    if (w->state != WorkerState::stopping || e.at < w->state_since + config_.terminate_grace) {
      fail(Rule::stop_escalation, fmt::format("worker {} died of SIGTERM at {}, {} since {}: terminate is due only "
                                              "terminate_grace ({} ns) after the stop", w->ref.to_string(), at(e.at),
                                              to_string(w->state), at(w->state_since),
                                              config_.terminate_grace.ns()));
      return;
    }
  }
  // A worker stopped gracefully gets the shutdown frame, terminate after
  // terminate_grace and kill only after another: SIGKILL sooner skipped a rung.
  if (e.detail == "killed by signal 9" && w->state == WorkerState::stopping && w->graceful_stop && !external_kills_) {
    exercise(Rule::stop_escalation);
    if (e.at < w->state_since + config_.terminate_grace * 2) {
      fail(Rule::stop_escalation, fmt::format("worker {}, stopped gracefully at {}, died of SIGKILL at {}: kill is due "
                                              "only two terminate_grace ({} ns) after the stop", w->ref.to_string(),
                                              at(w->state_since), at(e.at), config_.terminate_grace.ns()));
      return;
    }
  }
  w->exited = true;
  w->exited_at = e.at;
  for (Call& call : calls_) {
    if (call.worker == w->ref) {
      exercise(Rule::crash_prompt);
      exited_calls_ += call.worker_exited ? 0U : 1U;
      call.worker_exited = e.at;
    }
  }
  if (w->state == WorkerState::ready || w->state == WorkerState::busy) {
    // It leaves its slot of itself: after ready_exit_window it served, and
    // its replacement starts at once; sooner, it is a failed start.
    if (served(*w, e.at)) {
      slots_[w->ref.slot] = Slot{.due = e.at};
    } else {
      record_failure(w->ref.slot, e.at);
      count_failed_start(e.at);
    }
  }
}

bool PoolModel::served(const Worker& w, Instant t) const {
  return w.ready_at != Instant::max() && t - w.ready_at >= config_.ready_exit_window;
}

void PoolModel::on_recycle(const TelemetryEvent& e) {
  Worker* w = find(*e.worker);
  SEEDPOOL_ASSERT(w != nullptr);
  if (w->calls_in_flight > 0) {
    fail(Rule::recycle_max_calls, fmt::format("worker {} was recycled in the middle of a call", w->ref.to_string()));
    return;
  }
  if (e.detail == "max_calls") {
    w->recycle_reported = true;
    exercise(Rule::recycle_max_calls);
    if (config_.max_calls == 0 || w->answered_calls < config_.max_calls) {
      fail(Rule::recycle_max_calls, fmt::format("worker {} was recycled for max_calls after {} calls (max_calls {})",
                                                w->ref.to_string(), w->answered_calls, config_.max_calls));
    }
    return;
  }
  w->recycle_reported = true;
  exercise(Rule::recycle_lifetime);
  const Instant earliest = w->ready_at + config_.max_lifetime - config_.max_lifetime_jitter;
  if (config_.max_lifetime == Duration::zero() || e.at < earliest) {
    fail(Rule::recycle_lifetime, fmt::format("worker {} was recycled for max_lifetime at {}, before {} (ready at {}, "
                                             "max_lifetime {} ns less at most {} ns jitter)",
                                             w->ref.to_string(), at(e.at), at(earliest), at(w->ready_at),
                                             config_.max_lifetime.ns(), config_.max_lifetime_jitter.ns()));
  }
}

void PoolModel::on_health(const TelemetryEvent& e) {
  Worker* w = find(*e.worker);
  SEEDPOOL_ASSERT(w != nullptr);
  switch (e.kind) {
    case TelemetryKind::health_ping:
      exercise(Rule::health_ping);
      if (config_.health_interval == Duration::zero()) {
        fail(Rule::health_ping, fmt::format("worker {} was pinged though health_interval is zero (health checks "
                                            "disabled)", w->ref.to_string()));
        return;
      }
      if (w->state != WorkerState::ready || w->ping_at) {
        fail(Rule::health_ping, fmt::format("worker {} was pinged while {}{}", w->ref.to_string(), to_string(w->state),
                                            w->ping_at ? " with a ping unanswered" : ""));
        return;
      }
      w->ping_at = e.at;
      return;
    case TelemetryKind::health_pong:
      w->ping_at.reset();
      w->idle_since = e.at;
      return;
    default: break;
  }
  exercise(Rule::health_timeout);
  if (!w->ping_at || e.at < *w->ping_at + config_.health_timeout) {
    fail(Rule::health_timeout, fmt::format("worker {} failed its health check at {} without a ping unanswered for "
                                           "health_timeout ({} ns)", w->ref.to_string(), at(e.at),
                                           config_.health_timeout.ns()));
  }
}

void PoolModel::on_breaker(const TelemetryEvent& e) {
  switch (e.breaker) {
    case BreakerState::open:
      exercise(Rule::breaker_opens);
      if (!must_open_) {
        fail(Rule::breaker_opens, fmt::format("the breaker opened at {} with {} failed starts within breaker_window, "
                                              "breaker_failures is {}", at(e.at), init_failures_.size(),
                                              config_.breaker_failures));
        return;
      }
      must_open_ = false;
      opened_at_ = e.at;
      for (auto it = live_begin(); it != waiters_.end(); ++it) {
        it->queued_at_open = true;
      }
      start_breaker_opened_ = start_breaker_opened_ || start_pending_;
      init_failures_.clear();
      break;
    case BreakerState::half_open:
      exercise(Rule::breaker_half_open);
      if (breaker_ != BreakerState::open || e.at < opened_at_ + config_.breaker_cooldown) {
        fail(Rule::breaker_half_open, fmt::format("the breaker went half-open at {}, opened at {}, breaker_cooldown {} "
                                                  "ns", at(e.at), at(opened_at_), config_.breaker_cooldown.ns()));
        return;
      }
      break;
    case BreakerState::closed:
      if (!must_close_) {
        fail(Rule::breaker_probe, fmt::format("the breaker closed at {} without a worker becoming ready", at(e.at)));
        return;
      }
      must_close_ = false;
      break;
  }
  breaker_ = e.breaker;
  for (Worker& w : workers_) {
    w.probe = false;
  }
}

// ---------------------------------------------------------------- callers

void PoolModel::start_requested(Instant deadline, std::size_t min_ready) {
  started_ = true;
  start_pending_ = true;
  start_breaker_opened_ = false;
  start_deadline_ = deadline;
  start_min_ready_ = min_ready;
}

void PoolModel::start_returned(Instant now, bool ok) {
  start_pending_ = false;
  exercise(Rule::start_prompt);
  if (violation_) {
    return;
  }
  if (now > start_deadline_) {
    fail(Rule::start_deadline, fmt::format("start() returned at {}, after its deadline {}", at(now),
                                           at(start_deadline_)));
  } else if (ok && count(WorkerState::ready) + count(WorkerState::busy) < start_min_ready_) {
    fail(Rule::start_prompt, fmt::format("start() succeeded with {} workers ready, min_ready is {}",
                                         count(WorkerState::ready) + count(WorkerState::busy), start_min_ready_));
  } else if (!ok && now < start_deadline_ && !start_breaker_opened_ && !shutting_down_) {
    // It fails early only when the breaker opens or shutdown begins.
    fail(Rule::start_prompt, fmt::format("start() failed at {}, before its deadline {}, with the breaker {} and no "
                                         "shutdown", at(now), at(start_deadline_), to_string(breaker_)));
  }
}

void PoolModel::cancel_requested(std::uint64_t checkout) {
  cancel_requests_.push_back(checkout);
  if (const auto w = find_waiter(checkout); w != waiters_.end()) {
    w->cancel_requested = true;
  }
}

void PoolModel::cancel_returned(std::uint64_t checkout, bool took_effect, Instant now) {
  std::erase(cancel_requests_, checkout);
  const bool leased = contains(leased_ids_, checkout);
  std::erase(leased_ids_, checkout);
  if (leased && took_effect && !violation_) {
    fail(Rule::grant_after_cancel, fmt::format("checkout {} returned a lease, then its cancel() took effect", checkout));
    return;
  }
  if (!took_effect) {
    if (const auto w = find_waiter(checkout); w != waiters_.end()) {
      w->cancel_requested = false;
    }
    return;
  }
  if (Lease* lease = record_cancel(checkout, now); lease != nullptr) {
    // The grant was sent and the cancel still took effect: they crossed,
    // at one instant (the caller would otherwise have taken the grant
    // before time moved on).
    SEEDPOOL_ASSERT(lease->granted_at == now);
    caller_left(*lease, now);
    ++instants_.grant_crossed_cancel;
  }
}

PoolModel::Lease* PoolModel::record_cancel(std::uint64_t checkout, Instant now) {
  exercise(Rule::grant_after_cancel);
  cancelled_ids_.push_back(checkout);
  if (cancelled_ids_.size() > cancelled_ids_max) {
    cancelled_ids_.erase(cancelled_ids_.begin());
  }
  if (const auto w = find_waiter(checkout); w != waiters_.end()) {
    cancelled_waiting_ += w->cancelled ? 0U : 1U;
    w->cancelled = true;
    w->cancelled_at = now;
  }
  return find_lease(checkout);
}

void PoolModel::checkout_dropped(std::uint64_t checkout, Instant now) {
  std::erase(cancel_requests_, checkout);
  const auto failed = std::find_if(failed_ids_.begin(), failed_ids_.end(),
                                   [checkout](const auto& f) { return f.first == checkout; });
  if (failed != failed_ids_.end()) {
    ++caller_checkouts_[outcome_index(failed->second)];  // the pool had answered: the drop changed nothing
    failed_ids_.erase(failed);
    return;
  }
  ++caller_checkouts_[outcome_index(ErrorCode::cancelled)];
  if (violation_) {
    return;
  }
  if (Lease* lease = record_cancel(checkout, now); lease != nullptr) {
    caller_left(*lease, now);  // granted and never taken: it must come back
  }
}

void PoolModel::checkout_answered(std::uint64_t checkout, const std::optional<ErrorCode>& error, Instant now) {
  ++caller_checkouts_[outcome_index(error)];
  if (violation_) {
    return;
  }
  if (!error && contains(cancelled_ids_, checkout)) {
    fail(Rule::grant_after_cancel, fmt::format("checkout {} returned a lease after its cancel() took effect", checkout));
    return;
  }
  if (!error && contains(cancel_requests_, checkout)) {
    leased_ids_.push_back(checkout);  // a cancel() is under way: it must not take effect now
  }
  if (error && *error == ErrorCode::timeout) {
    if (Lease* lease = find_lease(checkout); lease != nullptr) {
      caller_left(*lease, now);  // a grant that crossed the deadline: it must come back
      ++instants_.grant_crossed_deadline;
    }
  }
}

void PoolModel::protocol_broken(std::uint64_t call) {
  const auto it = std::find_if(calls_.begin(), calls_.end(), [call](const Call& c) { return c.id == call; });
  SEEDPOOL_ASSERT(it != calls_.end());
  if (Worker* w = find(it->worker); w != nullptr) {
    exercise(Rule::timeout_replaces);
    w->broke_protocol = true;
  }
}

void PoolModel::execute_answered(const std::optional<ErrorCode>& error) {
  const bool checkout_failed = error && (*error == ErrorCode::pool_unavailable || *error == ErrorCode::pool_saturated ||
                                         *error == ErrorCode::cancelled);
  if (checkout_failed) {
    ++caller_checkouts_[outcome_index(error)];
    return;
  }
  if (error == ErrorCode::timeout) {
    // The one deadline ran out in the checkout or in the call: which one,
    // check_accounting reads from the stats.
    ++execute_timeouts_;
    return;
  }
  ++caller_checkouts_[outcome_index(std::nullopt)];
  ++caller_calls_[outcome_index(error)];
}

void PoolModel::call_begun(std::uint64_t call, WorkerRef worker, Instant now, Instant deadline) {
  calls_.push_back(Call{call, worker, deadline});
  if (Worker* w = find(worker); w != nullptr) {
    ++w->calls_in_flight;
    if (w->exited && w->exited_at == now) {
      ++instants_.exit_during_call;
    }
  }
}

void PoolModel::call_answered(std::uint64_t call, const std::optional<ErrorCode>& error, Instant now) {
  ++caller_calls_[outcome_index(error)];
  const auto it = std::find_if(calls_.begin(), calls_.end(), [call](const Call& c) { return c.id == call; });
  SEEDPOOL_ASSERT(it != calls_.end());
  const WorkerRef ref = it->worker;
  const std::optional<Instant> exited = it->worker_exited;
  const Instant deadline = it->deadline;
  exited_calls_ -= exited ? 1U : 0U;
  calls_.erase(it);
  if (error && *error == ErrorCode::timeout) {
    exercise(Rule::call_deadline);
    const Worker* w = find(ref);
    // A line whose earlier call timed out refuses at once, with timeout.
    if (now < deadline && (w == nullptr || !w->reply_owed) && !violation_) {
      fail(Rule::call_deadline, fmt::format("a call on worker {} timed out at {}, before its deadline {}",
                                            ref.to_string(), at(now), at(deadline)));
    }
  }
  if (error && *error == ErrorCode::pool_shutting_down) {
    // Only the grace deadline cuts a lease during shutdown.
    exercise(Rule::shutdown_grace);
    if ((!shutting_down_ || now < grace_deadline_) && !violation_) {
      fail(Rule::shutdown_grace, fmt::format("a call on worker {} was cut at {} with pool_shutting_down, before the "
                                             "shutdown's grace deadline {}", ref.to_string(), at(now),
                                             shutting_down_ ? at(grace_deadline_) : std::string("(no shutdown)")));
    }
  }
  if (exited && error && *error == ErrorCode::timeout && *exited < now && !violation_) {
    fail(Rule::crash_prompt, fmt::format("a call on worker {} timed out at {}, though the worker exited at {}",
                                         ref.to_string(), at(now), at(*exited)));
  }
  Worker* w = find(ref);
  if (w == nullptr) {
    return;  // gone already
  }
  SEEDPOOL_ASSERT(w->calls_in_flight > 0);
  --w->calls_in_flight;
  if (answered_by_worker(error)) {
    ++w->answered_calls;
  }
  // A call that timed out leaves a reply owed; one that broke the protocol
  // leaves a worker that cannot be trusted: neither worker serves again.
  if (error && (*error == ErrorCode::timeout || *error == ErrorCode::protocol_error)) {
    exercise(Rule::timeout_replaces);
    w->reply_owed = true;
  }
  if (w->exited && w->exited_at == now) {
    ++instants_.exit_during_call;
  }
}

// ---------------------------------------------------------------- time

// Whatever falls due before `next` must be done now: no task runs and no
// timer fires between the two, so a deadline d < next that is still unmet
// was missed, even when no step of the run lands on d itself.
void PoolModel::before_time_advance(Instant now, Instant next) {
  if (violation_ || !started_) {
    return;
  }
  check_waiters(now, next);
  if (!violation_) {
    check_workers(now, next);
  }
  if (!violation_) {
    check_breaker_and_starts(now, next);
  }
}

void PoolModel::check_waiters(Instant now, Instant next) {
  if (waiting() > config_.waiters_max) {
    fail(Rule::saturation, fmt::format("{} checkouts wait, more than waiters_max {}", waiting(),
                                       config_.waiters_max));
    return;
  }
  if (waiting() > 0) {
    exercise(Rule::grant_prompt);
  }
  // The waiters are scanned only when one of them may be owed something:
  // most time advances find every worker busy, nobody cancelled and the
  // earliest deadline still ahead.
  const bool any_idle = count(WorkerState::ready) > 0;
  const bool owed = any_idle || cancelled_waiting_ > 0 || shutting_down_ || breaker_ != BreakerState::closed ||
                    earliest_deadline() < next;
  for (auto it = live_begin(); it != waiters_.end(); ++it) {
    const Waiter& w = *it;
    if (!owed) {
      break;  // nothing can be owed to any of them
    }
    if (w.gone) {
      continue;
    }
    if (w.deadline < next) {
      fail(Rule::expiry_prompt, fmt::format("checkout {} still waits at {}, past its deadline {}", w.id, at(now),
                                            at(w.deadline)));
      return;
    }
    if (w.cancelled) {
      fail(Rule::cancel_prompt, fmt::format("checkout {} still waits at {}, cancelled at {}", w.id, at(now),
                                            at(w.cancelled_at)));
      return;
    }
    if (shutting_down_) {
      fail(Rule::shutdown_answers, fmt::format("checkout {} still waits at {}, after shutdown began", w.id, at(now)));
      return;
    }
    if (breaker_ != BreakerState::closed) {
      fail(Rule::breaker_fast_fail, fmt::format("checkout {} waits at {} while the breaker is {}: it must fail fast",
                                                w.id, at(now), to_string(breaker_)));
      return;
    }
    if (any_idle && eligible(w)) {
      fail(Rule::grant_prompt, fmt::format("checkout {} still waits at {} while an idle worker could serve it", w.id,
                                           at(now)));
      return;
    }
  }
  for (const Call& c : calls_) {
    if (exited_calls_ == 0) {
      break;
    }
    if (c.worker_exited) {
      fail(Rule::crash_prompt, fmt::format("a call on worker {} still waits at {}, though the worker exited at {}",
                                           c.worker.to_string(), at(now), at(*c.worker_exited)));
      return;
    }
  }
  for (const Lease& l : leases_) {
    if (gone_leases_ == 0) {
      break;
    }
    if (l.caller_gone) {
      fail(Rule::cancel_prompt, fmt::format("worker {} is still leased at {} to checkout {}, whose caller left at {}",
                                            l.worker.to_string(), at(now), l.id, at(l.gone_at)));
      return;
    }
  }
}

void PoolModel::check_workers(Instant now, Instant next) {
  for (const Worker& w : workers_) {
    if (w.state == WorkerState::busy && !w.exited && !w.reply_owed && !w.ping_at && !w.broke_protocol) {
      continue;  // leased and owing nothing: the rules below cannot apply (the common case)
    }
    if ((w.state == WorkerState::starting || w.state == WorkerState::initializing) &&
        w.created_at + config_.init_timeout < next) {
      fail(Rule::init_timeout, fmt::format("worker {} is still {} at {}, init_timeout after its start at {}", w.ref.to_string(),
                                           to_string(w.state), at(now), at(w.created_at)));
      return;
    }
    if (w.state == WorkerState::stopping) {
      exercise(Rule::stop_escalation);
      if (w.state_since + config_.terminate_grace * 2 < next) {
        fail(Rule::stop_escalation, fmt::format("worker {} is still stopping at {}, two terminate_grace after {}", w.ref.to_string(),
                                                at(now), at(w.state_since)));
        return;
      }
      continue;
    }
    if (w.exited) {
      fail(Rule::crash_prompt, fmt::format("worker {} exited at {} and is still {} at {}", w.ref.to_string(), at(w.exited_at),
                                           to_string(w.state), at(now)));
      return;
    }
    if (w.broke_protocol && (w.state == WorkerState::ready || w.state == WorkerState::busy)) {
      fail(Rule::timeout_replaces, fmt::format("worker {} is still {} at {} after it wrote a frame nobody asked for: "
                                               "it must be replaced at once", w.ref.to_string(), to_string(w.state),
                                               at(now)));
      return;
    }
    if (w.reply_owed && (w.state == WorkerState::ready || w.state == WorkerState::busy)) {
      fail(Rule::timeout_replaces, fmt::format("worker {} is still {} at {} after a call on it timed out or broke the protocol", w.ref.to_string(),
                                               to_string(w.state), at(now)));
      return;
    }
    if (w.ping_at && *w.ping_at + config_.health_timeout < next) {
      fail(Rule::health_timeout, fmt::format("worker {} missed its pong (ping at {}, health_timeout {} ns) and is "
                                             "still {} at {}", w.ref.to_string(), at(*w.ping_at), config_.health_timeout.ns(),
                                             to_string(w.state), at(now)));
      return;
    }
    if (w.state != WorkerState::ready) {
      continue;
    }
    if (shutting_down_) {
      fail(Rule::shutdown_answers, fmt::format("worker {} is still idle at {} after shutdown began", w.ref.to_string(), at(now)));
      return;
    }
    if (config_.health_interval > Duration::zero() && !w.ping_at && w.idle_since + config_.health_interval < next) {
      fail(Rule::health_ping, fmt::format("worker {} has been idle since {} without a ping at {} (health_interval {} "
                                          "ns)", w.ref.to_string(), at(w.idle_since), at(now), config_.health_interval.ns()));
      return;
    }
    if (config_.max_lifetime > Duration::zero() && w.ready_at + config_.max_lifetime < next) {
      fail(Rule::recycle_lifetime, fmt::format("worker {} is still idle at {}, past its max_lifetime (ready at {})",
                                               w.ref.to_string(), at(now), at(w.ready_at)));
      return;
    }
  }
  if (shutting_down_ && grace_deadline_ < next) {
    exercise(Rule::shutdown_grace);
    if (count(WorkerState::busy) > 0) {
      fail(Rule::shutdown_grace, fmt::format("{} workers are still leased at {}, past the grace deadline {}",
                                             count(WorkerState::busy), at(now), at(grace_deadline_)));
      return;
    }
  }
  if (start_pending_) {
    if (count(WorkerState::ready) + count(WorkerState::busy) >= start_min_ready_) {
      fail(Rule::start_prompt, fmt::format("start() still waits at {} with {} workers ready, min_ready is {}", at(now),
                                           count(WorkerState::ready) + count(WorkerState::busy), start_min_ready_));
    } else if (start_deadline_ < next) {
      fail(Rule::start_deadline, fmt::format("start() still waits at {}, its deadline was {}", at(now),
                                             at(start_deadline_)));
    }
  }
}

void PoolModel::check_breaker_and_starts(Instant now, Instant next) {
  if (must_open_) {
    fail(Rule::breaker_opens, fmt::format("the breaker is still {} at {} after {} failed starts within breaker_window",
                                          to_string(breaker_), at(now), config_.breaker_failures));
    return;
  }
  if (must_close_) {
    fail(Rule::breaker_probe, fmt::format("the breaker is still {} at {} though a worker became ready",
                                          to_string(breaker_), at(now)));
    return;
  }
  if (breaker_ == BreakerState::open && opened_at_ + config_.breaker_cooldown < next) {
    fail(Rule::breaker_half_open, fmt::format("the breaker is still open at {}, breaker_cooldown after {}", at(now),
                                              at(opened_at_)));
    return;
  }
  if (shutting_down_ || breaker_ == BreakerState::open) {
    return;
  }
  if (breaker_ == BreakerState::half_open) {
    // The probe starts in a free slot once that slot's backoff is over.
    Instant due = Instant::max();
    for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) {
      due = slot_active_[slot] > 0 ? due : std::min(due, slots_[slot].due);
    }
    const bool probing = std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.probe; });
    if (!probing && active() < config_.size.max && next > due) {
      fail(Rule::breaker_probe, fmt::format("the half-open breaker has no probe under way at {} (a free slot's "
                                            "backoff was over at {})", at(now), at(due)));
    }
    return;
  }
  for (const std::uint32_t slot : owed_slots()) {
    if (next > slots_[slot].due) {
      exercise(Rule::restart_prompt);
      fail(Rule::restart_prompt, fmt::format("{} active workers at {}, the pool needs {}, and slot {} has none though "
                                             "its backoff ended at {} ({} failures in a row)", active(), at(now),
                                             wanted(), slot, at(slots_[slot].due), slots_[slot].failures));
      return;
    }
  }
}

// ---------------------------------------------------------------- accounting

void PoolModel::check_accounting(const PoolStats& stats) {
  if (violation_) {
    return;
  }
  exercise(Rule::checkout_accounting);
  exercise(Rule::call_accounting);
  // An execute() that timed out is a checkout timeout or a granted checkout
  // whose call timed out: as many of them as the stats count checkouts
  // timed out beyond the callers' own are taken to be the first kind.
  const OutcomeTally counted_checkouts = tally_of(stats.checkouts);
  OutcomeTally checkouts = caller_checkouts_;
  OutcomeTally calls = caller_calls_;
  const std::size_t timeout = outcome_index(ErrorCode::timeout);
  const std::uint64_t in_checkout =
      std::min(execute_timeouts_, counted_checkouts[timeout] - std::min(counted_checkouts[timeout], checkouts[timeout]));
  checkouts[timeout] += in_checkout;
  checkouts[outcome_index(std::nullopt)] += execute_timeouts_ - in_checkout;
  calls[timeout] += execute_timeouts_ - in_checkout;
  const std::string executes =
      execute_timeouts_ == 0 ? std::string() : fmt::format(" (with {} of {} execute() timeouts in the checkout)",
                                                           in_checkout, execute_timeouts_);
  if (counted_checkouts != checkouts) {
    fail(Rule::checkout_accounting, fmt::format("the stats count checkouts as {}; the callers saw {}{}",
                                                describe(counted_checkouts), describe(checkouts), executes));
    return;
  }
  if (const OutcomeTally counted = tally_of(stats.calls); counted != calls) {
    fail(Rule::call_accounting, fmt::format("the stats count calls as {}; the callers saw {}{}", describe(counted),
                                            describe(calls), executes));
  }
}

}  // namespace seedpool::sim
