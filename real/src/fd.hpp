#pragma once

// Owned file descriptors and errno text: the small OS vocabulary every other
// file of the real backend speaks.

#include <string>
#include <utility>

namespace seedpool::real::detail {

// Owns one file descriptor and closes it on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset(other.release());
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  // Gives up ownership without closing.
  int release() noexcept { return std::exchange(fd_, -1); }
  // Closes the owned descriptor (never retried on EINTR: Linux has closed it
  // already) and takes `fd` instead.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

// "No such file or directory (errno 2)": the errno's description and number.
std::string errno_text(int error);

// Sets O_NONBLOCK on `fd`. Returns 0 or an errno value.
int set_nonblocking(int fd) noexcept;

}  // namespace seedpool::real::detail
