#pragma once

// RawWorker: a worker process spoken to directly over two pipes, without the
// pool, the World or any thread but the caller's. It is the floor the real
// pool is measured against: posix_spawn, the init handshake, then one call
// frame written and one reply frame read per call, with the codec the pool
// itself uses.
//
//   auto worker = RawWorker::spawn({"/path/seedpool-echo-worker"}).value();
//   if (Status ready = worker->handshake(1); !ready) { ... }
//   Result<std::string> reply = worker->call(payload);
//   worker->stop();  // also done by the destructor
//
// Blocking I/O throughout: one call is in flight at a time, as the protocol
// has it. The worker's stderr goes to /dev/null, so that its log lines cost
// it what they cost under the pool (a write) without cluttering the report.

#include <seedpool/core/codec.hpp>
#include <seedpool/core/result.hpp>

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace seedpool::bench {

// Bytes asked of read() at a time, as the pool's I/O loop does.
inline constexpr std::size_t raw_read_bytes_max = std::size_t{64} * 1024;
// After stdin is closed, how long stop() waits for the worker to exit on its
// own before it sends SIGKILL.
inline constexpr int raw_exit_wait_ms_max = 2000;

class RawWorker {
 public:
  // Starts argv[0] (looked up in PATH when it has no '/') with argv[1..],
  // stdin and stdout on pipes, stderr on /dev/null. Fails with launch_failed
  // naming the program and errno.
  static Result<std::unique_ptr<RawWorker>> spawn(const std::vector<std::string>& argv);

  // stop().
  ~RawWorker();
  RawWorker(const RawWorker&) = delete;
  RawWorker& operator=(const RawWorker&) = delete;

  // Sends the init frame (request id 1, protocol kProtocolVersion). Split
  // from await_ready() so that several workers can be started side by side.
  Status send_init(std::uint64_t worker_id);
  // Waits for the answer to init: ok on ready, an error naming what came
  // instead (an error frame, another frame, end of stream).
  Status await_ready();
  // send_init() then await_ready().
  Status handshake(std::uint64_t worker_id);

  // Sends `payload` in a call frame and returns the reply's payload. Fails on
  // an error frame, a frame with another request id, or a broken stream.
  Result<std::string> call(const std::string& payload);

  // Closes stdin, which tells the worker to exit (docs/protocol.md), and
  // reaps it; SIGKILLs it after raw_exit_wait_ms_max. Idempotent.
  void stop();

  pid_t pid() const noexcept { return pid_; }

 private:
  RawWorker(pid_t pid, int stdin_fd, int stdout_fd) : pid_(pid), stdin_fd_(stdin_fd), stdout_fd_(stdout_fd) {}

  Status write_frame(const Frame& frame);
  Result<Frame> read_frame();

  pid_t pid_;
  int stdin_fd_;
  int stdout_fd_;
  std::uint64_t next_request_id_ = 2;  // 1 is the init frame's
  FrameDecoder decoder_;
  std::string out_;  // reused encoding buffer
  std::vector<char> in_ = std::vector<char>(raw_read_bytes_max);
};

}  // namespace seedpool::bench
