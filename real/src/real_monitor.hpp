#pragma once

// RealWorld's Monitor: a std::mutex and a std::condition_variable.

#include <seedpool/core/world.hpp>
#include <seedpool/real/real_world.hpp>

#include <condition_variable>
#include <mutex>
#include <string_view>

namespace seedpool::real::detail {

// Waits on `condition` with `mutex`, which the caller holds and holds again
// on return, until notified or `deadline` of `world`'s clock (Instant::max(),
// or any instant beyond steady_clock's range: no deadline). Returns false
// exactly when the deadline passed.
bool wait_held(const RealWorld& world, std::condition_variable& condition, std::mutex& mutex, Instant deadline);

class RealMonitor final : public Monitor {
 public:
  explicit RealMonitor(const RealWorld& world) : world_(world) {}

  void lock() override { mutex_.lock(); }
  void unlock() override { mutex_.unlock(); }
  // Waits on the condition variable until notified or `deadline` on
  // steady_clock; Instant::max() (or any instant beyond steady_clock's range)
  // waits without a deadline. Returns false exactly when the deadline passed.
  bool wait_until(Instant deadline, std::string_view reason) override;
  void notify_all() override { condition_.notify_all(); }

 private:
  const RealWorld& world_;
  std::mutex mutex_;
  std::condition_variable condition_;
};

}  // namespace seedpool::real::detail
