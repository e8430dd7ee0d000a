// The simulated backends of <seedpool/core/sync.hpp>: mutexes that know the
// task holding them and keep their contenders out of the run queue,
// conditions that hand a notified waiter straight to its mutex, joins, and
// the lock-cycle part of the deadlock report.

#include "sim_sync.hpp"
#include "sim_task.hpp"

#include <seedpool/core/assert.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seedpool::sim {

SimWorld::SimMutex::SimMutex(SimWorld& world, std::string name, std::uint64_t id)
    : world_(world), name_(std::move(name)), reason_(fmt::format("lock '{}'", name_)), id_(id) {}

SimWorld::SimMutex::~SimMutex() {
  Task* const task = world_.current_;
  if (task == nullptr || world_.tearing_down_) {
    // After the run, or while its tasks are torn down: no failure is
    // recorded any more, but a task still waiting for this mutex must never
    // run again, for it would find the mutex gone.
    abandon_lockers();
    return;
  }
  if (held_) {
    world_.misuse(fmt::format("mutex '{}' destroyed by task '{}' while {} holds it", name_, task->name,
                              holder_name()));
  }
  if (!lockers_.empty()) {
    const std::string locker = lockers_.front()->name;
    abandon_lockers();
    world_.misuse(fmt::format("mutex '{}' destroyed by task '{}' while task '{}' waits to lock it", name_,
                              task->name, locker));
  }
}

void SimWorld::SimMutex::lock() {
  Task* const task = world_.current_;
  if (task == nullptr) {
    lock_outside_tasks();
    return;
  }
  if (held_by(*task) && !world_.tearing_down_) {
    world_.misuse(fmt::format("task '{}' locks mutex '{}', which it already holds", task->name, name_));
  }
  world_.lock_point(*this, *task);
}

bool SimWorld::SimMutex::try_lock() {
  Task* const task = world_.current_;
  if (task == nullptr) {
    if (held_) {
      return false;
    }
    lock_outside_tasks();
    return true;
  }
  if (held_by(*task) && !world_.tearing_down_) {
    world_.misuse(fmt::format("task '{}' try_locks mutex '{}', which it already holds", task->name, name_));
  }
  // A failed try_lock reads the mutex as an atomic load reads its value: a
  // task polling it with nothing else happening is parked as a spinner,
  // until a release (see SimWorld::atomic_accessed).
  world_.atomic_point();
  if (held_) {
    world_.atomic_accessed(this, false);
    return false;
  }
  take(*task);
  return true;
}

void SimWorld::SimMutex::unlock() {
  Task* const task = world_.current_;
  if (!held_ || owner_ != task) {
    if (world_.tearing_down_) {
      return;  // a lock holder unwinding a task ended before its lock was taken again
    }
    SEEDPOOL_ASSERT_MSG(task != nullptr, "a mutex unlocked outside tasks that was not locked there");
    world_.misuse(held_ ? fmt::format("task '{}' unlocks mutex '{}', which {} holds", task->name, name_,
                                      holder_name())
                        : fmt::format("task '{}' unlocks mutex '{}', which is not locked", task->name, name_));
  }
  release();
}

void SimWorld::SimMutex::release() {
  SEEDPOOL_ASSERT(held_);
  held_ = false;
  owner_ = nullptr;
  world_.note_progress();  // what the mutex guards may have changed
  world_.unpark_all();     // and a task polling it with try_lock may take it
  for (Task* locker = lockers_.front(); locker != nullptr; locker = locker->waiter_next) {
    if (locker->state == TaskState::blocked) {
      world_.wake(*locker);
    }
  }
}

void SimWorld::SimMutex::acquire(Task& task) {
  while (held_) {
    if (world_.tearing_down_) {
      leave_lockers(task);
      world_.end_in_teardown(task);
    }
    if (task.lock_wanted != this) {
      join_lockers(task);
    }
    world_.block_on(id_, reason_, Instant::max());
  }
  leave_lockers(task);
  take(task);
}

void SimWorld::SimMutex::add_notified(Task& task) {
  SEEDPOOL_ASSERT(task.state == TaskState::blocked);
  join_lockers(task);
  if (held_) {
    world_.wait_instead(task, id_, reason_);
  } else {
    world_.wake(task);
  }
}

void SimWorld::SimMutex::take(Task& task) {
  SEEDPOOL_ASSERT(!held_);
  SEEDPOOL_ASSERT(task.lock_wanted != this);
  held_ = true;
  owner_ = &task;
  // Taking a lock is a step of the task's own: an atomic read again under
  // it (double-checked locking's re-check) is not a spin.
  task.forget_spin_reads();
  for (Task* locker = lockers_.front(); locker != nullptr; locker = locker->waiter_next) {
    if (locker->state == TaskState::runnable) {
      world_.wait_instead(*locker, id_, reason_);
    }
  }
}

void SimWorld::SimMutex::join_lockers(Task& task) {
  SEEDPOOL_ASSERT(task.lock_wanted == nullptr);
  lockers_.push_back(task);
  task.lock_wanted = this;
}

void SimWorld::SimMutex::leave_lockers(Task& task) {
  if (task.lock_wanted == this) {
    lockers_.remove(task);
    task.lock_wanted = nullptr;
  }
}

void SimWorld::SimMutex::abandon_lockers() {
  Task* locker = lockers_.take_all();
  while (locker != nullptr) {
    Task* const next = WaiterList::take_next(*locker);
    locker->lock_wanted = nullptr;
    if (locker->state == TaskState::blocked || locker->state == TaskState::runnable) {
      world_.abandon_suspended(*locker);
    }
    locker = next;
  }
}

// Before or after the run (a test's setup, say) there is no task to block
// or to name; the mutex is a plain flag then.
void SimWorld::SimMutex::lock_outside_tasks() {
  SEEDPOOL_ASSERT_MSG(!held_, "a mutex locked twice outside tasks");
  held_ = true;
  owner_ = nullptr;
}

std::string SimWorld::SimMutex::holder_name() const {
  return owner_ == nullptr ? std::string("code outside tasks") : fmt::format("task '{}'", owner_->name);
}

// A condition variable in simulation: its waiters in the order they began
// to wait, each blocked with an optional timer. A notified waiter goes
// straight to the lockers of the mutex it waited with: blocked while that
// mutex is held, so it is not runnable just to find it held.
class SimWorld::SimCondition final : public ConditionBackend {
 public:
  SimCondition(SimWorld& world, std::string name, std::uint64_t id)
      : world_(world), name_(std::move(name)), reason_(fmt::format("wait on condition '{}'", name_)), id_(id) {}
  ~SimCondition() override;
  SimCondition(const SimCondition&) = delete;
  SimCondition& operator=(const SimCondition&) = delete;

  bool wait_until(MutexBackend& mutex, Instant deadline) override;

  // One waiter still blocked: the longest one under
  // SimConfig::notify_one_fifo, else the one the strategy chooses among
  // them (in the order they began to wait, the longest first, so that
  // choice 0 is the FIFO one). A waiter already woken by its deadline just
  // leaves the list.
  void notify_one() override {
    std::uint64_t blocked = 0;
    for (Task* waiter = waiters_.front(); waiter != nullptr;) {
      Task* const next = waiter->waiter_next;
      if (waiter->state == TaskState::blocked) {
        ++blocked;
        if (world_.config_.notify_one_fifo) {
          break;
        }
      } else {
        waiters_.remove(*waiter);
      }
      waiter = next;
    }
    if (blocked == 0) {
      return;
    }
    std::uint64_t skip = world_.config_.notify_one_fifo ? 0 : world_.choose(blocked);
    Task* chosen = waiters_.front();
    for (; chosen->state != TaskState::blocked || skip > 0; chosen = chosen->waiter_next) {
      if (chosen->state == TaskState::blocked) {
        --skip;
      }
    }
    waiters_.remove(*chosen);
    chosen->condition_mutex->add_notified(*chosen);
  }

  void notify_all() override {
    Task* waiter = waiters_.take_all();
    while (waiter != nullptr) {
      Task* const next = WaiterList::take_next(*waiter);
      if (waiter->state == TaskState::blocked) {
        waiter->condition_mutex->add_notified(*waiter);
      }
      waiter = next;
    }
  }

 private:
  SimWorld& world_;
  std::string name_;
  std::string reason_;  // "wait on condition 'NAME'"
  std::uint64_t id_;
  WaiterList waiters_;
};

SimWorld::SimCondition::~SimCondition() {
  if (waiters_.empty()) {
    return;
  }
  const std::string waiter = waiters_.front()->name;
  Task* task = waiters_.take_all();
  while (task != nullptr) {
    Task* const next = WaiterList::take_next(*task);
    if (task->state == TaskState::blocked || task->state == TaskState::runnable) {
      world_.abandon_suspended(*task);
    }
    task = next;
  }
  if (world_.current_ != nullptr && !world_.tearing_down_) {
    world_.misuse(fmt::format("condition '{}' destroyed by task '{}' while task '{}' waits on it", name_,
                              world_.current_->name, waiter));
  }
}

// Every backend a SimWorld makes is one of its own, so the mutex is a
// SimMutex. A deadline already past still passes one scheduling point, with
// the mutex released around it, as any wait does.
bool SimWorld::SimCondition::wait_until(MutexBackend& mutex_backend, Instant deadline) {
  auto& mutex = static_cast<SimMutex&>(mutex_backend);
  Task* const task = world_.current_;
  SEEDPOOL_ASSERT_MSG(task != nullptr, "a condition is waited on from a task");
  if (world_.tearing_down_) {
    // Fails at once, as every wait then does; the caller keeps the mutex.
    world_.teardown_point(*task, true);
    return false;
  }
  if (!mutex.held_by(*task)) {
    world_.misuse(fmt::format("task '{}' waits on condition '{}' without holding mutex '{}'", task->name, name_,
                              mutex.name()));
  }
  mutex.release();
  if (deadline <= world_.now_) {
    world_.yield();
    mutex.acquire(*task);
    return false;
  }
  if (world_.config_.spurious_wakeups && world_.choose(2) == 1) {
    // A spurious wakeup: no notification, one scheduling point with the
    // mutex released, as a wait that returned at once.
    world_.yield();
    mutex.acquire(*task);
    return true;
  }
  waiters_.push_back(*task);
  task->condition_mutex = &mutex;
  world_.block_on(id_, reason_, deadline);
  task->condition_mutex = nullptr;
  if (task->waiter_linked && task->lock_wanted == nullptr) {
    waiters_.remove(*task);  // woken by its deadline (or torn down), not notified
  }
  const bool notified = !task->woke_by_timeout;
  mutex.acquire(*task);
  return notified;
}

// A join handle in simulation: the task (null when none could be spawned)
// and the wait reason "join 'NAME'".
class SimWorld::SimJoinable final : public JoinableTask {
 public:
  SimJoinable(SimWorld& world, Task* task, std::uint64_t id)
      : world_(world),
        task_(task),
        id_(id),
        reason_(task == nullptr ? std::string() : fmt::format("join '{}'", task->name)) {}

  void join() override {
    if (task_ == nullptr) {
      world_.yield();
      return;
    }
    world_.join_task(*task_, id_, reason_);
  }

  std::uint64_t task_id() const noexcept override { return task_ == nullptr ? 0 : task_->id + 1; }

 private:
  SimWorld& world_;
  Task* task_;
  std::uint64_t id_;
  std::string reason_;
};

std::unique_ptr<MutexBackend> SimWorld::make_mutex(std::string name) {
  return std::make_unique<SimMutex>(*this, std::move(name), ++monitor_ids_);
}

std::unique_ptr<ConditionBackend> SimWorld::make_condition(std::string name) {
  return std::make_unique<SimCondition>(*this, std::move(name), ++monitor_ids_);
}

// Spawns as spawn() does, the handle made before the spawn's scheduling
// point.
std::unique_ptr<JoinableTask> SimWorld::spawn_joinable(std::string name, std::function<void()> body) {
  Task* const task = spawn_task(std::move(name), std::move(body));
  auto handle = std::make_unique<SimJoinable>(*this, task, ++monitor_ids_);
  if (task != nullptr) {
    yield();
  }
  return handle;
}

// A join of a finished task is a scheduling point like any other; a joiner
// of an unfinished one blocks until the task's end wakes it.
void SimWorld::join_task(Task& target, std::uint64_t join_id, std::string_view reason) {
  Task* const task = current_;
  SEEDPOOL_ASSERT_MSG(task != nullptr, "a task is joined from a task");
  if (&target == task && !tearing_down_) {
    misuse(fmt::format("task '{}' joins itself", task->name));
  }
  if (target.state == TaskState::done) {
    yield();
    return;
  }
  if (tearing_down_) {
    end_in_teardown(*task);
  }
  SEEDPOOL_ASSERT_MSG(target.joiner == nullptr, "a task is joined twice at once");
  target.joiner = task;
  block_on(join_id, reason, Instant::max());
  target.joiner = nullptr;
  if (target.state != TaskState::done) {
    SEEDPOOL_ASSERT(tearing_down_);
    end_in_teardown(*task);
  }
}

// The lock-order part of a deadlock report: every cycle of tasks each
// blocked on a mutex the next one holds ("lock cycle: task 'a' holds 'm1'
// and waits for 'm2'; task 'b' holds 'm2' and waits for 'm1'"), each
// starting at its task of lowest id, and every mutex waited for whose
// holder has finished or been abandoned. Empty when there is none.
std::string SimWorld::lock_report() const {
  enum class Mark : std::uint8_t { unseen, on_path, seen };
  std::vector<Mark> marks(tasks_.size(), Mark::unseen);
  const auto waits_for_held = [](const Task& task) {
    return task.state == TaskState::blocked && task.lock_wanted != nullptr && task.lock_wanted->owner() != nullptr;
  };
  std::string out;
  for (const auto& start : tasks_) {
    std::vector<const Task*> path;
    const Task* task = start.get();
    while (marks[task->id] == Mark::unseen && waits_for_held(*task)) {
      marks[task->id] = Mark::on_path;
      path.push_back(task);
      task = task->lock_wanted->owner();
    }
    if (marks[task->id] == Mark::on_path) {
      auto first = std::find(path.begin(), path.end(), task);
      std::vector<const Task*> cycle(first, path.end());
      std::rotate(cycle.begin(),
                  std::min_element(cycle.begin(), cycle.end(), [](auto* a, auto* b) { return a->id < b->id; }),
                  cycle.end());
      std::string line = "\n  lock cycle:";
      for (std::size_t i = 0; i < cycle.size(); ++i) {
        const Task* before = cycle[(i + cycle.size() - 1) % cycle.size()];
        line += fmt::format("{} task '{}' holds '{}' and waits for '{}'", i == 0 ? "" : ";", cycle[i]->name,
                            before->lock_wanted->name(), cycle[i]->lock_wanted->name());
      }
      out += line;
    } else if (!path.empty() && marks[task->id] == Mark::unseen &&
               (task->state == TaskState::done || task->state == TaskState::abandoned)) {
      marks[task->id] = Mark::seen;
      out += fmt::format("\n  mutex '{}' is held by task '{}', which {} without unlocking it",
                         path.back()->lock_wanted->name(), task->name,
                         task->state == TaskState::done ? "finished" : "was abandoned");
    }
    for (const Task* visited : path) {
      marks[visited->id] = Mark::seen;
    }
  }
  return out;
}

}  // namespace seedpool::sim
