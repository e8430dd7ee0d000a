#pragma once

// The World: everything pool code needs from outside itself. Pool code is
// written once against this interface and runs unchanged on the simulated
// World (one thread, virtual time, seeded choices) and on the real one
// (threads, steady clock, OS processes). Code in core/ touches no clock,
// thread, sleep, randomness or OS call except through a World.

#include <seedpool/core/result.hpp>
#include <seedpool/core/time.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace seedpool {

class Process;
struct ProcessSpec;

// A mutex with one condition, provided by the World so that blocking is a
// scheduling point in simulation and a real wait in production. Channel is
// built on it; pool code normally uses channels rather than monitors.
//
// Never hold a monitor's lock across a scheduling point (a channel
// operation, a sleep, a spawn, a yield) other than its own wait_until: the
// simulator runs every task on one thread, where that is a deadlock it
// reports as "monitor locked twice". The World must outlive its monitors.
class Monitor {
 public:
  virtual ~Monitor() = default;

  // Acquire and release the monitor's lock. Not recursive.
  virtual void lock() = 0;
  virtual void unlock() = 0;

  // Requires the lock held by the caller. Releases it, waits until notified
  // or until `deadline`, and reacquires it. Returns false when the deadline
  // passed. May return true spuriously, so callers re-check their condition.
  // `reason` describes the wait ("receive on 'mailbox'") for deadlock reports.
  virtual bool wait_until(Instant deadline, std::string_view reason) = 0;

  // Wakes every waiter. May be called with or without the lock held.
  virtual void notify_all() = 0;
};

// Holds a monitor's lock for a scope.
class MonitorLock {
 public:
  explicit MonitorLock(Monitor& monitor) : monitor_(monitor) { monitor_.lock(); }
  ~MonitorLock() { monitor_.unlock(); }
  MonitorLock(const MonitorLock&) = delete;
  MonitorLock& operator=(const MonitorLock&) = delete;

 private:
  Monitor& monitor_;
};

// The World's side of seedpool::Mutex (see <seedpool/core/sync.hpp>, which
// states the contract). A real World backs it with a kernel mutex; in
// simulation lock() and try_lock() are scheduling points and the mutex knows
// the task that holds it. The World must outlive it.
class MutexBackend {
 public:
  virtual ~MutexBackend() = default;
  virtual void lock() = 0;
  virtual bool try_lock() = 0;
  virtual void unlock() = 0;
};

// The World's side of seedpool::ConditionVariable. The World must outlive it.
class ConditionBackend {
 public:
  virtual ~ConditionBackend() = default;

  // Requires `mutex`, made by the same World, held by the caller. Releases
  // it, waits until notified or until `deadline`, and holds it again on
  // return. Returns false when the deadline passed first. May return true
  // spuriously.
  virtual bool wait_until(MutexBackend& mutex, Instant deadline) = 0;
  // Wakes one waiter, if any (which one is the World's to say).
  virtual void notify_one() = 0;
  // Wakes every waiter.
  virtual void notify_all() = 0;
};

// A task that can be waited for: the World's side of seedpool::Thread.
// Destroying it without join() detaches the task, which runs on.
class JoinableTask {
 public:
  virtual ~JoinableTask() = default;
  // Blocks until the task's body has returned. Callable once.
  virtual void join() = 0;
  // The task's World::current_task_id() (0 when no task could be started).
  virtual std::uint64_t task_id() const noexcept = 0;
};

// Everything pool code may use of the outside world: a clock, tasks,
// monitors (and so channels), randomness and processes.
class World {
 public:
  virtual ~World() = default;

  // The current time on this World's clock. Monotonic.
  virtual Instant now() const = 0;

  // Blocks the calling task until now() >= deadline. A deadline in the past
  // still yields once, so a sleep is always a scheduling point.
  virtual void sleep_until(Instant deadline) = 0;

  // Offers the scheduler a chance to run another task. A no-op in production;
  // in simulation every call is a point where the interleaving may change.
  virtual void yield() = 0;

  // An Atomic's operation: atomic_point() is its scheduling point, before
  // it, as yield() is for anything else; atomic_accessed() follows it, with
  // the atomic and whether the operation changed its value. A simulated
  // World parks a task that spins on atomics nobody changes (see SimWorld);
  // a real one does nothing.
  virtual void atomic_point() { yield(); }
  virtual void atomic_accessed(const void* object, bool changed) {
    static_cast<void>(object);
    static_cast<void>(changed);
  }

  // Starts a task running `body`. `name` identifies it in traces and deadlock
  // reports. Tasks are not joined: a task that must be waited for reports
  // completion through a channel, or is started with spawn_joinable. In
  // simulation spawning is a scheduling point. Throws std::system_error
  // when the task cannot be started (in production: a thread the kernel
  // refuses), having started nothing.
  virtual void spawn(std::string name, std::function<void()> body) = 0;

  // Creates a monitor; `name` appears in wait reasons.
  virtual std::unique_ptr<Monitor> make_monitor(std::string name) = 0;

  // A uniformly distributed integer in [0, bound). Requires bound >= 1. In
  // simulation it is a decision of the run's decision stream; in production it
  // is for jitter only and carries no security guarantee.
  virtual std::uint64_t random_below(std::uint64_t bound) = 0;

  // Starts a worker process. Fails with launch_failed naming the program and
  // the reason when it cannot be started; it never hangs.
  virtual Result<std::unique_ptr<Process>> launch(const ProcessSpec& spec) = 0;

  // Creates the backend of a seedpool::Mutex; `name` appears in deadlock
  // reports and failure messages.
  virtual std::unique_ptr<MutexBackend> make_mutex(std::string name) = 0;

  // Creates the backend of a seedpool::ConditionVariable; `name` appears in
  // wait reasons.
  virtual std::unique_ptr<ConditionBackend> make_condition(std::string name) = 0;

  // Starts a task as spawn() does and returns a handle to wait for it with.
  virtual std::unique_ptr<JoinableTask> spawn_joinable(std::string name, std::function<void()> body) = 0;

  // Ends the run as a C++ program ends when main returns: every other task
  // is told to stop, and stopping() is true from then on. exit() returns to
  // its caller, which should return as well. In simulation the run ends at
  // the call, with the outcome it has (ok unless it failed before), and every
  // unfinished task, the caller included, is torn down as at the end of any
  // run (see SimWorld::run). A real World ends no thread and not the
  // process: stopping() turns true and the World's owner decides the rest
  // (see RealWorld::exit).
  virtual void exit() = 0;

  // Whether this World is shutting down: in simulation, once the run is over
  // and its remaining tasks are being torn down; in production, once the
  // World's owner has begun to destroy it. It never turns false again.
  //
  // The rule for code that loops until told to stop (a ticker, say:
  // `while (true) { world.sleep_for(period); work(); }`): check stopping()
  // at every turn and return when it is true. In simulation every wait and
  // sleep fails at once from then on, so a loop that does not check spins;
  // the simulator ends such a task after a few turns by unwinding its stack
  // from a wait, but a clean return is the contract. A real World does not
  // end a task: its destructor waits for every task to return.
  virtual bool stopping() const noexcept { return false; }

  // An id of the calling task, never the same for two tasks of this World
  // alive at once: in simulation the task's number plus one (0 outside
  // tasks), on a real World a number given to each thread at its first
  // question (or at its spawn_joinable), never 0. What Thread::get_id and
  // this_task::get_id return, and what the recursive and timed mutexes of
  // <seedpool/core/sync.hpp> record as their holder.
  virtual std::uint64_t current_task_id() const noexcept = 0;

  // The calling task is about to read a host clock (a deadline given as a
  // time point of a clock other than seedpool::WorldClock, converted into an
  // Instant from the time left on that clock; see <seedpool/core/sync.hpp>),
  // in `operation`. A real World lets it. A simulated World fails the run:
  // the host clock is not virtual time, and the time left on it at the call
  // differs from run to run, so the run could not be replayed.
  virtual void reading_host_clock(std::string_view operation) { static_cast<void>(operation); }

  // Convenience: sleep_until(now() + duration).
  void sleep_for(Duration duration) { sleep_until(now() + duration); }
};

}  // namespace seedpool
