// The I/O loop's epoll set; see epoll.hpp.

#include "epoll.hpp"

#include <seedpool/core/assert.hpp>

#include <cerrno>
#include <system_error>

namespace seedpool::real::detail {

Epoll::Epoll() : fd_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (!fd_.valid()) {
    throw std::system_error(errno, std::generic_category(), "seedpool RealWorld: epoll_create1");
  }
}

int Epoll::add(int fd, std::uint64_t tag, std::uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.u64 = tag;
  return ::epoll_ctl(fd_.get(), EPOLL_CTL_ADD, fd, &event) == 0 ? 0 : errno;
}

void Epoll::modify(int fd, std::uint64_t tag, std::uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.u64 = tag;
  const int rc = ::epoll_ctl(fd_.get(), EPOLL_CTL_MOD, fd, &event);
  SEEDPOOL_ASSERT_MSG(rc == 0, "epoll_ctl(EPOLL_CTL_MOD) failed for a registered descriptor");
}

void Epoll::remove(int fd) {
  // Fails only for a descriptor that is not registered, which is harmless.
  static_cast<void>(::epoll_ctl(fd_.get(), EPOLL_CTL_DEL, fd, nullptr));
}

int Epoll::wait(epoll_event* events, int events_max, int timeout_ms) {
  for (;;) {
    const int n = ::epoll_wait(fd_.get(), events, events_max, timeout_ms);
    if (n >= 0) {
      return n;
    }
    SEEDPOOL_ASSERT_MSG(errno == EINTR, "epoll_wait failed");
    // Retrying with the same timeout can only wait longer than asked, and the
    // loop treats every timeout as "at the earliest"; the thread blocks all
    // signals anyway.
  }
}

}  // namespace seedpool::real::detail
