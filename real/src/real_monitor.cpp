// RealWorld's Monitor; see real_monitor.hpp.

#include "real_monitor.hpp"

namespace seedpool::real::detail {

bool RealMonitor::wait_until(Instant deadline, std::string_view /*reason: for deadlock reports in sim*/) {
  // The caller holds mutex_ through Monitor::lock(); adopt it for the wait
  // and hand it back held.
  std::unique_lock<std::mutex> held(mutex_, std::adopt_lock);
  bool notified = true;
  std::chrono::steady_clock::time_point at;
  if (world_.to_time_point(deadline, at)) {
    notified = condition_.wait_until(held, at) == std::cv_status::no_timeout;
  } else {
    condition_.wait(held);
  }
  held.release();
  return notified;
}

}  // namespace seedpool::real::detail
