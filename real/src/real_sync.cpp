// RealWorld's sync backends; see real_sync.hpp.

#include "real_sync.hpp"

#include "real_monitor.hpp"
#include "task_threads.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

#include <chrono>

namespace seedpool::real::detail {

RealMutex::~RealMutex() {
  if (owner_.load(std::memory_order_relaxed) != std::thread::id{}) {
    const std::string why = fmt::format("mutex '{}' destroyed by task '{}' while a task holds it", name_, thread_name());
    SEEDPOOL_ASSERT_MSG(false, why.c_str());
  }
}

void RealMutex::require_not_held_by_caller(std::string_view operation) const {
  if (owner_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
    const std::string why = fmt::format("task '{}' {} mutex '{}', which it already holds", thread_name(), operation, name_);
    SEEDPOOL_ASSERT_MSG(false, why.c_str());
  }
}

void RealMutex::lock() {
  require_not_held_by_caller("locks");
  mutex_.lock();
  held_again();
}

bool RealMutex::try_lock() {
  require_not_held_by_caller("try_locks");
  if (!mutex_.try_lock()) {
    return false;
  }
  held_again();
  return true;
}

void RealMutex::unlock() {
  if (owner_.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
    const std::string why = fmt::format("task '{}' unlocks mutex '{}', which it does not hold", thread_name(), name_);
    SEEDPOOL_ASSERT_MSG(false, why.c_str());
  }
  owner_.store(std::thread::id{}, std::memory_order_relaxed);
  mutex_.unlock();
}

std::mutex& RealMutex::native_for_wait(std::string_view condition) {
  if (owner_.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
    const std::string why =
        fmt::format("task '{}' waits on condition '{}' without holding mutex '{}'", thread_name(), condition, name_);
    SEEDPOOL_ASSERT_MSG(false, why.c_str());
  }
  owner_.store(std::thread::id{}, std::memory_order_relaxed);
  return mutex_;
}

bool RealCondition::wait_until(MutexBackend& mutex_backend, Instant deadline) {
  // Every backend a RealWorld makes is one of its own.
  auto& mutex = static_cast<RealMutex&>(mutex_backend);
  const bool notified = wait_held(world_, condition_, mutex.native_for_wait(name_), deadline);
  mutex.held_again();
  return notified;
}

namespace {
std::atomic<std::uint64_t> task_ids{0};
thread_local std::uint64_t this_task_id = 0;
}  // namespace

std::uint64_t next_task_id() noexcept { return task_ids.fetch_add(1, std::memory_order_relaxed) + 1; }

std::uint64_t current_task_id() noexcept {
  if (this_task_id == 0) {
    this_task_id = next_task_id();
  }
  return this_task_id;
}

void adopt_task_id(std::uint64_t id) noexcept { this_task_id = id; }

void RealJoinable::join() {
  std::unique_lock<std::mutex> lock(state_->mutex);
  if (state_->thread == std::this_thread::get_id()) {
    const std::string why = fmt::format("task '{}' joins itself", name_);
    SEEDPOOL_ASSERT_MSG(false, why.c_str());
  }
  state_->finished.wait(lock, [this] { return state_->done; });
}

}  // namespace seedpool::real::detail
