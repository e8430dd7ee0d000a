#pragma once

// WorkQueue: a small bounded work queue with deadlines and cancellation,
// written against seedpool::World and nothing else. It is the "user's own
// concurrent component" of this example: the same code runs on the simulated
// World in the tests (one thread, virtual time, every choice seeded) and on
// seedpool::real::RealWorld in real_main.cpp (threads, steady clock).
//
// The contract, which the simulation tests check as invariants:
//   - every ticket gets exactly one outcome: done, cancelled or timed_out;
//   - a job whose ticket was cancelled or timed out before a worker took it
//     is never started;
//   - once cancel() returned true, the caller's outcome is cancelled, and the
//     job's result (if it was already running) is discarded;
//   - at most queue_depth_max jobs wait in the queue; submit() waits for room
//     until the job's deadline;
//   - shutdown() refuses new jobs, lets the workers drain what is queued and
//     running, and returns once every worker has stopped.
//
// Options::planted_bug re-introduces a classic race on purpose (see
// work_queue.cpp): the tests must find it, replay it and shrink it.

#include <seedpool/core/channel.hpp>
#include <seedpool/core/result.hpp>
#include <seedpool/core/time.hpp>
#include <seedpool/core/world.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace work_queue {

// What a job computes. It runs on a worker task and may use the World
// (sleep_for, channels); it must not block in any other way, or the
// simulator cannot schedule around it.
using JobFn = std::function<std::string(seedpool::World&)>;

struct Job {
  std::string name;  // for readers of traces and logs
  JobFn run;
};

enum class OutcomeKind { done, cancelled, timed_out };

// "done", "cancelled" or "timed_out".
std::string_view to_string(OutcomeKind kind) noexcept;

struct Outcome {
  std::uint64_t ticket = 0;
  OutcomeKind kind = OutcomeKind::done;
  std::string value;  // the job's result when done; empty otherwise
};

// What the queue reports while it works: telemetry for production, and the
// feed of the invariant checker in the simulation tests.
struct Event {
  enum class Kind {
    submitted,  // depth: jobs waiting right after this one was queued
    started,    // a worker began running the job
    skipped,    // a worker took the job but its outcome was already decided
    outcome,    // the ticket's outcome was delivered; `outcome` says which
    discarded,  // a finished job's result was dropped: the outcome was decided meanwhile
  };
  Kind kind = Kind::submitted;
  std::uint64_t ticket = 0;
  OutcomeKind outcome = OutcomeKind::done;
  std::size_t depth = 0;
};

// Called on the task that caused the event, outside the queue's lock. With
// RealWorld it may be called from several threads at once.
using Observer = std::function<void(const Event&)>;

namespace detail {
struct TicketState;
struct Shared;
}  // namespace detail

// A handle on one submitted job. Cheap to copy; every copy names the same job.
class Ticket {
 public:
  std::uint64_t id() const noexcept;
  seedpool::Instant deadline() const noexcept;

 private:
  friend class WorkQueue;
  explicit Ticket(std::shared_ptr<detail::TicketState> state) : state_(std::move(state)) {}
  std::shared_ptr<detail::TicketState> state_;
};

class WorkQueue {
 public:
  struct Options {
    std::size_t workers = 2;          // worker tasks, spawned by the constructor
    std::size_t queue_depth_max = 8;  // jobs waiting for a worker
    Observer observer;                // optional
    bool planted_bug = false;         // re-introduces the race described in work_queue.cpp
  };

  // Spawns the worker tasks on `world`, which must outlive every task and
  // ticket of this queue. In simulation, call it from inside a task. Requires
  // workers >= 1 and queue_depth_max >= 1.
  WorkQueue(seedpool::World& world, Options options);

  // Closes the queue if shutdown() was not called. Workers finish what is
  // queued on their own; the destructor does not wait for them.
  ~WorkQueue();

  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `job`, which must be finished by `deadline`. Waits for room until
  // the deadline; fails with timeout when the queue stayed full, with closed
  // after shutdown(). Requires job.run.
  seedpool::Result<Ticket> submit(Job job, seedpool::Instant deadline);

  // Decides the ticket's outcome as cancelled, if it is not decided yet, and
  // returns whether it did. A queued job is then never started; a running one
  // finishes but its result is discarded.
  bool cancel(const Ticket& ticket);

  // Waits for the ticket's outcome. When the ticket's deadline passes first,
  // the outcome is decided as timed_out (unless a worker or cancel() decided it
  // at the same moment, in which case that outcome is returned). Call it once
  // per ticket.
  Outcome wait(const Ticket& ticket);

  // Refuses new jobs, lets the workers drain the queued and running ones, and
  // waits until every worker has stopped or `deadline` passes (timeout, naming
  // how many workers were still busy). Call it once.
  seedpool::Status shutdown(seedpool::Instant deadline);

  // Jobs waiting for a worker right now.
  std::size_t depth() const;

 private:
  std::shared_ptr<detail::Shared> shared_;
};

}  // namespace work_queue
