#pragma once

// A simulated task as the SimWorld and its waitable objects (monitors,
// mutexes, conditions, joins) see it. Internal to seedpool::sim.

#include <seedpool/core/assert.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <boost/context/fiber.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace seedpool::sim {

enum class TaskState : std::uint8_t { runnable, running, blocked, done, abandoned };

struct SimWorld::Task {
  TaskId id = 0;
  std::string name;
  std::function<void()> body;
  boost::context::fiber fiber;           // the task's own context while it is suspended
  boost::context::stack_context stack;   // the fiber's stack, from the world's StackPool
  TaskState state = TaskState::runnable;
  bool started = false;
  bool woke_by_timeout = false;
  std::uint64_t waiting_on = 0;       // monitor id; 0 while sleeping
  std::string_view wait_reason;       // owned by the waited-on object, valid while blocked
  std::uint64_t teardown_points = 0;
  std::uint64_t teardown_timed_waits = 0;
  // Links in the one WaiterList the task is in: a monitor's or a
  // condition's waiters, or a mutex's lockers. A task waits on at most one
  // object at a time.
  Task* waiter_prev = nullptr;
  Task* waiter_next = nullptr;
  bool waiter_linked = false;
  // The mutex whose lock is the task's next operation, while the task is in
  // that mutex's list of lockers (see SimMutex).
  SimMutex* lock_wanted = nullptr;
  // The mutex a task waiting on a condition takes again once notified.
  SimMutex* condition_mutex = nullptr;
  // The task blocked in a join of this one, if any.
  Task* joiner = nullptr;
  // Spin detection (SimWorld::atomic_accessed): the atomics the task has
  // read unchanged since SimWorld::progress_ was spin_progress (or since it
  // last took a mutex itself), and how many reads were of one already there.
  std::vector<const void*> spin_reads;
  std::uint32_t spin_rereads = 0;
  std::uint64_t spin_progress = 0;
  bool spinning = false;  // parked at its next atomic access
  bool parked = false;    // in SimWorld::parked_ rather than the run queue

  void forget_spin_reads() {
    spin_reads.clear();
    spin_rereads = 0;
  }
};

// An intrusive list of tasks in the order they joined it, linked through
// their waiter_* members: most waitable objects are made per request, and a
// vector of waiters cost each of them an allocation.
class SimWorld::WaiterList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  Task* front() const noexcept { return head_; }

  void push_back(Task& task) {
    SEEDPOOL_ASSERT(!task.waiter_linked);
    task.waiter_linked = true;
    task.waiter_prev = tail_;
    task.waiter_next = nullptr;
    (tail_ == nullptr ? head_ : tail_->waiter_next) = &task;
    tail_ = &task;
  }

  // Requires `task` in this list.
  void remove(Task& task) {
    SEEDPOOL_ASSERT(task.waiter_linked);
    (task.waiter_prev == nullptr ? head_ : task.waiter_prev->waiter_next) = task.waiter_next;
    (task.waiter_next == nullptr ? tail_ : task.waiter_next->waiter_prev) = task.waiter_prev;
    clear_links(task);
  }

  // Empties the list and returns its first task; the others stay chained
  // through waiter_next until each is unlinked with take_next.
  Task* take_all() noexcept {
    Task* first = head_;
    head_ = nullptr;
    tail_ = nullptr;
    return first;
  }

  // For a task of a chain returned by take_all: unlinks it and returns the
  // one after it.
  static Task* take_next(Task& task) noexcept {
    Task* const next = task.waiter_next;
    clear_links(task);
    return next;
  }

 private:
  static void clear_links(Task& task) noexcept {
    task.waiter_prev = nullptr;
    task.waiter_next = nullptr;
    task.waiter_linked = false;
  }

  Task* head_ = nullptr;  // the first waiter
  Task* tail_ = nullptr;  // the last waiter
};

}  // namespace seedpool::sim
