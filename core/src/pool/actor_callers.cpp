// The pool task's side of its callers: checkouts and their waiters, calls,
// leases, stats and start(); see actor.hpp.

#include "actor.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace seedpool::detail {

// ---------------------------------------------------------------- checkouts

void PoolActor::handle(CheckoutRequest& m) {
  emit_request(m);
  Waiter waiter{m.id, m.deadline, m.requested_at, std::move(m.affinity_key), m.affinity_mode, std::move(m.reply)};
  waiter.phase = std::move(m.phase);
  if (shutting_down_) {
    fail_checkout(waiter, Error{ErrorCode::pool_shutting_down,
                                fmt::format("pool '{}' is shutting down", config_.name), {}});
    return;
  }
  if (now() >= waiter.deadline) {
    fail_checkout(waiter, Error{ErrorCode::timeout, "the checkout deadline passed before the pool saw it", {}});
    return;
  }
  // Only a caller that would have to wait counts against the limit: the
  // queue may be full of strict waiters while another worker sits idle.
  if (waiters_.size() >= config_.waiters_max && pick_worker(waiter) == nullptr) {
    fail_checkout(waiter, Error{ErrorCode::pool_saturated,
                                fmt::format("pool '{}' has {} checkouts waiting, the limit (waiters_max)",
                                            config_.name, waiters_.size()),
                                {}});
    return;
  }
  waiters_.push_back(std::move(waiter));
  grant_waiters();
  // An open breaker fails fast whoever an idle worker could not serve.
  if (restart_.breaker() != BreakerState::closed && !waiters_.empty() && waiters_.back().id == m.id) {
    const Waiter last = waiters_.pop_back();
    fail_checkout(last, restart_.unavailable());
  }
}

void PoolActor::emit_request(const CheckoutRequest& m) {
  emit({.kind = TelemetryKind::checkout_request, .at = now(), .detail = m.affinity_key, .checkout = m.id,
        .deadline = m.deadline, .affinity_strict = m.affinity_mode == AffinityMode::strict});
}

void PoolActor::handle(CheckoutCancel& m) {
  if (const std::optional<Waiter> waiter = waiters_.cancel(m.id); waiter) {
    emit({.kind = TelemetryKind::checkout, .at = now(), .duration = now() - waiter->requested_at,
          .error = m.expired ? ErrorCode::timeout : ErrorCode::cancelled, .checkout = m.id});
    return;
  }
  // A grant that crossed the cancel: the caller never saw the lease.
  if (leases_.contains(m.id)) {
    emit({.kind = TelemetryKind::checkout_returned, .at = now(),
          .error = m.expired ? ErrorCode::timeout : ErrorCode::cancelled, .checkout = m.id});
    Checkin checkin{m.id};
    handle(checkin);
  }
}

// ---------------------------------------------------------------- calls and leases

Worker* PoolActor::leased_worker(std::uint64_t lease_id) {
  const std::optional<WorkerRef> worker = leases_.live_worker(lease_id);
  if (!worker) {
    return nullptr;  // released, or the worker already failed under it
  }
  Worker* w = workers_.find(*worker);
  SEEDPOOL_ASSERT(w != nullptr && w->state() == WorkerState::busy);
  return w;
}

void PoolActor::handle(CallAbandon& m) {
  Worker* w = leased_worker(m.lease_id);
  if (w == nullptr) {
    return;
  }
  // The worker still owes a reply: it must never serve anyone again.
  lose_lease(*w, CallLine::reply_owed(w->ref));
  stop_worker(*w, false, "call timed out");
}

void PoolActor::handle(CallUnsent& m) {
  if (Worker* w = leased_worker(m.lease_id); w != nullptr) {
    fail_worker(*w, with_tail(*w, ErrorCode::worker_crashed,
                              fmt::format("worker {} did not accept the call: {}", w->ref.to_string(),
                                          m.error.message)));
  }
}

// Every call a caller makes is counted once under its outcome, also one the
// line refused before a frame was written (the worker failed under the lease).
void PoolActor::handle(CallRefused& m) {
  emit({.kind = TelemetryKind::call, .at = now(), .duration = Duration::zero(), .error = m.code, .worker = m.worker});
}

void PoolActor::handle(CallsReport& m) {
  if (Worker* w = leased_worker(m.lease_id); w != nullptr) {
    take_call_records(*w);
  }
}

void PoolActor::take_call_records(Worker& w) {
  if (w.line == nullptr) {
    return;
  }
  w.line->take_records(call_records_);
  for (const CallRecord& record : call_records_) {
    w.calls_done += record.answered ? 1 : 0;
    emit({.kind = TelemetryKind::call, .at = record.finished_at, .duration = record.duration, .error = record.error,
          .worker = w.ref});
  }
}

void PoolActor::handle(Checkin& m) {
  const std::optional<LeaseTable::Lease> lease = leases_.check_in(m.lease_id);
  if (!lease || lease->lost) {
    return;
  }
  Worker* w = workers_.find(lease->worker);
  SEEDPOOL_ASSERT(w != nullptr && w->state() == WorkerState::busy && !lease_of(*w));
  take_call_records(*w);
  if (w->line->waiting() != CallLine::none) {
    // Released with a reply still owed (a call abandoned by a vanished caller).
    stop_worker(*w, false, "released with a call in flight");
    return;
  }
  if (shutting_down_) {
    stop_worker(*w, true, "pool shutdown");
    return;
  }
  if ((config_.max_calls > 0 && w->calls_done >= config_.max_calls) || w->recycle_due) {
    emit({.kind = TelemetryKind::worker_recycle, .at = now(), .worker = w->ref,
          .detail = w->recycle_due ? "max_lifetime" : "max_calls"});
    stop_worker(*w, true, "recycled");
    return;
  }
  make_idle(*w);
}

// ---------------------------------------------------------------- stats, start, shutdown

void PoolActor::handle(StatsRequest& m) { (void)m.reply->try_send(PoolStats(aggregator_.stats())); }

void PoolActor::handle(StartRequest& m) {
  start_waiters_.push_back(StartWaiter{m.min_ready, m.deadline, std::move(m.reply)});
  answer_start_waiters();
}

void PoolActor::handle(ShutdownRequest& m) {
  shutdown_waiters_.push_back(std::move(m.reply));
  begin_shutdown(m.grace_deadline);
}

void PoolActor::answer_start_waiters() {
  const std::size_t ready = workers_.count_in(WorkerState::ready) + workers_.count_in(WorkerState::busy);
  for (auto it = start_waiters_.begin(); it != start_waiters_.end();) {
    std::optional<Status> answer;
    if (ready >= it->min_ready) {
      answer = Status();
    } else if (shutting_down_) {
      answer = Status(Error{ErrorCode::pool_shutting_down, "the pool shut down while starting", {}});
    } else if (restart_.breaker() == BreakerState::open) {
      answer = Status(start_failure("the circuit breaker opened"));
    } else if (now() >= it->deadline) {
      answer = Status(start_failure(fmt::format("{} of {} workers ready at the deadline", ready, it->min_ready)));
    }
    if (answer) {
      (void)it->reply->try_send(std::move(*answer));
      it = start_waiters_.erase(it);
    } else {
      ++it;
    }
  }
}

Error PoolActor::start_failure(std::string_view why) const {
  const std::deque<Error>& failures = restart_.recent_failures();
  std::string message = fmt::format("pool '{}' failed to start: {}", config_.name, why);
  for (const Error& failure : failures) {
    message += "\n  " + failure.describe();
  }
  if (failures.empty()) {
    message += " (no worker failed; they were still starting)";
  }
  std::string tail = failures.empty() ? std::string() : failures.back().stderr_tail;
  // start()'s default deadline is the workers' own init deadline, so a worker
  // that hangs in init has usually not been reported yet: say where it is.
  for (const Worker& w : workers_.all()) {
    if (w.state() == WorkerState::starting || w.state() == WorkerState::initializing) {
      message += fmt::format("\n  worker {} is still {} after {} (init_timeout {})", w.ref.to_string(),
                             to_string(w.state()), ms(now() - w.created_at), ms(config_.init_timeout));
      if (tail.empty()) {
        tail = w.stderr_lines.tail();
      }
    }
  }
  return Error{ErrorCode::launch_failed, std::move(message), std::move(tail)};
}

// ---------------------------------------------------------------- waiters

void PoolActor::grant_waiters() {
  // Most calls find every worker busy; counting first keeps this O(workers)
  // then, instead of O(waiters x workers).
  std::size_t idle = workers_.count_in(WorkerState::ready);
  for (auto it = waiters_.begin(); idle > 0 && it != waiters_.end();) {
    if (now() >= it->deadline) {
      ++it;  // expired: answered by on_timers, never granted
      continue;
    }
    Worker* w = pick_worker(*it);
    if (w == nullptr) {
      ++it;
      continue;
    }
    const ChannelStatus sent = it->reply->try_send(CheckoutReply(Grant{w->ref, w->line}));
    emit({.kind = TelemetryKind::checkout, .at = now(), .duration = now() - it->requested_at,
          .error = sent == ChannelStatus::ok ? std::nullopt : std::optional<ErrorCode>(gone_caller_saw(*it)),
          .worker = w->ref, .checkout = it->id});
    if (sent == ChannelStatus::ok) {
      --idle;
      if (!it->affinity_key.empty()) {
        bind_affinity(it->affinity_key, w->ref);
      }
      transition(*w, WorkerState::busy);
      leases_.grant(it->id, w->ref);
    }
    it = waiters_.erase(it);
  }
}

Worker* PoolActor::pick_worker(const Waiter& waiter) {
  if (!waiter.affinity_key.empty()) {
    const auto bound = affinity_.find(waiter.affinity_key);
    if (bound != affinity_.end()) {
      Worker* w = workers_.find(bound->second);
      if (w != nullptr && w->state() == WorkerState::ready) {
        return w;
      }
      const bool alive = w != nullptr && (w->state() == WorkerState::busy);
      if (waiter.affinity_mode == AffinityMode::strict && alive) {
        return nullptr;  // wait for that worker
      }
    }
  }
  for (Worker& w : workers_.all()) {
    if (w.state() == WorkerState::ready) {
      return &w;
    }
  }
  return nullptr;
}

void PoolActor::bind_affinity(const std::string& key, WorkerRef worker) {
  const auto [it, inserted] = affinity_.insert_or_assign(key, worker);
  if (!inserted) {
    return;
  }
  affinity_order_.push_back(key);
  if (affinity_order_.size() > config_.affinity_keys_max) {
    affinity_.erase(affinity_order_.front());
    affinity_order_.pop_front();
  }
  SEEDPOOL_ASSERT(affinity_.size() <= config_.affinity_keys_max);
}

// Counted under what the caller sees: a caller that gave up in the meantime
// (its reply channel closed) saw cancelled or timeout, whatever the reason.
void PoolActor::fail_checkout(const Waiter& waiter, Error error) {
  const ErrorCode code = error.code;
  const bool delivered = waiter.reply->try_send(CheckoutReply(std::move(error))) == ChannelStatus::ok;
  emit({.kind = TelemetryKind::checkout, .at = now(), .duration = now() - waiter.requested_at,
        .error = delivered ? code : gone_caller_saw(waiter), .checkout = waiter.id});
}

// Oldest first, as they queued.
void PoolActor::fail_checkouts(std::vector<Waiter> waiters, const Error& error) {
  for (const Waiter& waiter : waiters) {
    fail_checkout(waiter, error);
  }
}

ErrorCode PoolActor::gone_caller_saw(const Waiter& waiter) {
  return waiter.phase != nullptr && waiter.phase->load() == checkout_expired ? ErrorCode::timeout
                                                                               : ErrorCode::cancelled;
}

}  // namespace seedpool::detail
