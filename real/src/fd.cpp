// Owned descriptors and errno text.

#include "fd.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace seedpool::real::detail {

void UniqueFd::reset(int fd) noexcept {
  if (fd_ >= 0) {
    static_cast<void>(::close(fd_));
  }
  fd_ = fd;
}

std::string errno_text(int error) {
  // strerrordesc_np is thread-safe and locale-free, unlike strerror.
  const char* description = ::strerrordesc_np(error);
  return fmt::format("{} (errno {})", description != nullptr ? description : "Unknown error", error);
}

int set_nonblocking(int fd) noexcept {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return errno;
  }
  return 0;
}

}  // namespace seedpool::real::detail
