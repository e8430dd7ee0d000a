#pragma once

// The simulated mutex, shared by sim_sync.cpp, which implements it, and
// sim_world.cpp, whose scheduling path its lock() goes through. Internal to
// seedpool::sim.

#include "sim_task.hpp"

#include <seedpool/core/world.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <cstdint>
#include <string>

namespace seedpool::sim {

// A mutex in simulation: a flag with the task that holds it, and the list
// of its lockers, the tasks whose next operation is taking it.
//
// lock() is a scheduling point taken before the mutex is tried. A task that
// then finds it held joins the lockers and blocks: it is not offered to the
// strategy at all. unlock() makes every blocked locker runnable, and
// whichever task takes the mutex next (the first locker the strategy runs,
// or any task whose own lock() comes first) sends every locker still
// runnable back to blocked, without a step: each of them would only have
// found the mutex held again. A contended lock thus costs at most two steps
// however many tasks contend, and which contender wins stays the strategy's
// choice, so replays are exact. A locker resumed by its wake always finds
// the mutex free, for nothing else runs between its pick and its resumption.
class SimWorld::SimMutex final : public MutexBackend {
 public:
  SimMutex(SimWorld& world, std::string name, std::uint64_t id);
  ~SimMutex() override;
  SimMutex(const SimMutex&) = delete;
  SimMutex& operator=(const SimMutex&) = delete;

  void lock() override;
  bool try_lock() override;
  void unlock() override;

  const std::string& name() const noexcept { return name_; }
  const Task* owner() const noexcept { return held_ ? owner_ : nullptr; }
  bool held_by(const Task& task) const noexcept { return held_ && owner_ == &task; }

  // Gives the mutex up as unlock() does, for a condition's wait.
  void release();
  // Takes the mutex for `task`, blocking while it is held, with no
  // scheduling point of its own: it follows lock()'s (SimWorld::lock_point)
  // or a condition's wait.
  void acquire(Task& task);

  // A condition waiter, notified while blocked: it becomes a locker,
  // runnable at once when the mutex is free, else blocked on the mutex.
  void add_notified(Task& task);

 private:
  void take(Task& task);
  void join_lockers(Task& task);
  void leave_lockers(Task& task);
  void abandon_lockers();
  void lock_outside_tasks();
  std::string holder_name() const;

  SimWorld& world_;
  std::string name_;
  std::string reason_;  // "lock 'NAME'": the wait reason of its blocked lockers
  std::uint64_t id_;
  bool held_ = false;
  Task* owner_ = nullptr;  // while held: the holder; null when taken outside any task
  WaiterList lockers_;     // blocked, or runnable since the last release
};

}  // namespace seedpool::sim
