// Where callers and the pool task hand workers to each other; see shelf.hpp.

#include "shelf.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace seedpool::detail {

namespace {

// How a caller that gave up on a waiting checkout saw it end.
ErrorCode gone_caller_saw(int phase) { return phase == checkout_expired ? ErrorCode::timeout : ErrorCode::cancelled; }

bool caller_gone(const Waiter& waiter) { return waiter.phase->load() != checkout_pending; }

}  // namespace

// ---------------------------------------------------------------- Deliveries

void Deliveries::add(std::shared_ptr<Channel<CheckoutReply>> reply, CheckoutReply answer) {
  items_.push_back(Item{std::move(reply), std::move(answer)});
}

void Deliveries::send() {
  for (Item& item : items_) {
    (void)item.reply->try_send(std::move(item.answer));
  }
  items_.clear();
}

// ---------------------------------------------------------------- PoolShared

PoolShared::PoolShared(World& w, PoolConfig c, PoolHooks h)
    : world(w),
      config(std::move(c)),
      hooks(h),
      mailbox(w, config.name + "/mailbox", config.mailbox_depth_max),
      final_stats_monitor(w.make_monitor(config.name + "/final-stats")),
      shelf_(std::make_unique<Shelf>(w, config, hooks)) {}

PoolShared::~PoolShared() = default;

// ---------------------------------------------------------------- Shelf

Shelf::Shelf(World& world, const PoolConfig& config, const PoolHooks& hooks)
    : world_(world),
      config_(config),
      hooks_(hooks),
      monitor_(world.make_monitor(config.name + "/shelf")),
      aggregator_(config.name),
      leases_(config.size.max) {
  members_.reserve(config.size.max);
}

void Shelf::emit(const TelemetryEvent& event) {
  MonitorLock lock(*monitor_);
  emit_locked(event);
}

void Shelf::emit_locked(const TelemetryEvent& event) {
  aggregator_.on_event(event);
  if (TelemetrySink* sink = hooks_.telemetry; sink != nullptr) {
    sink->on_event(event);
  }
}

PoolStats Shelf::stats() const {
  MonitorLock lock(*monitor_);
  return aggregator_.stats();
}

Shelf::Member* Shelf::member(WorkerRef worker) {
  const auto it = std::find_if(members_.begin(), members_.end(), [worker](const Member& m) { return m.ref == worker; });
  return it == members_.end() ? nullptr : &*it;
}

// ---------------------------------------------------------------- callers

Shelf::Taken Shelf::checkout(Attempt& attempt, Deliveries& out) {
  MonitorLock lock(*monitor_);
  Taken taken;
  const Instant t = now();
  if ((!checkouts_open_ && !refusal_) || t >= attempt.deadline) {
    return taken;  // the pool task decides it
  }
  // Whatever the pool task changed since the last step is served first, in
  // order; then nobody queued can take an idle worker, and this checkout
  // overtakes nobody by taking one.
  grant_waiters_locked(StepBy::checkout, out);
  Member* m = pick_locked(attempt.affinity_key, attempt.affinity_mode);
  if (m == nullptr && waiters_.size() >= config_.waiters_max) {
    return taken;  // the pool task refuses it (pool_saturated)
  }
  emit_locked({.kind = TelemetryKind::checkout_request, .at = t, .detail = attempt.affinity_key,
               .checkout = attempt.id, .deadline = attempt.deadline,
               .affinity_strict = attempt.affinity_mode == AffinityMode::strict, .by = StepBy::checkout});
  if (m != nullptr) {
    evicted_ = false;
    grant_locked(attempt.id, attempt.requested_at, attempt.affinity_key, *m, StepBy::checkout, t);
    taken.kind = Taken::granted;
    taken.grant = Grant{m->ref, m->line};
    if (evicted_) {
      grant_waiters_locked(StepBy::checkout, out);  // a strict waiter on the evicted key may take any worker now
    }
    return taken;
  }
  if (!checkouts_open_) {
    // The breaker is not closed: fail fast, as admit does.
    emit_locked({.kind = TelemetryKind::checkout, .at = t, .duration = t - attempt.requested_at,
                 .error = refusal_->code, .checkout = attempt.id, .by = StepBy::checkout});
    taken.kind = Taken::refused;
    taken.refusal = refusal_;
    return taken;
  }
  taken.kind = Taken::waiting;
  taken.box = std::make_shared<CheckoutReplyBox>(world_);
  Waiter waiter{attempt.id,
                attempt.deadline,
                attempt.requested_at,
                std::move(attempt.affinity_key),
                attempt.affinity_mode,
                std::shared_ptr<Channel<CheckoutReply>>(taken.box, &taken.box->channel),
                std::shared_ptr<std::atomic<int>>(taken.box, &taken.box->phase)};
  waiters_.push_back(std::move(waiter));
  // The pool task must hear of a waiter it may start a worker for, and of
  // one that expires before it would next wake by itself.
  taken.wake = may_grow_ || attempt.deadline < wake_at_;
  wake_at_ = std::min(wake_at_, attempt.deadline);
  return taken;
}

Shelf::Released Shelf::release(std::uint64_t lease_id, Deliveries& out) {
  MonitorLock lock(*monitor_);
  return release_locked(lease_id, StepBy::release, out);
}

Shelf::Released Shelf::release_locked(std::uint64_t lease_id, StepBy by, Deliveries& out) {
  const std::optional<WorkerRef> live = leases_.live_worker(lease_id);
  if (!live) {
    // Lost: the pool task failed the worker under the lease and has dealt
    // with it; the record only waited for this release.
    (void)leases_.check_in(lease_id);
    return Released::done;
  }
  Member* m = member(*live);
  if (m == nullptr) {
    return Released::to_pool_task;  // taken back while leased: the pool task decides
  }
  SEEDPOOL_ASSERT(m->status == Member::leased);
  const bool fit = !closed_ && m->line->reusable() &&
                   (config_.max_calls == 0 || m->line->answered_calls() < config_.max_calls);
  if (!fit) {
    m->status = Member::returning;
    return Released::to_pool_task;
  }
  const std::optional<LeaseTable::Lease> lease = leases_.check_in(lease_id);
  SEEDPOOL_ASSERT(lease && !lease->lost);
  take_call_records_locked(m->ref, *m->line);
  const Instant t = now();
  emit_locked({.kind = TelemetryKind::worker_state, .at = t, .worker = m->ref, .from = WorkerState::busy,
               .to = WorkerState::ready, .by = by});
  m->status = Member::idle;
  m->idle_since = t;
  ++idle_;
  grant_waiters_locked(by, out);
  return Released::done;
}

// ---------------------------------------------------------------- granting and failing

// The failure is the pool's answer only if it settles the checkout before
// its caller gives up; otherwise the checkout counts as what the caller saw.
void Shelf::fail_locked(const Waiter& waiter, Error error, Deliveries& out) {
  SEEDPOOL_ASSERT(waiter.phase != nullptr);
  int phase = checkout_pending;
  const bool answered = waiter.phase->compare_exchange_strong(phase, checkout_answered);
  const Instant t = now();
  emit_locked({.kind = TelemetryKind::checkout, .at = t, .duration = t - waiter.requested_at,
               .error = answered ? error.code : gone_caller_saw(phase), .checkout = waiter.id});
  if (answered) {
    out.add(waiter.reply, CheckoutReply(std::move(error)));
  }
}

// Oldest first, as they queued.
void Shelf::fail_all_locked(std::vector<Waiter> waiters, const Error& error, Deliveries& out) {
  for (const Waiter& waiter : waiters) {
    fail_locked(waiter, error, out);
  }
}

void Shelf::grant_waiters_locked(StepBy by, Deliveries& out) {
  if (waiters_.empty() || idle_ == 0) {
    return;  // the common case, without a clock read
  }
  const Instant t = now();
  for (auto it = waiters_.begin(); idle_ > 0 && it != waiters_.end();) {
    if (t >= it->deadline) {
      ++it;  // expired: answered at its deadline, never granted
      continue;
    }
    Member* m = pick_locked(it->affinity_key, it->affinity_mode);
    if (m == nullptr) {
      ++it;
      continue;
    }
    if (caller_gone(*it)) {
      // The caller gave up and its CheckoutCancel is on the way: counted as
      // it saw the checkout end; the worker stays for the next waiter.
      emit_locked({.kind = TelemetryKind::checkout, .at = t, .duration = t - it->requested_at,
                   .error = gone_caller_saw(it->phase->load()), .worker = m->ref, .checkout = it->id, .by = by});
      it = waiters_.erase(it);
      continue;
    }
    evicted_ = false;
    grant_locked(it->id, it->requested_at, it->affinity_key, *m, by, t);
    out.add(it->reply, CheckoutReply(Grant{m->ref, m->line}));
    it = waiters_.erase(it);
    if (evicted_) {
      it = waiters_.begin();  // an earlier strict waiter on the evicted key may take any worker now
    }
  }
}

void Shelf::grant_locked(std::uint64_t id, Instant requested_at, const std::string& key, Member& m, StepBy by,
                         Instant t) {
  SEEDPOOL_ASSERT(m.status == Member::idle && idle_ > 0);
  emit_locked({.kind = TelemetryKind::checkout, .at = t, .duration = t - requested_at, .worker = m.ref,
               .checkout = id, .by = by});
  if (!key.empty()) {
    bind_affinity_locked(key, m.ref);
  }
  emit_locked({.kind = TelemetryKind::worker_state, .at = t, .worker = m.ref, .from = WorkerState::ready,
               .to = WorkerState::busy, .by = by});
  m.status = Member::leased;
  --idle_;
  leases_.grant(id, m.ref);
}

// prefer: the key's worker when it is idle, else any idle worker. strict:
// the key's worker when it is idle; nothing while it is leased (busy); any
// idle worker when it is neither (gone, or never bound).
Shelf::Member* Shelf::pick_locked(const std::string& key, AffinityMode mode) {
  if (!key.empty()) {
    if (const auto bound = affinity_.find(key); bound != affinity_.end()) {
      Member* own = member(bound->second);
      if (own != nullptr && own->status == Member::idle) {
        return own;
      }
      if (mode == AffinityMode::strict && leases_.live_lease_of(bound->second)) {
        return nullptr;  // wait for that worker
      }
    }
  }
  if (idle_ == 0) {
    return nullptr;
  }
  for (Member& m : members_) {
    if (m.status == Member::idle) {
      return &m;
    }
  }
  SEEDPOOL_ASSERT_MSG(false, "the idle count is wrong");
  return nullptr;
}

void Shelf::bind_affinity_locked(const std::string& key, WorkerRef worker) {
  const auto [it, inserted] = affinity_.insert_or_assign(key, worker);
  if (!inserted) {
    return;
  }
  affinity_order_.push_back(key);
  if (affinity_order_.size() > config_.affinity_keys_max) {
    affinity_.erase(affinity_order_.front());
    affinity_order_.pop_front();
    evicted_ = true;
  }
  SEEDPOOL_ASSERT(affinity_.size() <= config_.affinity_keys_max);
}

void Shelf::take_call_records_locked(WorkerRef worker, CallLine& line) {
  line.take_records(call_records_);
  for (const CallRecord& record : call_records_) {
    emit_locked({.kind = TelemetryKind::call, .at = record.finished_at, .duration = record.duration,
                 .error = record.error, .worker = worker});
  }
}

}  // namespace seedpool::detail
