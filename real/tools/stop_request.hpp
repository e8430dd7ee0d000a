#pragma once

// The stop a SIGINT or SIGTERM asks for, or a stdout that can no longer be
// written, as the parts of `seedpool run` see it: a flag every loop of the
// job checks, and a descriptor that becomes readable, so that a thread
// waiting in poll() for stdin wakes up too.

#include <algorithm>
#include <atomic>

namespace seedpool::tool {

class StopRequest {
 public:
  // Throws std::system_error when the kernel refuses the pipe.
  StopRequest();
  ~StopRequest();
  StopRequest(const StopRequest&) = delete;
  StopRequest& operator=(const StopRequest&) = delete;

  // A stop that no signal asked for (a write to stdout failed other than
  // with EPIPE, which stops as SIGPIPE would).
  static constexpr int no_signal = -1;

  // Any thread. Records `reason`, a signal number or no_signal (the first
  // one wins), and makes wake_fd() readable for good.
  void request(int reason) noexcept;

  bool requested() const noexcept { return signal_.load(std::memory_order_acquire) != 0; }
  // The signal that asked for the stop; 0 while none has, or for no_signal.
  int signal() const noexcept { return std::max(signal_.load(std::memory_order_acquire), 0); }
  // Readable once a stop was requested; never read from.
  int wake_fd() const noexcept { return read_fd_; }

 private:
  std::atomic<int> signal_{0};
  int read_fd_ = -1;
  int write_fd_ = -1;
};

}  // namespace seedpool::tool
