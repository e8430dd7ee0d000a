// The shelf's side of the pool task: the checkouts it decides, the workers
// it lends and takes back, and the waiters' deadlines, the breaker and
// shutdown; see shelf.hpp. Granting and failing is in shelf.cpp.

#include "shelf.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace seedpool::detail {

void Shelf::admit(Waiter waiter, const std::optional<Error>& unavailable, Deliveries& out) {
  MonitorLock lock(*monitor_);
  const Instant t = now();
  emit_locked({.kind = TelemetryKind::checkout_request, .at = t, .detail = waiter.affinity_key, .checkout = waiter.id,
               .deadline = waiter.deadline, .affinity_strict = waiter.affinity_mode == AffinityMode::strict});
  if (closed_) {
    fail_locked(waiter, Error{ErrorCode::pool_shutting_down, fmt::format("pool '{}' is shutting down", config_.name), {}},
                out);
    return;
  }
  if (t >= waiter.deadline) {
    fail_locked(waiter, Error{ErrorCode::timeout, "the checkout deadline passed before the pool saw it", {}}, out);
    return;
  }
  grant_waiters_locked(StepBy::pool_task, out);
  // Only a caller that would have to wait counts against the limit: the
  // queue may be full of strict waiters while another worker sits idle.
  if (waiters_.size() >= config_.waiters_max && pick_locked(waiter.affinity_key, waiter.affinity_mode) == nullptr) {
    fail_locked(waiter,
                Error{ErrorCode::pool_saturated,
                      fmt::format("pool '{}' has {} checkouts waiting, the limit (waiters_max)", config_.name,
                                  waiters_.size()),
                      {}},
                out);
    return;
  }
  const std::uint64_t id = waiter.id;
  waiters_.push_back(std::move(waiter));
  grant_waiters_locked(StepBy::pool_task, out);
  // An open breaker fails fast whoever an idle worker could not serve.
  if (unavailable && !waiters_.empty() && waiters_.back().id == id) {
    fail_locked(waiters_.pop_back(), *unavailable, out);
  }
}

void Shelf::fail(Waiter waiter, Error error, Deliveries& out) {
  MonitorLock lock(*monitor_);
  fail_locked(waiter, std::move(error), out);
}

Shelf::Released Shelf::cancel(std::uint64_t id, bool expired, Deliveries& out) {
  MonitorLock lock(*monitor_);
  const ErrorCode code = expired ? ErrorCode::timeout : ErrorCode::cancelled;
  if (const std::optional<Waiter> waiter = waiters_.cancel(id); waiter) {
    const Instant t = now();
    emit_locked({.kind = TelemetryKind::checkout, .at = t, .duration = t - waiter->requested_at, .error = code,
                 .checkout = id});
    return Released::done;
  }
  if (!leases_.contains(id)) {
    return Released::done;  // answered already, and counted as its caller saw it
  }
  // A grant that crossed the cancel: the caller never saw the lease.
  emit_locked({.kind = TelemetryKind::checkout_returned, .at = now(), .error = code, .checkout = id});
  return release_locked(id, StepBy::pool_task, out);
}

void Shelf::grant_waiters(Deliveries& out) {
  MonitorLock lock(*monitor_);
  grant_waiters_locked(StepBy::pool_task, out);
}

void Shelf::lend(WorkerRef worker, std::shared_ptr<CallLine> line, Deliveries& out) {
  MonitorLock lock(*monitor_);
  SEEDPOOL_ASSERT_MSG(!closed_, "a worker lent after shutdown began");
  SEEDPOOL_ASSERT_MSG(member(worker) == nullptr && !leases_.live_lease_of(worker), "a worker lent twice");
  SEEDPOOL_ASSERT(line != nullptr);
  const auto at = std::find_if(members_.begin(), members_.end(), [worker](const Member& m) { return worker < m.ref; });
  members_.insert(at, Member{worker, std::move(line), Member::idle, now()});
  ++idle_;
  SEEDPOOL_ASSERT(members_.size() <= config_.size.max);
  grant_waiters_locked(StepBy::pool_task, out);
}

Shelf::Held Shelf::take_back(WorkerRef worker) {
  MonitorLock lock(*monitor_);
  const auto it = std::find_if(members_.begin(), members_.end(), [worker](const Member& m) { return m.ref == worker; });
  SEEDPOOL_ASSERT_MSG(it != members_.end(), "a worker taken back that was not lent");
  const Held held = it->status == Member::idle ? Held::idle : Held::leased;
  SEEDPOOL_ASSERT(held == Held::idle || leases_.live_lease_of(worker));
  idle_ -= held == Held::idle ? 1 : 0;
  members_.erase(it);
  return held;
}

std::optional<Shelf::CheckedIn> Shelf::check_in(std::uint64_t lease_id) {
  MonitorLock lock(*monitor_);
  std::optional<LeaseTable::Lease> lease = leases_.check_in(lease_id);
  if (!lease) {
    return std::nullopt;
  }
  CheckedIn in{std::move(*lease), false};
  const auto it = std::find_if(members_.begin(), members_.end(),
                               [&in](const Member& m) { return m.ref == in.lease.worker; });
  if (it != members_.end()) {
    SEEDPOOL_ASSERT_MSG(it->status == Member::returning && !in.lease.lost, "a lent worker checked in unreleased");
    members_.erase(it);
    in.was_lent = true;
  }
  return in;
}

std::optional<WorkerRef> Shelf::live_worker(std::uint64_t lease_id) const {
  MonitorLock lock(*monitor_);
  return leases_.live_worker(lease_id);
}

std::optional<std::uint64_t> Shelf::live_lease_of(WorkerRef worker) const {
  MonitorLock lock(*monitor_);
  return leases_.live_lease_of(worker);
}

Error Shelf::lose(WorkerRef worker, Error error) {
  MonitorLock lock(*monitor_);
  SEEDPOOL_ASSERT_MSG(member(worker) == nullptr, "a lease lost on a worker still lent");
  return leases_.lose(worker, std::move(error));
}

Shelf::PingCheck Shelf::ping_if_idle(WorkerRef worker, Duration health_interval, const TelemetryEvent& ping) {
  MonitorLock lock(*monitor_);
  const Member* m = member(worker);
  SEEDPOOL_ASSERT_MSG(m != nullptr, "a ping decided for a worker that is not lent");
  if (m->status != Member::idle) {
    return {PingCheck::leased, Instant::max()};
  }
  const Instant due = m->idle_since + health_interval;
  if (now() < due) {
    return {PingCheck::not_yet, due};
  }
  emit_locked(ping);
  return {PingCheck::pinged, Instant::max()};
}

void Shelf::take_call_records(WorkerRef worker, CallLine& line) {
  MonitorLock lock(*monitor_);
  take_call_records_locked(worker, line);
}

void Shelf::expire(Instant now, const Error& error, Deliveries& out) {
  MonitorLock lock(*monitor_);
  if (now >= waiters_.earliest_deadline()) {
    fail_all_locked(waiters_.take_expired(now), error, out);
  }
}

Instant Shelf::earliest_deadline() const {
  MonitorLock lock(*monitor_);
  return waiters_.earliest_deadline();
}

void Shelf::decide_starts(bool may_grow,
                          const std::function<std::vector<TelemetryEvent>(std::size_t waiting)>& decide) {
  MonitorLock lock(*monitor_);
  may_grow_ = may_grow;
  for (const TelemetryEvent& event : decide(waiters_.size())) {
    emit_locked(event);
  }
}

Instant Shelf::plan_wake(Instant others) {
  MonitorLock lock(*monitor_);
  wake_at_ = std::min(others, waiters_.earliest_deadline());
  return wake_at_;
}

void Shelf::open_checkouts(bool open, std::optional<Error> refusal) {
  MonitorLock lock(*monitor_);
  checkouts_open_ = open && !closed_;
  refusal_ = closed_ ? std::nullopt : std::move(refusal);
}

void Shelf::breaker_opened(const TelemetryEvent& event, const Error& error, Deliveries& out) {
  MonitorLock lock(*monitor_);
  checkouts_open_ = false;
  refusal_ = closed_ ? std::nullopt : std::optional<Error>(error);
  emit_locked(event);
  fail_all_locked(waiters_.take_all(), error, out);
}

void Shelf::breaker_moved(const TelemetryEvent& event, std::optional<Error> refusal) {
  MonitorLock lock(*monitor_);
  refusal_ = closed_ ? std::nullopt : std::move(refusal);
  emit_locked(event);
}

void Shelf::close(const TelemetryEvent& event, const Error& error, Deliveries& out) {
  MonitorLock lock(*monitor_);
  closed_ = true;
  checkouts_open_ = false;
  refusal_.reset();
  emit_locked(event);
  fail_all_locked(waiters_.take_all(), error, out);
}

}  // namespace seedpool::detail
