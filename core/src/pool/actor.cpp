#include "actor.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>

namespace seedpool::detail {

PoolActor::PoolActor(std::shared_ptr<PoolShared> shared)
    : shared_(std::move(shared)),
      world_(shared_->world),
      config_(shared_->config),
      aggregator_(config_.name),
      breaker_(config_.breaker_failures, config_.breaker_window, config_.breaker_cooldown),
      slot_generations_(config_.size.max, 0),
      next_start_at_(world_.now()) {}

void PoolActor::run() {
  start_workers();
  while (!finished()) {
    const Instant deadline = next_deadline();
    Received<Message> received = shared_->mailbox.receive(deadline);
    if (received.status == ChannelStatus::closed) {
      break;
    }
    if (received) {
      std::visit([this](auto& message) { handle(message); }, *received.value);
      // A checkout request changes workers only by granting one, through
      // transition(), which drops the cached earliest worker timer itself.
      // Any other message may change anything.
      if (!std::holds_alternative<CheckoutRequest>(*received.value)) {
        worker_timers_stale_ = true;
      }
    } else if (received.status == ChannelStatus::timeout && world_.now() < deadline) {
      // A wait that failed before its deadline: the simulation is tearing down.
      return;
    }
    // on_timers acts only on what is due, and next_deadline() covers every
    // deadline it checks, so skipping it when nothing is due changes nothing;
    // it saves a pass over every worker after most messages.
    if (now() >= next_deadline()) {
      on_timers();
      worker_timers_stale_ = true;
    }
    grant_waiters();
    start_workers();
    answer_start_waiters();
  }
  finish();
}

// ---------------------------------------------------------------- callers

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
  if (breaker_.state() != BreakerState::closed && !waiters_.empty() && waiters_.back().id == m.id) {
    const Waiter last = waiters_.pop_back();
    fail_checkout(last, unavailable());
  }
}

void PoolActor::emit_request(const CheckoutRequest& m) {
  emit({.kind = TelemetryKind::checkout_request, .at = now(), .detail = m.affinity_key, .checkout = m.id,
        .deadline = m.deadline, .affinity_strict = m.affinity_mode == AffinityMode::strict});
}

void PoolActor::handle(CheckoutCancel& m) {
  const auto it = std::find_if(waiters_.begin(), waiters_.end(), [&](const Waiter& w) { return w.id == m.id; });
  if (it != waiters_.end()) {
    emit({.kind = TelemetryKind::checkout, .at = now(), .duration = now() - it->requested_at,
          .error = m.expired ? ErrorCode::timeout : ErrorCode::cancelled, .checkout = m.id});
    waiters_.erase(it);
    return;
  }
  // A grant that crossed the cancel: the caller never saw the lease.
  if (find_lease(m.id) != leases_.end()) {
    emit({.kind = TelemetryKind::checkout_returned, .at = now(),
          .error = m.expired ? ErrorCode::timeout : ErrorCode::cancelled, .checkout = m.id});
    Checkin checkin{m.id};
    handle(checkin);
  }
}

std::vector<PoolActor::LeaseEntry>::iterator PoolActor::find_lease(std::uint64_t lease_id) {
  return std::find_if(leases_.begin(), leases_.end(), [lease_id](const LeaseEntry& e) { return e.id == lease_id; });
}

PoolActor::Worker* PoolActor::leased_worker(std::uint64_t lease_id) {
  const auto lease = find_lease(lease_id);
  if (lease == leases_.end() || lease->record.lost) {
    return nullptr;  // released, or the worker already failed under it
  }
  Worker* w = find(lease->record.worker);
  SEEDPOOL_ASSERT(w != nullptr && w->state == WorkerState::busy && w->lease == lease_id);
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

void PoolActor::handle(Checkin& m) {
  const auto lease = find_lease(m.lease_id);
  if (lease == leases_.end()) {
    return;
  }
  const LeaseRecord record = std::move(lease->record);
  if (lease + 1 != leases_.end()) {
    *lease = std::move(leases_.back());
  }
  leases_.pop_back();
  if (record.lost) {
    return;
  }
  Worker* w = find(record.worker);
  SEEDPOOL_ASSERT(w != nullptr && w->state == WorkerState::busy && w->lease == m.lease_id);
  w->lease.reset();
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

void PoolActor::handle(StatsRequest& m) { (void)m.reply->try_send(PoolStats(aggregator_.stats())); }

void PoolActor::handle(StartRequest& m) {
  start_waiters_.push_back(StartWaiter{m.min_ready, m.deadline, std::move(m.reply)});
  answer_start_waiters();
}

void PoolActor::handle(ShutdownRequest& m) {
  shutdown_waiters_.push_back(std::move(m.reply));
  begin_shutdown(m.grace_deadline);
}

// ---------------------------------------------------------------- workers

void PoolActor::handle(WorkerLaunched& m) {
  Worker* w = find(m.worker);
  SEEDPOOL_ASSERT(w != nullptr && w->process == nullptr);
  w->process = std::move(m.process);
  if (w->start_cancelled) {
    SEEDPOOL_ASSERT(w->state == WorkerState::stopping);
    w->process->signal(Signal::kill);
    return;
  }
  transition(*w, WorkerState::initializing);
}

void PoolActor::handle(WorkerLaunchFailed& m) {
  Worker* w = find(m.worker);
  SEEDPOOL_ASSERT(w != nullptr && w->process == nullptr);
  if (!w->start_cancelled) {
    record_init_failure(*w, std::move(m.error));
  }
  transition(*w, WorkerState::dead);
  --state_counts_[static_cast<std::size_t>(WorkerState::dead)];
  erase_worker(m.worker);
}

void PoolActor::handle(WorkerReady& m) {
  Worker* w = find(m.worker);
  SEEDPOOL_ASSERT(w != nullptr);
  if (w->state == WorkerState::stopping) {
    return;  // stopped while starting; its exit follows
  }
  emit({.kind = TelemetryKind::worker_init, .at = now(), .duration = now() - w->created_at, .worker = w->ref});
  consecutive_failures_ = 0;
  probe_started_ = false;
  if (breaker_.record_success()) {
    emit({.kind = TelemetryKind::breaker, .at = now(), .breaker = BreakerState::closed});
  }
  if (config_.max_lifetime > Duration::zero()) {
    const auto jitter = static_cast<std::int64_t>(
        world_.random_below(static_cast<std::uint64_t>(config_.max_lifetime_jitter.ns()) + 1));
    w->recycle_at = now() + config_.max_lifetime - Duration::from_ns(jitter);
  }
  w->line = std::make_shared<CallLine>(world_, w->ref, w->process);
  w->process->set_router(w->line);
  transition(*w, WorkerState::ready);
  make_idle(*w);
}

void PoolActor::handle(WorkerInitFailed& m) {
  Worker* w = find(m.worker);
  SEEDPOOL_ASSERT(w != nullptr);
  if (w->state == WorkerState::stopping) {
    return;  // the pool stopped it itself
  }
  SEEDPOOL_ASSERT(w->state == WorkerState::initializing);
  record_init_failure(*w, std::move(m.error));
  transition(*w, WorkerState::stopping);
  w->kill_at = now() + config_.terminate_grace;
}

void PoolActor::handle(WorkerEvent& m) {
  Worker* w = find(m.worker);
  SEEDPOOL_ASSERT_MSG(w != nullptr, "an event for a worker that already exited");
  struct Visitor {
    PoolActor& self;
    Worker& w;
    void operator()(const FrameReceived& e) const { self.on_frame(w, e.frame); }
    void operator()(const StderrLine& e) const {
      w.stderr_lines.push(e.line);
      if (LogSink* log = self.shared_->hooks.log; log != nullptr) {
        log->on_stderr(self.config_.name, w.ref, e.line);
      }
    }
    void operator()(const OutputCorrupt& e) const {
      self.fail_worker(w, self.with_tail(w, ErrorCode::protocol_error,
                                         fmt::format("worker {} broke the protocol: {}", w.ref.to_string(),
                                                     e.error.message)));
    }
    void operator()(const Exited& e) const { self.on_exit(w, e.status); }
  };
  std::visit(Visitor{*this, *w}, m.event);
}

// Frames the worker's call line left: error frames, pongs and strays.
void PoolActor::on_frame(Worker& w, const Frame& frame) {
  const std::uint64_t waiting = w.line ? w.line->waiting() : CallLine::none;
  if (frame.kind == FrameKind::error && waiting != CallLine::none && waiting == frame.request_id &&
      w.line->answer(frame.request_id,
                     CallReply(with_tail(w, ErrorCode::worker_error,
                                         fmt::format("worker {} answered with an error: {}", w.ref.to_string(),
                                                     frame.payload))),
                     true)) {
    return;
  }
  if (frame.kind == FrameKind::pong && w.ping_id == frame.request_id) {
    emit({.kind = TelemetryKind::health_pong, .at = now(), .worker = w.ref});
    w.ping_id.reset();
    w.ping_deadline = Instant::max();
    w.next_ping_at = config_.health_interval > Duration::zero() ? now() + config_.health_interval : Instant::max();
    return;
  }
  if (w.state == WorkerState::stopping) {
    return;  // already being replaced; nothing it says matters now
  }
  const std::string expected =
      waiting != CallLine::none ? fmt::format("the call in flight has request id {}", waiting) : "no call is in flight";
  fail_worker(w, with_tail(w, ErrorCode::protocol_error,
                           fmt::format("worker {} sent an unexpected {} frame with request id {} ({})",
                                       w.ref.to_string(), to_string(frame.kind), frame.request_id, expected)));
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

void PoolActor::on_exit(Worker& w, const ExitStatus& status) {
  emit({.kind = TelemetryKind::worker_exit, .at = now(), .worker = w.ref, .detail = status.describe()});
  const bool unexpected = w.state == WorkerState::ready || w.state == WorkerState::busy;
  const Error crashed =
      with_tail(w, ErrorCode::worker_crashed,
                fmt::format(FMT_COMPILE("worker {} exited ({})"), w.ref.to_string(), status.describe()));
  if (w.lease) {
    lose_lease(w, crashed);
  }
  if (w.line) {
    w.line->cut(crashed);
    take_call_records(w);
    w.process->set_router(nullptr);
  }
  if (unexpected) {
    ++consecutive_failures_;
    next_start_at_ = now() + backoff_delay();
  }
  transition(w, WorkerState::dead);
  --state_counts_[static_cast<std::size_t>(WorkerState::dead)];
  erase_worker(w.ref);
}

void PoolActor::start_workers() {
  if (shutting_down_ || breaker_.state() == BreakerState::open) {
    return;
  }
  const std::size_t floor = config_.init == InitMode::eager ? config_.size.min : 0;
  const std::size_t serving = count_in(WorkerState::ready) + count_in(WorkerState::busy);
  const std::size_t wanted = std::min(config_.size.max, std::max(floor, serving + waiters_.size()));
  std::size_t active = count_active();
  if (now() < next_start_at_) {
    return;
  }
  if (breaker_.state() == BreakerState::half_open) {
    // The probe starts whether or not anyone waits: checkouts fail fast
    // while half-open, so demand alone would never start it, and a lazy pool
    // would stay unavailable for good.
    if (!probe_started_ && active < config_.size.max) {
      probe_started_ = true;
      start_worker();
    }
    return;
  }
  for (; active < wanted; ++active) {
    start_worker();
  }
}

void PoolActor::start_worker() {
  SEEDPOOL_ASSERT(count_active() < config_.size.max);
  std::uint32_t slot = 0;
  while (std::any_of(workers_.begin(), workers_.end(), [slot](const auto& entry) {
    return entry.first.slot == slot && is_active(entry.second.state);
  })) {
    ++slot;
  }
  SEEDPOOL_ASSERT(slot < config_.size.max);
  const WorkerRef ref{slot, ++slot_generations_[slot]};
  const std::uint64_t uid = next_uid_++;
  add_worker(Worker(ref, uid, now(), config_));
  ++state_counts_[static_cast<std::size_t>(WorkerState::starting)];
  emit({.kind = TelemetryKind::worker_state, .at = now(), .worker = ref, .from = WorkerState::dead,
        .to = WorkerState::starting});
  world_.spawn(fmt::format(FMT_COMPILE("{}/{}"), config_.name, ref.to_string()),
               [shared = shared_, ref, uid] { run_worker_task(shared, ref, uid); });
}

void PoolActor::transition(Worker& w, WorkerState to) {
  SEEDPOOL_ASSERT_MSG(is_legal_transition(w.state, to) && to != WorkerState::starting, "illegal worker state transition");
  emit({.kind = TelemetryKind::worker_state, .at = now(), .worker = w.ref, .from = w.state, .to = to});
  --state_counts_[static_cast<std::size_t>(w.state)];
  ++state_counts_[static_cast<std::size_t>(to)];
  w.state = to;
  worker_timers_stale_ = true;
}

void PoolActor::make_idle(Worker& w) {
  if (w.state == WorkerState::busy) {
    transition(w, WorkerState::ready);
  }
  SEEDPOOL_ASSERT(w.state == WorkerState::ready && !w.lease && w.line->waiting() == CallLine::none);
  if (config_.health_interval > Duration::zero() && !w.ping_id) {
    w.next_ping_at = now() + config_.health_interval;
  }
  if (now() >= w.recycle_at) {
    emit({.kind = TelemetryKind::worker_recycle, .at = now(), .worker = w.ref, .detail = "max_lifetime"});
    stop_worker(w, true, "recycled");
  }
}

// Takes a worker out of service. Graceful: a shutdown frame, then terminate
// after terminate_grace, then kill. Otherwise: kill now.
void PoolActor::stop_worker(Worker& w, bool graceful, std::string_view reason) {
  if (w.state == WorkerState::stopping || w.state == WorkerState::dead) {
    return;
  }
  if (w.lease) {
    lose_lease(w, with_tail(w, shutting_down_ ? ErrorCode::pool_shutting_down : ErrorCode::worker_crashed,
                            fmt::format("worker {} was stopped under the lease: {}", w.ref.to_string(), reason)));
  }
  const bool started = w.state != WorkerState::starting && w.state != WorkerState::initializing;
  w.start_cancelled = !started;
  transition(w, WorkerState::stopping);
  w.ping_id.reset();
  w.ping_deadline = Instant::max();
  w.next_ping_at = Instant::max();
  if (w.process == nullptr) {
    return;  // still launching: killed as soon as the launch reports
  }
  if (graceful && started && w.process->write_frame(Frame{FrameKind::shutdown, 0, {}})) {
    w.terminate_at = now() + config_.terminate_grace;
  } else {
    w.process->signal(Signal::kill);
    w.kill_at = now() + config_.terminate_grace;
  }
}

void PoolActor::fail_worker(Worker& w, Error error) {
  if (w.lease) {
    lose_lease(w, error);
  }
  stop_worker(w, false, error.message);
}

void PoolActor::lose_lease(Worker& w, const Error& error) {
  SEEDPOOL_ASSERT(w.lease.has_value());
  const auto lease = find_lease(*w.lease);
  SEEDPOOL_ASSERT(lease != leases_.end());
  LeaseRecord& record = lease->record;
  if (!record.lost) {
    record.lost = error;
  }
  w.lease.reset();
  // A call waiting on the line gets the error; later calls are refused.
  w.line->cut(*record.lost);
  take_call_records(w);
}

void PoolActor::record_init_failure(Worker& w, Error error) {
  if (error.stderr_tail.empty()) {
    error.stderr_tail = w.stderr_lines.tail();
  }
  emit({.kind = TelemetryKind::worker_init, .at = now(), .duration = now() - w.created_at, .error = error.code,
        .worker = w.ref, .detail = error.message});
  recent_failures_.push_back(error);
  if (recent_failures_.size() > recent_failures_max) {
    recent_failures_.pop_front();
  }
  ++consecutive_failures_;
  next_start_at_ = now() + backoff_delay();
  probe_started_ = false;
  if (breaker_.record_failure(now())) {
    emit({.kind = TelemetryKind::breaker, .at = now(), .breaker = BreakerState::open, .detail = error.message});
    while (!waiters_.empty()) {
      const Waiter waiter = waiters_.pop_front();
      fail_checkout(waiter, unavailable());
    }
  }
}

void PoolActor::add_worker(Worker worker) {
  const WorkerRef ref = worker.ref;
  const auto [it, inserted] = workers_.emplace(ref, std::move(worker));
  SEEDPOOL_ASSERT(inserted);
  worker_list_.push_back(&it->second);
  SEEDPOOL_ASSERT(worker_list_.size() == workers_.size());
}

void PoolActor::erase_worker(WorkerRef ref) {
  const auto it = workers_.find(ref);
  SEEDPOOL_ASSERT(it != workers_.end());
  const auto listed = std::find(worker_list_.begin(), worker_list_.end(), &it->second);
  SEEDPOOL_ASSERT(listed != worker_list_.end());
  *listed = worker_list_.back();
  worker_list_.pop_back();
  workers_.erase(it);
  SEEDPOOL_ASSERT(worker_list_.size() == workers_.size());
}

PoolActor::Worker* PoolActor::find(WorkerRef ref) {
  const auto it = workers_.find(ref);
  return it == workers_.end() ? nullptr : &it->second;
}

std::size_t PoolActor::count_active() const {
  return count_in(WorkerState::starting) + count_in(WorkerState::initializing) + count_in(WorkerState::ready) +
         count_in(WorkerState::busy);
}

std::size_t PoolActor::count_in(WorkerState state) const { return state_counts_[static_cast<std::size_t>(state)]; }

Error PoolActor::with_tail(const Worker& w, ErrorCode code, std::string message) const {
  return Error{code, std::move(message), w.stderr_lines.tail()};
}

// ---------------------------------------------------------------- waiters

void PoolActor::grant_waiters() {
  // Most calls find every worker busy; counting first keeps this O(workers)
  // then, instead of O(waiters x workers).
  std::size_t idle = count_in(WorkerState::ready);
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
      w->lease = it->id;
      SEEDPOOL_ASSERT(find_lease(it->id) == leases_.end());
      leases_.push_back(LeaseEntry{it->id, LeaseRecord{w->ref, std::nullopt}});
    }
    it = waiters_.erase(it);
  }
}

PoolActor::Worker* PoolActor::pick_worker(const Waiter& waiter) {
  if (!waiter.affinity_key.empty()) {
    const auto bound = affinity_.find(waiter.affinity_key);
    if (bound != affinity_.end()) {
      Worker* w = find(bound->second);
      if (w != nullptr && w->state == WorkerState::ready) {
        return w;
      }
      const bool alive = w != nullptr && (w->state == WorkerState::busy);
      if (waiter.affinity_mode == AffinityMode::strict && alive) {
        return nullptr;  // wait for that worker
      }
    }
  }
  for (auto& [ref, w] : workers_) {
    if (w.state == WorkerState::ready) {
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

ErrorCode PoolActor::gone_caller_saw(const Waiter& waiter) {
  return waiter.phase != nullptr && waiter.phase->load() == checkout_expired ? ErrorCode::timeout
                                                                               : ErrorCode::cancelled;
}

void PoolActor::answer_start_waiters() {
  const std::size_t ready = count_in(WorkerState::ready) + count_in(WorkerState::busy);
  for (auto it = start_waiters_.begin(); it != start_waiters_.end();) {
    std::optional<Status> answer;
    if (ready >= it->min_ready) {
      answer = Status();
    } else if (shutting_down_) {
      answer = Status(Error{ErrorCode::pool_shutting_down, "the pool shut down while starting", {}});
    } else if (breaker_.state() == BreakerState::open) {
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
  std::string message = fmt::format("pool '{}' failed to start: {}", config_.name, why);
  for (const Error& failure : recent_failures_) {
    message += "\n  " + failure.describe();
  }
  if (recent_failures_.empty()) {
    message += " (no worker failed; they were still starting)";
  }
  std::string tail = recent_failures_.empty() ? std::string() : recent_failures_.back().stderr_tail;
  // start()'s default deadline is the workers' own init deadline, so a worker
  // that hangs in init has usually not been reported yet: say where it is.
  for (const auto& [ref, w] : workers_) {
    if (w.state == WorkerState::starting || w.state == WorkerState::initializing) {
      message += fmt::format("\n  worker {} is still {} after {} (init_timeout {})", ref.to_string(),
                             to_string(w.state), ms(now() - w.created_at), ms(config_.init_timeout));
      if (tail.empty()) {
        tail = w.stderr_lines.tail();
      }
    }
  }
  return Error{ErrorCode::launch_failed, std::move(message), std::move(tail)};
}

Error PoolActor::unavailable() const {
  const Error* last = recent_failures_.empty() ? nullptr : &recent_failures_.back();
  return Error{ErrorCode::pool_unavailable,
               fmt::format("pool '{}' is unavailable: the circuit breaker is {} after {} failed worker starts "
                           "within {}; last failure: {}",
                           config_.name, to_string(breaker_.state()), config_.breaker_failures,
                           ms(config_.breaker_window), last ? last->message : "none"),
               last ? last->stderr_tail : std::string()};
}

// ---------------------------------------------------------------- waiter queue

void PoolActor::WaiterQueue::push_back(Waiter waiter) {
  if (!earliest_stale_) {
    earliest_ = std::min(earliest_, waiter.deadline);
  }
  items_.push_back(std::move(waiter));
}

PoolActor::WaiterQueue::iterator PoolActor::WaiterQueue::erase(iterator it) {
  forget(it->deadline);
  return items_.erase(it);
}

PoolActor::Waiter PoolActor::WaiterQueue::pop_front() {
  SEEDPOOL_ASSERT(!items_.empty());
  Waiter waiter = std::move(items_.front());
  items_.pop_front();
  forget(waiter.deadline);
  return waiter;
}

PoolActor::Waiter PoolActor::WaiterQueue::pop_back() {
  SEEDPOOL_ASSERT(!items_.empty());
  Waiter waiter = std::move(items_.back());
  items_.pop_back();
  forget(waiter.deadline);
  return waiter;
}

Instant PoolActor::WaiterQueue::earliest_deadline() const {
  if (earliest_stale_) {
    earliest_ = Instant::max();
    for (const Waiter& w : items_) {
      earliest_ = std::min(earliest_, w.deadline);
    }
    earliest_stale_ = false;
  }
  SEEDPOOL_ASSERT(!items_.empty() || earliest_ == Instant::max());
  return earliest_;
}

// Removing a later deadline leaves the earliest one where it is.
void PoolActor::WaiterQueue::forget(Instant deadline) noexcept {
  if (deadline <= earliest_) {
    earliest_stale_ = true;
  }
}

// ---------------------------------------------------------------- time

void PoolActor::on_timers() {
  const Instant t = now();
  if (t >= waiters_.earliest_deadline()) {
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (t >= it->deadline) {
        fail_checkout(*it, Error{ErrorCode::timeout,
                                 fmt::format(FMT_COMPILE("no worker of pool '{}' became available before the "
                                                         "deadline"),
                                             config_.name),
                                 {}});
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (breaker_.poll(t)) {
    emit({.kind = TelemetryKind::breaker, .at = t, .breaker = BreakerState::half_open});
  }
  for (auto& [ref, w] : workers_) {
    check_worker_timers(w);  // never erases a worker
  }
  if (shutting_down_ && t >= grace_deadline_) {
    grace_deadline_ = Instant::max();
    for (auto& [ref, w] : workers_) {
      if (w.state == WorkerState::busy) {
        stop_worker(w, false, "shutdown grace period over");
      }
    }
  }
}

void PoolActor::check_worker_timers(Worker& w) {
  const Instant t = now();
  if (w.ping_id && t >= w.ping_deadline) {
    emit({.kind = TelemetryKind::health_failure, .at = t, .worker = w.ref,
          .detail = fmt::format("no pong within {}", ms(config_.health_timeout))});
    fail_worker(w, with_tail(w, ErrorCode::worker_crashed,
                             fmt::format("worker {} failed its health check: no pong within {}", w.ref.to_string(),
                                         ms(config_.health_timeout))));
    return;
  }
  if (w.state == WorkerState::ready && !w.ping_id && t >= w.next_ping_at) {
    const std::uint64_t id = w.line->take_request_id();
    if (!w.process->write_frame(Frame{FrameKind::ping, id, {}})) {
      fail_worker(w, with_tail(w, ErrorCode::worker_crashed,
                               fmt::format("worker {} did not accept a ping", w.ref.to_string())));
      return;
    }
    emit({.kind = TelemetryKind::health_ping, .at = t, .worker = w.ref});
    w.ping_id = id;
    w.ping_deadline = t + config_.health_timeout;
    w.next_ping_at = Instant::max();
  }
  if ((w.state == WorkerState::ready || w.state == WorkerState::busy) && t >= w.recycle_at) {
    if (w.state == WorkerState::ready) {
      emit({.kind = TelemetryKind::worker_recycle, .at = t, .worker = w.ref, .detail = "max_lifetime"});
      stop_worker(w, true, "recycled");
    } else {
      w.recycle_due = true;
    }
    w.recycle_at = Instant::max();
  }
  if (w.state == WorkerState::stopping && w.process != nullptr) {
    if (t >= w.terminate_at) {
      w.process->signal(Signal::terminate);
      w.terminate_at = Instant::max();
      w.kill_at = t + config_.terminate_grace;
    } else if (t >= w.kill_at) {
      w.process->signal(Signal::kill);
      w.kill_at = Instant::max();
    }
  }
}

Instant PoolActor::next_deadline() const {
  Instant next = waiters_.earliest_deadline();
  for (const StartWaiter& s : start_waiters_) {
    next = std::min(next, s.deadline);
  }
  next = std::min(next, breaker_.half_open_at());
  if (worker_timers_stale_ || worker_timers_count_ != workers_.size()) {
    worker_timers_next_ = earliest_worker_timer();
    worker_timers_count_ = workers_.size();
    worker_timers_stale_ = false;
  }
  next = std::min(next, worker_timers_next_);
  if (!shutting_down_ && next_start_at_ > now()) {
    next = std::min(next, next_start_at_);
  }
  if (shutting_down_) {
    next = std::min(next, grace_deadline_);
  }
  return next;
}

// The earliest of the workers' timers that next_deadline() counts. Each
// timer is one plain comparison: std::min over an initializer list cost
// about twice as many instructions here (measured with callgrind).
Instant PoolActor::earliest_worker_timer() const {
  SEEDPOOL_ASSERT(worker_list_.size() == workers_.size());
  Instant next = Instant::max();
  for (const Worker* const worker : worker_list_) {
    const Worker& w = *worker;
    next = std::min(next, w.ping_deadline);
    next = std::min(next, w.terminate_at);
    next = std::min(next, w.kill_at);
    if (w.state == WorkerState::ready && !w.ping_id) {
      next = std::min(next, w.next_ping_at);
    }
    if (w.state == WorkerState::ready || w.state == WorkerState::busy) {
      next = std::min(next, w.recycle_at);
    }
  }
  return next;
}

Duration PoolActor::backoff_delay() {
  const std::uint32_t doublings = std::min(consecutive_failures_ == 0 ? 0 : consecutive_failures_ - 1,
                                           backoff_doublings_max);
  Duration delay = config_.restart_backoff_base * (std::int64_t{1} << doublings);
  delay = std::min(delay, config_.restart_backoff_max);
  const auto jitter_ns = delay.ns() / 100 * config_.restart_backoff_jitter_percent;
  if (jitter_ns > 0) {
    delay = delay - Duration::from_ns(static_cast<std::int64_t>(
                        world_.random_below(static_cast<std::uint64_t>(jitter_ns) + 1)));
  }
  SEEDPOOL_ASSERT(delay >= Duration::zero() && delay <= config_.restart_backoff_max);
  return delay;
}

// ---------------------------------------------------------------- shutdown

void PoolActor::begin_shutdown(Instant grace_deadline) {
  if (shutting_down_) {
    return;
  }
  shutting_down_ = true;
  grace_deadline_ = grace_deadline;
  emit({.kind = TelemetryKind::pool_shutdown, .at = now(), .deadline = grace_deadline});
  while (!waiters_.empty()) {
    const Waiter waiter = waiters_.pop_front();
    fail_checkout(waiter, Error{ErrorCode::pool_shutting_down,
                                fmt::format("pool '{}' shut down while the checkout waited", config_.name), {}});
  }
  for (auto& [ref, w] : workers_) {
    if (w.state != WorkerState::busy) {
      stop_worker(w, true, "pool shutdown");
    }
  }
}

bool PoolActor::finished() const { return shutting_down_ && workers_.empty(); }

void PoolActor::finish() {
  // A first snapshot, for stats() while the mailbox is being drained.
  shared_->set_final_stats(aggregator_.stats(), false);
  shared_->mailbox.close();
  // Answer whatever arrived before the close. A checkout or a refused call
  // taken here is still counted, as any other: the final stats follow.
  const Error gone{ErrorCode::pool_shutting_down, fmt::format("pool '{}' has shut down", config_.name), {}};
  struct Drain {
    PoolActor& self;
    const Error& gone;
    void operator()(CheckoutRequest& m) const {
      self.emit_request(m);
      self.fail_checkout(Waiter{m.id, m.deadline, m.requested_at, {}, m.affinity_mode, m.reply, m.phase}, gone);
    }
    void operator()(CheckoutCancel&) const {}
    // Every line was cut when its worker exited: no call waits any more.
    void operator()(CallAbandon&) const {}
    void operator()(CallUnsent&) const {}
    void operator()(CallRefused& m) const { self.handle(m); }
    void operator()(CallsReport&) const {}
    void operator()(Checkin&) const {}
    void operator()(StatsRequest& m) const { (void)m.reply->try_send(PoolStats(self.aggregator_.stats())); }
    void operator()(StartRequest& m) const { (void)m.reply->try_send(Status(gone)); }
    void operator()(ShutdownRequest& m) const { self.shutdown_waiters_.push_back(std::move(m.reply)); }
    // Every worker has exited, and an exit is a worker's last message.
    void operator()(WorkerLaunched&) const { SEEDPOOL_ASSERT_MSG(false, "worker message after the last exit"); }
    void operator()(WorkerLaunchFailed&) const { SEEDPOOL_ASSERT_MSG(false, "worker message after the last exit"); }
    void operator()(WorkerReady&) const { SEEDPOOL_ASSERT_MSG(false, "worker message after the last exit"); }
    void operator()(WorkerInitFailed&) const { SEEDPOOL_ASSERT_MSG(false, "worker message after the last exit"); }
    void operator()(WorkerEvent&) const { SEEDPOOL_ASSERT_MSG(false, "worker message after the last exit"); }
  };
  const Drain drain{*this, gone};
  for (Received<Message> left = shared_->mailbox.try_receive(); left; left = shared_->mailbox.try_receive()) {
    std::visit(drain, *left.value);
  }
  shared_->set_final_stats(aggregator_.stats(), true);
  for (const auto& waiter : shutdown_waiters_) {
    (void)waiter->try_send(Status());
  }
}

void PoolActor::emit(TelemetryEvent event) {
  aggregator_.on_event(event);
  if (TelemetrySink* sink = shared_->hooks.telemetry; sink != nullptr) {
    sink->on_event(event);
  }
}

void run_pool_task(const std::shared_ptr<PoolShared>& shared) {
  PoolActor actor(shared);
  actor.run();
}

}  // namespace seedpool::detail
