// WorkQueue's implementation. Everything that tasks share lives in
// detail::Shared and detail::TicketState, held by shared_ptr: World tasks are
// never joined, so a worker must be able to outlive the WorkQueue object that
// spawned it.
//
// Who decides a ticket's outcome is the whole difficulty. Three parties race
// for it: the worker that finishes the job, cancel(), and wait() when the
// deadline passes. Exactly one of them must win, so each one goes through
// resolve(), which flips `resolved` under the lock and only the winner
// delivers. Channel operations are scheduling points, so nothing blocking or
// yielding ever happens while the lock is held.

#include "work_queue.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

#include <utility>

namespace work_queue {

using seedpool::Channel;
using seedpool::ChannelStatus;
using seedpool::Error;
using seedpool::ErrorCode;
using seedpool::Instant;
using seedpool::MonitorLock;
using seedpool::Received;

std::string_view to_string(OutcomeKind kind) noexcept {
  switch (kind) {
    case OutcomeKind::done:
      return "done";
    case OutcomeKind::cancelled:
      return "cancelled";
    case OutcomeKind::timed_out:
      return "timed_out";
  }
  return "unknown";
}

namespace detail {

// One submitted job's shared state. `resolved` and `waited` are guarded by
// Shared::lock; `results` carries the single outcome to wait().
struct TicketState {
  TicketState(seedpool::World& world, std::uint64_t ticket_id, Instant ticket_deadline)
      : id(ticket_id), deadline(ticket_deadline), results(world, fmt::format("ticket {}", ticket_id), 1) {}

  const std::uint64_t id;
  const Instant deadline;
  bool resolved = false;
  bool waited = false;
  Channel<Outcome> results;
};

struct QueuedJob {
  std::shared_ptr<TicketState> ticket;
  Job job;
};

struct Shared {
  Shared(seedpool::World& w, WorkQueue::Options o)
      : world(w),
        options(std::move(o)),
        jobs(w, "jobs", options.queue_depth_max),
        exits(w, "worker-exits", options.workers),
        lock(w.make_monitor("work-queue")) {}

  void emit(const Event& event) const {
    if (options.observer) {
      options.observer(event);
    }
  }

  seedpool::World& world;
  const WorkQueue::Options options;
  Channel<QueuedJob> jobs;
  Channel<std::size_t> exits;                // one message per stopped worker
  std::unique_ptr<seedpool::Monitor> lock;   // guards next_ticket and every TicketState
  std::uint64_t next_ticket = 1;
  bool shut_down = false;
};

}  // namespace detail

namespace {

using detail::QueuedJob;
using detail::Shared;
using detail::TicketState;

// Hands `outcome` to the ticket's waiter. Only the party that won resolve()
// may call it.
void deliver(const Shared& shared, TicketState& ticket, Outcome outcome) {
  shared.emit({.kind = Event::Kind::outcome, .ticket = ticket.id, .outcome = outcome.kind});
  const ChannelStatus sent = ticket.results.try_send(std::move(outcome));
  if (!shared.options.planted_bug) {
    // The winner sends once into an empty channel of capacity 1.
    SEEDPOOL_ASSERT(sent == ChannelStatus::ok);
  }
}

// PLANTED BUG (Options::planted_bug): check, deliver, then mark. The lock
// cannot be held across deliver(), whose send is a scheduling point, so this
// version checks under the lock, delivers without it, and only then records
// that the ticket is resolved. A second party (cancel(), a waiter whose
// deadline just passed, the worker finishing) that checks while the first is
// inside deliver() sees "not resolved" and delivers a second outcome. The
// window is one scheduling point wide: the two parties must act at the same
// instant and be interleaved just so. The correct resolve() below flips the
// flag under the lock before delivering.
bool resolve_with_planted_bug(Shared& shared, TicketState& ticket, Outcome outcome) {
  {
    MonitorLock hold(*shared.lock);
    if (ticket.resolved) {
      return false;
    }
  }
  deliver(shared, ticket, std::move(outcome));
  MonitorLock hold(*shared.lock);
  ticket.resolved = true;
  return true;
}

// Decides the ticket's outcome if nobody has, and delivers it. Returns false
// when another party decided first; `outcome` is then dropped.
bool resolve(Shared& shared, TicketState& ticket, Outcome outcome) {
  if (shared.options.planted_bug) {
    return resolve_with_planted_bug(shared, ticket, std::move(outcome));
  }
  {
    MonitorLock hold(*shared.lock);
    if (ticket.resolved) {
      return false;
    }
    ticket.resolved = true;
  }
  deliver(shared, ticket, std::move(outcome));
  return true;
}

enum class Claim { run, skip, expired };

// Takes the job for this worker unless its outcome is decided or its
// deadline has passed.
Claim claim(Shared& shared, const TicketState& ticket) {
  MonitorLock hold(*shared.lock);
  if (ticket.resolved) {
    return Claim::skip;
  }
  if (shared.world.now() >= ticket.deadline) {
    return Claim::expired;
  }
  return Claim::run;
}

// Runs one job taken from the queue and settles its outcome.
void run_one(Shared& shared, QueuedJob& item) {
  TicketState& ticket = *item.ticket;
  switch (claim(shared, ticket)) {
    case Claim::skip:
      shared.emit({.kind = Event::Kind::skipped, .ticket = ticket.id});
      return;
    case Claim::expired:
      (void)resolve(shared, ticket, Outcome{ticket.id, OutcomeKind::timed_out, {}});
      return;
    case Claim::run:
      break;
  }
  shared.emit({.kind = Event::Kind::started, .ticket = ticket.id});
  std::string value = item.job.run(shared.world);  // scheduling points inside
  if (!resolve(shared, ticket, Outcome{ticket.id, OutcomeKind::done, std::move(value)})) {
    shared.emit({.kind = Event::Kind::discarded, .ticket = ticket.id});
  }
}

// A worker task: takes jobs until the queue is closed and drained.
void worker_loop(const std::shared_ptr<Shared>& shared, std::size_t index) {
  for (;;) {
    Received<QueuedJob> item = shared->jobs.receive();
    if (!item) {
      break;  // closed and drained (in simulation teardown, every wait fails too)
    }
    run_one(*shared, *item.value);
  }
  (void)shared->exits.try_send(std::size_t{index});
}

}  // namespace

std::uint64_t Ticket::id() const noexcept { return state_->id; }
Instant Ticket::deadline() const noexcept { return state_->deadline; }

WorkQueue::WorkQueue(seedpool::World& world, Options options) {
  SEEDPOOL_ASSERT(options.workers >= 1);
  SEEDPOOL_ASSERT(options.queue_depth_max >= 1);
  shared_ = std::make_shared<Shared>(world, std::move(options));
  for (std::size_t i = 0; i < shared_->options.workers; ++i) {
    world.spawn(fmt::format("worker {}", i), [shared = shared_, i] { worker_loop(shared, i); });
  }
}

WorkQueue::~WorkQueue() { shared_->jobs.close(); }

seedpool::Result<Ticket> WorkQueue::submit(Job job, Instant deadline) {
  SEEDPOOL_ASSERT_MSG(static_cast<bool>(job.run), "submit() of a job without a body");
  std::uint64_t id = 0;
  {
    MonitorLock hold(*shared_->lock);
    id = shared_->next_ticket++;
  }
  auto ticket = std::make_shared<TicketState>(shared_->world, id, deadline);
  const ChannelStatus queued = shared_->jobs.send(QueuedJob{ticket, std::move(job)}, deadline);
  if (queued == ChannelStatus::closed) {
    return Error{ErrorCode::closed, fmt::format("job {}: the work queue is shut down", id)};
  }
  if (queued != ChannelStatus::ok) {
    return Error{ErrorCode::timeout, fmt::format("job {}: the queue stayed full ({} jobs) until the job's deadline",
                                                 id, shared_->options.queue_depth_max)};
  }
  shared_->emit({.kind = Event::Kind::submitted, .ticket = id, .depth = shared_->jobs.size()});
  return Ticket(std::move(ticket));
}

bool WorkQueue::cancel(const Ticket& ticket) {
  return resolve(*shared_, *ticket.state_, Outcome{ticket.id(), OutcomeKind::cancelled, {}});
}

Outcome WorkQueue::wait(const Ticket& ticket) {
  TicketState& state = *ticket.state_;
  {
    MonitorLock hold(*shared_->lock);
    SEEDPOOL_ASSERT_MSG(!state.waited, "wait() called twice on one ticket");
    state.waited = true;
  }
  Received<Outcome> got = state.results.receive(state.deadline);
  if (got) {
    return std::move(*got.value);
  }
  // The deadline passed. Decide timed_out unless someone just decided
  // otherwise; either way the winner has sent, or is about to send, the one
  // outcome, so wait for it without a deadline.
  (void)resolve(*shared_, state, Outcome{state.id, OutcomeKind::timed_out, {}});
  got = state.results.receive();
  if (got) {
    return std::move(*got.value);
  }
  return Outcome{state.id, OutcomeKind::timed_out, {}};  // reached only in simulation teardown
}

seedpool::Status WorkQueue::shutdown(Instant deadline) {
  {
    MonitorLock hold(*shared_->lock);
    SEEDPOOL_ASSERT_MSG(!shared_->shut_down, "shutdown() called twice");
    shared_->shut_down = true;
  }
  shared_->jobs.close();  // jobs queued before this are still taken and run
  for (std::size_t stopped = 0; stopped < shared_->options.workers; ++stopped) {
    if (!shared_->exits.receive(deadline)) {
      return Error{ErrorCode::timeout, fmt::format("{} of {} workers still busy at the shutdown deadline",
                                                   shared_->options.workers - stopped, shared_->options.workers)};
    }
  }
  return {};
}

std::size_t WorkQueue::depth() const { return shared_->jobs.size(); }

}  // namespace work_queue
