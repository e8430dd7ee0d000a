// RealWorld's Monitor; see real_monitor.hpp.

#include "real_monitor.hpp"

#include <chrono>

namespace seedpool::real::detail {

bool wait_held(const RealWorld& world, std::condition_variable& condition, std::mutex& mutex, Instant deadline) {
  std::unique_lock<std::mutex> held(mutex, std::adopt_lock);
  bool notified = true;
  std::chrono::steady_clock::time_point at;
  if (world.to_time_point(deadline, at)) {
    notified = condition.wait_until(held, at) == std::cv_status::no_timeout;
  } else {
    condition.wait(held);
  }
  held.release();
  return notified;
}

bool RealMonitor::wait_until(Instant deadline, std::string_view /*reason: for deadlock reports in sim*/) {
  // The caller holds mutex_ through Monitor::lock().
  return wait_held(world_, condition_, mutex_, deadline);
}

}  // namespace seedpool::real::detail
