// The pool task's loop, its timers and its shutdown; see actor.hpp.

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
      shelf_(shared_->shelf()),
      workers_(config_),
      restart_(config_, [&world = world_](std::uint64_t bound) { return world.random_below(bound); }, world_.now()) {}

void PoolActor::run() {
  start_workers();
  while (!finished()) {
    // Published to the shelf, whose callers wake the task for a waiter due
    // earlier (shelf.hpp, rule 3).
    const Instant deadline = shelf_.plan_wake(own_deadline());
    Received<Message> received = shared_->mailbox.receive(deadline);
    if (received.status == ChannelStatus::closed) {
      break;
    }
    if (received) {
      std::visit([this](auto& message) { handle(message); }, *received.value);
    } else if (received.status == ChannelStatus::timeout && world_.now() < deadline) {
      // A wait that failed before its deadline: the simulation is tearing down.
      return;
    }
    // on_timers acts only on what is due, and next_deadline() covers every
    // deadline it checks, so skipping it when nothing is due changes nothing;
    // it saves a pass over every worker after most messages.
    if (now() >= next_deadline()) {
      on_timers();
    }
    grant_waiters();
    start_workers();
    answer_start_waiters();
    // Closing is done where the breaker opens or shutdown begins, at once;
    // reopening may wait until here.
    const bool closed = restart_.breaker() == BreakerState::closed;
    shelf_.open_checkouts(!shutting_down_ && closed,
                          shutting_down_ || closed ? std::nullopt : std::optional<Error>(restart_.unavailable()));
  }
  finish();
}

void PoolActor::emit(TelemetryEvent event) { shelf_.emit(event); }

// ---------------------------------------------------------------- time

void PoolActor::on_timers() {
  const Instant t = now();
  if (t >= shelf_.earliest_deadline()) {
    Deliveries out;
    shelf_.expire(t,
                  Error{ErrorCode::timeout,
                        fmt::format(FMT_COMPILE("no worker of pool '{}' became available before the deadline"),
                                    config_.name),
                        {}},
                  out);
    out.send();
  }
  if (restart_.poll(t)) {
    shelf_.breaker_moved({.kind = TelemetryKind::breaker, .at = t, .breaker = BreakerState::half_open},
                         restart_.unavailable());
  }
  for (Worker& w : workers_.all()) {
    check_worker_timers(w);  // never erases a worker
  }
  if (shutting_down_ && t >= grace_deadline_) {
    grace_deadline_ = Instant::max();
    grace_over_ = true;
    for (Worker& w : workers_.all()) {
      if (w.state() == WorkerState::busy) {
        stop_worker(w, false, "shutdown grace period over");
      }
    }
  }
}

void PoolActor::check_worker_timers(Worker& w) {
  const Instant t = now();
  const WorkerTimers& timers = w.timers();
  if (timers.ping_id && t >= timers.ping_deadline) {
    emit({.kind = TelemetryKind::health_failure, .at = t, .worker = w.ref,
          .detail = fmt::format("no pong within {}", ms(config_.health_timeout))});
    fail_worker(w, with_tail(w, ErrorCode::worker_crashed,
                             fmt::format("worker {} failed its health check: no pong within {}", w.ref.to_string(),
                                         ms(config_.health_timeout))));
    return;
  }
  if (w.state() == WorkerState::ready && !timers.ping_id && t >= timers.next_ping_at) {
    ping(w);
    if (w.state() == WorkerState::stopping) {
      return;
    }
  }
  if ((w.state() == WorkerState::ready || w.state() == WorkerState::busy) && t >= timers.recycle_at) {
    take_back(w);
    if (w.state() == WorkerState::ready) {
      emit({.kind = TelemetryKind::worker_recycle, .at = t, .worker = w.ref, .detail = "max_lifetime"});
      stop_worker(w, true, "recycled");
    } else {
      w.recycle_due = true;
    }
    workers_.set_recycle_at(w, Instant::max());
  }
  if (w.state() == WorkerState::stopping && w.process != nullptr) {
    if (t >= timers.terminate_at) {
      w.process->signal(Signal::terminate);
      workers_.set_terminate_at(w, Instant::max());
      workers_.set_kill_at(w, t + config_.terminate_grace);
    } else if (t >= timers.kill_at) {
      w.process->signal(Signal::kill);
      workers_.set_kill_at(w, Instant::max());
    }
  }
}

// A ready worker is on the shelf between the pool task's steps. It is pinged
// once it has been idle there for health_interval, the shelf says, and stays
// there meanwhile; one a caller leases now is looked at again one
// health_interval later, the earliest it can have been idle that long.
void PoolActor::ping(Worker& w) {
  SEEDPOOL_ASSERT_MSG(w.lent, "a ready worker off the shelf between the pool task's steps");
  const Instant t = now();
  const Shelf::PingCheck check = shelf_.ping_if_idle(
      w.ref, config_.health_interval, {.kind = TelemetryKind::health_ping, .at = t, .worker = w.ref});
  if (check.kind != Shelf::PingCheck::pinged) {
    workers_.set_next_ping_at(w, check.kind == Shelf::PingCheck::not_yet ? check.due : t + config_.health_interval);
    return;
  }
  // The ping shares the pipe with a call a caller may write meanwhile; the
  // pong comes back through the pool task either way.
  const std::uint64_t id = w.line->take_request_id();
  if (!w.process->write_frame(Frame{FrameKind::ping, id, {}})) {
    fail_worker(w, with_tail(w, ErrorCode::worker_crashed,
                             fmt::format("worker {} did not accept a ping", w.ref.to_string())));
    return;
  }
  workers_.ping_sent(w, id, t + config_.health_timeout);
}

// The earliest deadline the pool task must wake for. Each part keeps its
// own earliest deadline up to date as its state changes, so this is a
// handful of comparisons.
Instant PoolActor::next_deadline() const { return std::min(own_deadline(), shelf_.earliest_deadline()); }

// The same without the waiters' deadlines, which the shelf keeps.
Instant PoolActor::own_deadline() const {
  Instant next = Instant::max();
  for (const StartWaiter& s : start_waiters_) {
    next = std::min(next, s.deadline);
  }
  next = std::min(next, restart_.half_open_at());
  next = std::min(next, workers_.earliest_timer());
  if (!shutting_down_) {
    next = std::min(next, restart_.next_start_after(now()));
  }
  if (shutting_down_) {
    next = std::min(next, grace_deadline_);
  }
  return next;
}

// ---------------------------------------------------------------- shutdown

void PoolActor::begin_shutdown(Instant grace_deadline) {
  if (shutting_down_) {
    // A later shutdown may end the grace sooner (a second interrupt from a
    // user who will not wait for it), never later; reported as a shutdown
    // with the new deadline.
    if (!grace_over_ && grace_deadline < grace_deadline_) {
      grace_deadline_ = grace_deadline;
      emit({.kind = TelemetryKind::pool_shutdown, .at = now(), .deadline = grace_deadline});
    }
    return;
  }
  shutting_down_ = true;
  grace_deadline_ = grace_deadline;
  // The shelf closes as shutdown is reported: no grant and no return to the
  // shelf can follow it.
  Deliveries out;
  shelf_.close({.kind = TelemetryKind::pool_shutdown, .at = now(), .deadline = grace_deadline},
               Error{ErrorCode::pool_shutting_down,
                     fmt::format("pool '{}' shut down while the checkout waited", config_.name), {}},
               out);
  out.send();
  for (Worker& w : workers_.all()) {
    take_back(w);
    if (w.state() != WorkerState::busy) {
      stop_worker(w, true, "pool shutdown");
    }
  }
}

bool PoolActor::finished() const { return shutting_down_ && workers_.empty(); }

void PoolActor::finish() {
  // A first snapshot, for stats() while the mailbox is being drained.
  shared_->set_final_stats(shelf_.stats(), false);
  shared_->mailbox.close();
  // Answer whatever arrived before the close. A checkout or a refused call
  // taken here is still counted, as any other: the final stats follow.
  const Error gone{ErrorCode::pool_shutting_down, fmt::format("pool '{}' has shut down", config_.name), {}};
  struct Drain {
    PoolActor& self;
    const Error& gone;
    void operator()(CheckoutRequest& m) const {
      self.emit_request(m);
      Deliveries out;
      self.shelf_.fail(Waiter{m.id, m.deadline, m.requested_at, {}, m.affinity_mode, m.reply, m.phase}, gone, out);
      out.send();
    }
    void operator()(CheckoutCancel&) const {}
    // Every line was cut when its worker exited: no call waits any more.
    void operator()(CallAbandon&) const {}
    void operator()(CallUnsent&) const {}
    void operator()(CallRefused& m) const { self.handle(m); }
    void operator()(CallsReport&) const {}
    void operator()(Checkin&) const {}
    void operator()(Wake&) const {}
    void operator()(StatsRequest& m) const { (void)m.reply->try_send(self.shelf_.stats()); }
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
  shared_->set_final_stats(shelf_.stats(), true);
  for (const auto& waiter : shutdown_waiters_) {
    (void)waiter->try_send(Status());
  }
}

void run_pool_task(const std::shared_ptr<PoolShared>& shared) {
  PoolActor actor(shared);
  actor.run();
}

}  // namespace seedpool::detail
