#pragma once

// RealWorld's backends of <seedpool/core/sync.hpp>: a std::mutex that knows
// the thread holding it, a std::condition_variable, and join handles.

#include <seedpool/core/world.hpp>
#include <seedpool/real/real_world.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace seedpool::real::detail {

// A std::mutex and the id of the thread holding it, kept so that misuse
// (locking it twice, unlocking it from another thread, destroying it held)
// is a failed assertion rather than undefined behaviour. Only the holder
// writes its own id, so a thread reading its own id back holds the mutex.
class RealMutex final : public MutexBackend {
 public:
  explicit RealMutex(std::string name) : name_(std::move(name)) {}
  ~RealMutex() override;
  RealMutex(const RealMutex&) = delete;
  RealMutex& operator=(const RealMutex&) = delete;

  void lock() override;
  bool try_lock() override;
  void unlock() override;

  // For RealCondition: requires the calling thread to hold the mutex.
  std::mutex& native_for_wait(std::string_view condition);
  void held_again() noexcept { owner_.store(std::this_thread::get_id(), std::memory_order_relaxed); }

 private:
  void require_not_held_by_caller(std::string_view operation) const;

  std::string name_;
  std::mutex mutex_;
  std::atomic<std::thread::id> owner_{};
};

class RealCondition final : public ConditionBackend {
 public:
  RealCondition(const RealWorld& world, std::string name) : world_(world), name_(std::move(name)) {}

  bool wait_until(MutexBackend& mutex, Instant deadline) override;
  void notify_one() override { condition_.notify_one(); }
  void notify_all() override { condition_.notify_all(); }

 private:
  const RealWorld& world_;
  std::string name_;
  std::condition_variable condition_;
};

// Whether a joinable task's body has returned, and the thread running it.
struct JoinState {
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  std::thread::id thread;
  std::uint64_t task_id = 0;  // given before the thread starts; see adopt_task_id
};

// World::current_task_id on a RealWorld: the calling thread's number, given
// at its first question from a process-wide count, or adopted at its start.
std::uint64_t current_task_id() noexcept;
// A fresh number, for a thread about to start (spawn_joinable), which
// adopts it as its first act, so that the handle knows its id at once.
std::uint64_t next_task_id() noexcept;
void adopt_task_id(std::uint64_t id) noexcept;

class RealJoinable final : public JoinableTask {
 public:
  RealJoinable(std::string name, std::shared_ptr<JoinState> state) : name_(std::move(name)), state_(std::move(state)) {}
  void join() override;
  std::uint64_t task_id() const noexcept override { return state_->task_id; }

 private:
  std::string name_;
  std::shared_ptr<JoinState> state_;
};

}  // namespace seedpool::real::detail
