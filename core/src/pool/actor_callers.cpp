// The pool task's side of its callers: checkouts and their waiters, calls,
// leases, stats and start(); see actor.hpp.

#include "actor.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace seedpool::detail {

// ---------------------------------------------------------------- checkouts

// A checkout the shelf left to the pool task: decided under the shelf's
// monitor all the same (shelf.hpp, rule 3).
void PoolActor::handle(CheckoutRequest& m) {
  Waiter waiter{m.id, m.deadline, m.requested_at, std::move(m.affinity_key), m.affinity_mode, std::move(m.reply)};
  waiter.phase = std::move(m.phase);
  std::optional<Error> unavailable;
  if (restart_.breaker() != BreakerState::closed) {
    unavailable = restart_.unavailable();
  }
  Deliveries out;
  shelf_.admit(std::move(waiter), unavailable, out);
  out.send();
}

void PoolActor::emit_request(const CheckoutRequest& m) {
  emit({.kind = TelemetryKind::checkout_request, .at = now(), .detail = m.affinity_key, .checkout = m.id,
        .deadline = m.deadline, .affinity_strict = m.affinity_mode == AffinityMode::strict});
}

void PoolActor::handle(CheckoutCancel& m) {
  Deliveries out;
  const Shelf::Released released = shelf_.cancel(m.id, m.expired, out);
  out.send();
  if (released == Shelf::Released::to_pool_task) {
    Checkin checkin{m.id};
    handle(checkin);
  }
}

// Everything the shelf did is in place already; the loop's tail starts a
// worker for the waiter, or wakes at its deadline.
void PoolActor::handle(Wake&) {}

// ---------------------------------------------------------------- calls and leases

// A lent worker's state here is ready whatever the shelf made of it.
Worker* PoolActor::leased_worker(std::uint64_t lease_id) {
  const std::optional<WorkerRef> worker = shelf_.live_worker(lease_id);
  if (!worker) {
    return nullptr;  // released, or the worker already failed under it
  }
  Worker* w = workers_.find(*worker);
  SEEDPOOL_ASSERT(w != nullptr);
  SEEDPOOL_ASSERT(w->state() == (w->lent ? WorkerState::ready : WorkerState::busy));
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
  if (w.line != nullptr) {
    shelf_.take_call_records(w.ref, *w.line);
  }
}

// A release the shelf left to the pool task (shelf.hpp, rule 4).
void PoolActor::handle(Checkin& m) {
  const std::optional<Shelf::CheckedIn> in = shelf_.check_in(m.lease_id);
  if (!in || in->lease.lost) {
    return;
  }
  Worker* w = workers_.find(in->lease.worker);
  SEEDPOOL_ASSERT(w != nullptr && w->lent == in->was_lent);
  if (w->lent) {
    w->lent = false;
    workers_.set_state(*w, WorkerState::busy);  // as the shelf reported it
  }
  SEEDPOOL_ASSERT(w->state() == WorkerState::busy && !lease_of(*w));
  take_call_records(*w);
  if (!w->line->reusable()) {
    // Released with a reply still owed (a call abandoned by a vanished
    // caller, or one that timed out before the pool task heard of it).
    stop_worker(*w, false, "released with a call in flight");
    return;
  }
  if (shutting_down_) {
    stop_worker(*w, true, "pool shutdown");
    return;
  }
  if ((config_.max_calls > 0 && w->line->answered_calls() >= config_.max_calls) || w->recycle_due) {
    emit({.kind = TelemetryKind::worker_recycle, .at = now(), .worker = w->ref,
          .detail = w->recycle_due ? "max_lifetime" : "max_calls"});
    stop_worker(*w, true, "recycled");
    return;
  }
  make_idle(*w);
}

// ---------------------------------------------------------------- stats, start, shutdown

void PoolActor::handle(StatsRequest& m) { (void)m.reply->try_send(shelf_.stats()); }

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

// Every stderr tail goes under the worker it came from. The workers still
// starting come first, each followed by its own tail; then the failures,
// oldest first, each with its tail, except the last, whose tail is the
// error's stderr_tail, which describe() prints right after it.
Error PoolActor::start_failure(std::string_view why) const {
  const std::deque<Error>& failures = restart_.recent_failures();
  std::string message = fmt::format("pool '{}' failed to start: {}", config_.name, why);
  if (failures.empty()) {
    message += " (no worker failed; they were still starting)";
  }
  // start()'s default deadline is the workers' own init deadline, so a worker
  // that hangs in init has usually not been reported yet: say where it is.
  for (const Worker& w : workers_.all()) {
    if (w.state() == WorkerState::starting || w.state() == WorkerState::initializing) {
      message += fmt::format("\n  worker {} is still {} after {} (init_timeout {})", w.ref.to_string(),
                             to_string(w.state()), ms(now() - w.created_at), ms(config_.init_timeout));
      if (w.stderr_lines.size() > 0) {
        message += fmt::format("\n--- stderr of worker {} (still {}), last {} line{} ---\n{}", w.ref.to_string(),
                               to_string(w.state()), w.stderr_lines.size(), w.stderr_lines.size() == 1 ? "" : "s",
                               w.stderr_lines.tail());
      }
    }
  }
  for (std::size_t i = 0; i + 1 < failures.size(); ++i) {
    message += "\n  " + failures[i].describe();
  }
  if (failures.empty()) {
    return Error{ErrorCode::launch_failed, std::move(message), {}};
  }
  const Error& last = failures.back();
  message += fmt::format("\n  {}: {}", to_string(last.code), last.message);
  return Error{ErrorCode::launch_failed, std::move(message), last.stderr_tail};
}

// ---------------------------------------------------------------- waiters

void PoolActor::grant_waiters() {
  Deliveries out;
  shelf_.grant_waiters(out);
  out.send();
}

}  // namespace seedpool::detail
