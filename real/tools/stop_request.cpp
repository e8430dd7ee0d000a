#include "stop_request.hpp"

#include <cerrno>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

namespace seedpool::tool {

StopRequest::StopRequest() {
  int fds[2] = {-1, -1};
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::generic_category(), "creating the stop pipe");
  }
  read_fd_ = fds[0];
  write_fd_ = fds[1];
}

StopRequest::~StopRequest() {
  ::close(read_fd_);
  ::close(write_fd_);
}

void StopRequest::request(int reason) noexcept {
  int none = 0;
  if (signal_.compare_exchange_strong(none, reason, std::memory_order_acq_rel)) {
    // One byte, never read: the pipe stays readable. Non-blocking, and the
    // pipe is empty, so it cannot fail for want of room.
    static_cast<void>(::write(write_fd_, "x", 1));
  }
}

}  // namespace seedpool::tool
