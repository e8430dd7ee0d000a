// RealWorld's Monitor; see real_monitor.hpp.

#include "real_monitor.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <ctime>

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

namespace {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "the futex word is a plain 32-bit integer");

std::uint32_t* futex_word(std::atomic<std::uint32_t>& word) { return reinterpret_cast<std::uint32_t*>(&word); }

}  // namespace

bool RealMonitor::wait_until(Instant deadline, std::string_view /*reason: for deadlock reports in sim*/) {
  // The caller holds mutex_ through Monitor::lock(): a notify comes after
  // `seen` is read.
  const std::uint32_t seen = notifications_.load();
  std::chrono::steady_clock::time_point at;
  const bool timed = world_.to_time_point(deadline, at);
  timespec until{};
  if (timed) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
    until.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    until.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  }
  mutex_.unlock();
  // Yield first: a hand-off between callers (a released worker granted to a
  // waiting checkout) usually lands within a few yields, and a futex sleep
  // and wake-up cost more CPU than the yields on a busy machine. A notify
  // during the yields bumps the count without a futex call: the waiter is
  // not registered as a sleeper yet.
  for (int spin = 0; spin < yields_before_sleep; ++spin) {
    if (notifications_.load() != seen) {
      mutex_.lock();
      return true;
    }
    ::sched_yield();
  }
  // Registered before the futex reads the count: a notify after the
  // registration sees the sleeper, one before it moved the count, and then
  // the futex does not sleep.
  sleepers_.fetch_add(1);
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, steady_clock's.
  const long rc = ::syscall(SYS_futex, futex_word(notifications_), FUTEX_WAIT_BITSET_PRIVATE, seen,
                            timed ? &until : nullptr, nullptr, FUTEX_BITSET_MATCH_ANY);
  const bool timed_out = rc == -1 && errno == ETIMEDOUT;
  sleepers_.fetch_sub(1);
  mutex_.lock();
  return !timed_out;  // woken, the count moved already, or a signal: the caller re-checks
}

void RealMonitor::notify_all() {
  notifications_.fetch_add(1);
  if (sleepers_.load() > 0) {
    ::syscall(SYS_futex, futex_word(notifications_), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
  }
}

}  // namespace seedpool::real::detail
