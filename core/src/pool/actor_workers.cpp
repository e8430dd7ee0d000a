// The pool task's side of its workers: starting them, their messages and
// process events, and stopping them; see actor.hpp.

#include "actor.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>
#include <system_error>

namespace seedpool::detail {

// ---------------------------------------------------------------- starting

void PoolActor::start_workers() {
  if (shutting_down_ || restart_.breaker() == BreakerState::open) {
    return;
  }
  // Decided and reported under the shelf's monitor, against the waiters it
  // holds then: a release that serves a waiter meanwhile cannot make a start
  // decided on the waiter before it look unneeded. The tasks are spawned
  // after (a spawn is a scheduling point).
  std::vector<WorkerRef> started;
  shelf_.decide_starts(workers_.count_active() < config_.size.max, [&](std::size_t waiting) {
    const std::size_t floor = config_.init == InitMode::eager ? config_.size.min : 0;
    const std::size_t serving = workers_.count_in(WorkerState::ready) + workers_.count_in(WorkerState::busy);
    const std::size_t wanted = std::min(config_.size.max, std::max(floor, serving + waiting));
    // Half-open, the probe starts whether or not anyone waits: checkouts
    // fail fast while half-open, so demand alone would never start it, and a
    // lazy pool would stay unavailable for good. The policy allows the one
    // probe.
    const std::size_t target = restart_.breaker() == BreakerState::half_open ? config_.size.max : wanted;
    // The missing workers belong to the lowest free slots, each started once
    // its own backoff allows: a slot that keeps failing waits, and its
    // replacement is not moved to a slot without a backoff.
    const std::size_t active = workers_.count_active();
    std::size_t missing = target > active ? target - active : 0;
    std::vector<TelemetryEvent> events;
    for (std::uint32_t slot = 0; slot < config_.size.max && missing > 0; ++slot) {
      if (workers_.slot_active(slot)) {
        continue;
      }
      --missing;
      if (restart_.may_start(slot, now())) {
        restart_.starting(slot, now());
        started.push_back(workers_.add(slot, now()).ref);
        events.push_back({.kind = TelemetryKind::worker_state, .at = now(), .worker = started.back(),
                          .from = WorkerState::dead, .to = WorkerState::starting});
      }
    }
    return events;
  });
  for (const WorkerRef ref : started) {
    spawn_worker_task(*workers_.find(ref));
  }
}

void PoolActor::spawn_worker_task(const Worker& w) {
  const std::string task = fmt::format(FMT_COMPILE("{}/{}"), config_.name, w.ref.to_string());
  try {
    world_.spawn(task, [shared = shared_, ref = w.ref, uid = w.uid] { run_worker_task(shared, ref, uid); });
  } catch (const std::system_error& e) {
    // The task that would launch and watch the worker was refused (thread
    // or memory limits): a failed start like a launch failure, so the slot
    // backs off and repeated refusals open the breaker.
    WorkerLaunchFailed failed{w.ref, Error{ErrorCode::launch_failed,
                                           fmt::format("cannot start task '{}': {}", task, e.what()), {}}};
    handle(failed);
  }
}

void PoolActor::handle(WorkerLaunched& m) {
  Worker* w = workers_.find(m.worker);
  SEEDPOOL_ASSERT(w != nullptr && w->process == nullptr);
  w->process = std::move(m.process);
  if (w->start_cancelled) {
    SEEDPOOL_ASSERT(w->state() == WorkerState::stopping);
    w->process->signal(Signal::kill);
    return;
  }
  transition(*w, WorkerState::initializing);
}

void PoolActor::handle(WorkerLaunchFailed& m) {
  Worker* w = workers_.find(m.worker);
  SEEDPOOL_ASSERT(w != nullptr && w->process == nullptr);
  if (!w->start_cancelled) {
    record_init_failure(*w, std::move(m.error));
  }
  transition(*w, WorkerState::dead);
  workers_.erase(*w);
}

void PoolActor::handle(WorkerReady& m) {
  Worker* w = workers_.find(m.worker);
  SEEDPOOL_ASSERT(w != nullptr);
  if (w->state() == WorkerState::stopping) {
    return;  // stopped while starting; its exit follows
  }
  emit({.kind = TelemetryKind::worker_init, .at = now(), .duration = now() - w->created_at, .worker = w->ref});
  w->ready_at = now();
  if (restart_.ready(w->ref.slot)) {
    shelf_.breaker_moved({.kind = TelemetryKind::breaker, .at = now(), .breaker = BreakerState::closed}, std::nullopt);
  }
  if (config_.max_lifetime > Duration::zero()) {
    const auto jitter = static_cast<std::int64_t>(
        world_.random_below(static_cast<std::uint64_t>(config_.max_lifetime_jitter.ns()) + 1));
    workers_.set_recycle_at(*w, now() + config_.max_lifetime - Duration::from_ns(jitter));
  }
  w->line = std::make_shared<CallLine>(world_, w->ref, w->process);
  w->process->set_router(w->line);
  transition(*w, WorkerState::ready);
  make_idle(*w);
}

void PoolActor::handle(WorkerInitFailed& m) {
  Worker* w = workers_.find(m.worker);
  SEEDPOOL_ASSERT(w != nullptr);
  if (w->state() == WorkerState::stopping) {
    return;  // the pool stopped it itself
  }
  SEEDPOOL_ASSERT(w->state() == WorkerState::initializing);
  record_init_failure(*w, std::move(m.error));
  transition(*w, WorkerState::stopping);
  workers_.set_kill_at(*w, now() + config_.terminate_grace);
}

void PoolActor::record_init_failure(Worker& w, Error error) {
  if (error.stderr_tail.empty()) {
    error.stderr_tail = w.stderr_lines.tail();
  }
  emit({.kind = TelemetryKind::worker_init, .at = now(), .duration = now() - w.created_at, .error = error.code,
        .worker = w.ref, .detail = error.message});
  if (restart_.start_failed(w.ref.slot, now(), error)) {
    breaker_opened(error);
  }
}

// The shelf emits the opening and fails its waiters under one lock: no
// checkout slips in between.
void PoolActor::breaker_opened(const Error& error) {
  Deliveries out;
  shelf_.breaker_opened(
      {.kind = TelemetryKind::breaker, .at = now(), .breaker = BreakerState::open, .detail = error.message},
      restart_.unavailable(), out);
  out.send();
}

// ---------------------------------------------------------------- process events

void PoolActor::handle(WorkerEvent& m) {
  Worker* w = workers_.find(m.worker);
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
  if (frame.kind == FrameKind::pong && w.timers().ping_id == frame.request_id) {
    emit({.kind = TelemetryKind::health_pong, .at = now(), .worker = w.ref});
    workers_.clear_ping(w);
    workers_.set_next_ping_at(w, config_.health_interval > Duration::zero() ? now() + config_.health_interval
                                                                            : Instant::max());
    return;
  }
  if (w.state() == WorkerState::stopping) {
    return;  // already being replaced; nothing it says matters now
  }
  const std::string expected =
      waiting != CallLine::none ? fmt::format("the call in flight has request id {}", waiting) : "no call is in flight";
  fail_worker(w, with_tail(w, ErrorCode::protocol_error,
                           fmt::format("worker {} sent an unexpected {} frame with request id {} ({})",
                                       w.ref.to_string(), to_string(frame.kind), frame.request_id, expected)));
}

void PoolActor::on_exit(Worker& w, const ExitStatus& status) {
  take_back(w);
  emit({.kind = TelemetryKind::worker_exit, .at = now(), .worker = w.ref, .detail = status.describe()});
  const bool unexpected = w.state() == WorkerState::ready || w.state() == WorkerState::busy;
  const Error crashed =
      with_tail(w, ErrorCode::worker_crashed,
                fmt::format(FMT_COMPILE("worker {} exited ({})"), w.ref.to_string(), status.describe()));
  if (lease_of(w)) {
    lose_lease(w, crashed);
  }
  if (w.line) {
    w.line->cut(crashed);
    take_call_records(w);
    w.process->set_router(nullptr);
  }
  // Ready or busy: it was ready, and leaves its slot now.
  const bool opened = unexpected && restart_.exited(w.ref.slot, *w.ready_at, now(), crashed);
  transition(w, WorkerState::dead);
  workers_.erase(w);
  if (opened) {
    breaker_opened(restart_.recent_failures().back());
  }
}

// ---------------------------------------------------------------- states

void PoolActor::transition(Worker& w, WorkerState to) {
  SEEDPOOL_ASSERT_MSG(is_legal_transition(w.state(), to) && to != WorkerState::starting,
                      "illegal worker state transition");
  SEEDPOOL_ASSERT_MSG(!w.lent, "the pool task changed the state of a worker on the shelf");
  emit({.kind = TelemetryKind::worker_state, .at = now(), .worker = w.ref, .from = w.state(), .to = to});
  workers_.set_state(w, to);
}

// A worker becomes idle by going on the shelf, which hands it to the first
// waiter that can take it.
void PoolActor::make_idle(Worker& w) {
  if (w.state() == WorkerState::busy) {
    transition(w, WorkerState::ready);
  }
  SEEDPOOL_ASSERT(w.state() == WorkerState::ready && !w.lent && !lease_of(w) && w.line->reusable());
  if (config_.health_interval > Duration::zero() && !w.timers().ping_id) {
    workers_.set_next_ping_at(w, now() + config_.health_interval);
  }
  if (now() >= w.timers().recycle_at) {
    emit({.kind = TelemetryKind::worker_recycle, .at = now(), .worker = w.ref, .detail = "max_lifetime"});
    stop_worker(w, true, "recycled");
    return;
  }
  w.lent = true;
  Deliveries out;
  shelf_.lend(w.ref, w.line, out);
  out.send();
}

// Before the pool task changes a lent worker's state, the worker becomes its
// own again; one a caller leases stays leased, and its release comes to the
// pool task (shelf.hpp, rules 1 and 4).
void PoolActor::take_back(Worker& w) {
  if (!w.lent) {
    return;
  }
  w.lent = false;
  if (shelf_.take_back(w.ref) == Shelf::Held::leased) {
    workers_.set_state(w, WorkerState::busy);  // as the shelf reported it
  }
}

// Takes a worker out of service. Graceful: a shutdown frame, then terminate
// after terminate_grace, then kill. Otherwise: kill now.
void PoolActor::stop_worker(Worker& w, bool graceful, std::string_view reason) {
  if (w.state() == WorkerState::stopping || w.state() == WorkerState::dead) {
    return;
  }
  take_back(w);
  if (lease_of(w)) {
    lose_lease(w, with_tail(w, shutting_down_ ? ErrorCode::pool_shutting_down : ErrorCode::worker_crashed,
                            fmt::format("worker {} was stopped under the lease: {}", w.ref.to_string(), reason)));
  }
  const bool started = w.state() != WorkerState::starting && w.state() != WorkerState::initializing;
  w.start_cancelled = !started;
  if (started) {
    restart_.stopped(w.ref.slot, *w.ready_at, now());
  }
  transition(w, WorkerState::stopping);
  workers_.clear_ping(w);
  workers_.set_next_ping_at(w, Instant::max());
  if (w.process == nullptr) {
    return;  // still launching: killed as soon as the launch reports
  }
  if (graceful && started && w.process->write_frame(Frame{FrameKind::shutdown, 0, {}})) {
    workers_.set_terminate_at(w, now() + config_.terminate_grace);
  } else {
    w.process->signal(Signal::kill);
    workers_.set_kill_at(w, now() + config_.terminate_grace);
  }
}

void PoolActor::fail_worker(Worker& w, Error error) {
  take_back(w);
  if (lease_of(w)) {
    lose_lease(w, error);
  }
  stop_worker(w, false, error.message);
}

// The lease's holder learns of `error` at its call in flight, or at its next
// call; the worker is free of the lease from now on.
void PoolActor::lose_lease(Worker& w, Error error) {
  take_back(w);
  const Error lost = shelf_.lose(w.ref, std::move(error));
  w.line->cut(lost);
  take_call_records(w);
}

Error PoolActor::with_tail(const Worker& w, ErrorCode code, std::string message) const {
  return Error{code, std::move(message), w.stderr_lines.tail()};
}

}  // namespace seedpool::detail
