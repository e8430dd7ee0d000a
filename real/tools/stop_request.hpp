#pragma once

// The stop a SIGINT or SIGTERM asks for, as the parts of `seedpool run` see
// it: a flag every loop of the job checks, and a descriptor that becomes
// readable, so that a thread waiting in poll() for stdin wakes up too.

#include <atomic>

namespace seedpool::tool {

class StopRequest {
 public:
  // Throws std::system_error when the kernel refuses the pipe.
  StopRequest();
  ~StopRequest();
  StopRequest(const StopRequest&) = delete;
  StopRequest& operator=(const StopRequest&) = delete;

  // Any thread. Records `signal` (the first one wins) and makes wake_fd()
  // readable for good.
  void request(int signal) noexcept;

  bool requested() const noexcept { return signal_.load(std::memory_order_acquire) != 0; }
  // The signal that asked for the stop; 0 while none has.
  int signal() const noexcept { return signal_.load(std::memory_order_acquire); }
  // Readable once a stop was requested; never read from.
  int wake_fd() const noexcept { return read_fd_; }

 private:
  std::atomic<int> signal_{0};
  int read_fd_ = -1;
  int write_fd_ = -1;
};

}  // namespace seedpool::tool
