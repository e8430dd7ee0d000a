#pragma once

// The I/O loop's epoll set. Every registration carries a key naming a process
// and which of its descriptors it is, never the descriptor number, so an
// event can never be routed by a number the kernel has since reused.

#include "fd.hpp"

#include <cstdint>
#include <sys/epoll.h>

namespace seedpool::real::detail {

// Which descriptor of a process an event is about.
enum class Stream : std::uint8_t { stdin_pipe = 0, stdout_pipe = 1, stderr_pipe = 2, exit_watch = 3 };

// Process keys start at 1; key 0 is the loop's own wake-up eventfd.
inline constexpr std::uint64_t wake_key = 0;

inline std::uint64_t epoll_tag(std::uint64_t key, Stream stream) {
  return (key << 2) | static_cast<std::uint64_t>(stream);
}
inline std::uint64_t tag_key(std::uint64_t tag) { return tag >> 2; }
inline Stream tag_stream(std::uint64_t tag) { return static_cast<Stream>(tag & 3u); }

class Epoll {
 public:
  // Throws std::system_error when the kernel refuses an epoll descriptor.
  Epoll();

  // Registers `fd`. Every process descriptor is registered EPOLLONESHOT: after
  // one event it reports nothing (not even EPOLLHUP) until modify() re-arms
  // it, which is how the loop stops reading a process whose events wait for
  // room. Returns 0 or an errno value.
  int add(int fd, std::uint64_t tag, std::uint32_t events);
  // Re-arms `fd` with `events`. Cannot fail for a registered descriptor.
  void modify(int fd, std::uint64_t tag, std::uint32_t events);
  // Unregisters `fd`; call before closing it.
  void remove(int fd);

  // epoll_wait, retried on EINTR. Returns the number of events.
  int wait(epoll_event* events, int events_max, int timeout_ms);

  int fd() const noexcept { return fd_.get(); }

 private:
  UniqueFd fd_;
};

}  // namespace seedpool::real::detail
