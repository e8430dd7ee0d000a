// A worker over raw pipes; see raw_worker.hpp.

#include "raw_worker.hpp"

#include "piped_child.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <unistd.h>

namespace seedpool::bench {
namespace {

constexpr std::uint64_t init_request_id = 1;

Error stream_error(pid_t pid, std::string_view what) {
  return Error{ErrorCode::io_error, fmt::format("raw worker (pid {}): {}", pid, what), {}};
}

}  // namespace

Result<std::unique_ptr<RawWorker>> RawWorker::spawn(const std::vector<std::string>& argv) {
  Result<PipedChild> child = spawn_piped(argv);
  if (!child) {
    return child.error();
  }
  const PipedChild& c = child.value();
  return std::unique_ptr<RawWorker>(new RawWorker(c.pid, c.stdin_fd, c.stdout_fd));
}

RawWorker::~RawWorker() { stop(); }

void RawWorker::stop() {
  if (pid_ < 0) {
    return;
  }
  ::close(stdin_fd_);
  (void)wait_or_kill(pid_, raw_exit_wait_ms_max);
  ::close(stdout_fd_);
  pid_ = -1;
}

Status RawWorker::send_init(std::uint64_t worker_id) {
  return write_frame(Frame{FrameKind::init, init_request_id, encode_init_payload(kProtocolVersion, worker_id)});
}

Status RawWorker::await_ready() {
  Result<Frame> answer = read_frame();
  if (!answer) {
    return answer.error();
  }
  const Frame& frame = answer.value();
  if (frame.kind != FrameKind::ready || frame.request_id != init_request_id) {
    return stream_error(pid_, fmt::format("answered init with a {} frame (request id {}): {}", to_string(frame.kind),
                                          frame.request_id, frame.payload));
  }
  return {};
}

Status RawWorker::handshake(std::uint64_t worker_id) {
  if (Status sent = send_init(worker_id); !sent) {
    return sent;
  }
  return await_ready();
}

Result<std::string> RawWorker::call(const std::string& payload) {
  const std::uint64_t id = next_request_id_++;
  if (Status sent = write_frame(Frame{FrameKind::call, id, payload}); !sent) {
    return sent.error();
  }
  Result<Frame> answer = read_frame();
  if (!answer) {
    return answer.error();
  }
  Frame& frame = answer.value();
  if (frame.kind != FrameKind::reply || frame.request_id != id) {
    return stream_error(pid_, fmt::format("answered call {} with a {} frame (request id {}): {}", id,
                                          to_string(frame.kind), frame.request_id, frame.payload));
  }
  return std::move(frame.payload);
}

Status RawWorker::write_frame(const Frame& frame) {
  SEEDPOOL_ASSERT(pid_ > 0);
  out_.clear();
  append_frame(out_, frame);
  std::string_view left = out_;
  while (!left.empty()) {
    const ssize_t n = ::write(stdin_fd_, left.data(), left.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return stream_error(pid_, fmt::format("writing stdin failed: {}", std::strerror(errno)));
    }
    left.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<Frame> RawWorker::read_frame() {
  SEEDPOOL_ASSERT(pid_ > 0);
  for (;;) {
    DecodeResult decoded = decoder_.next();
    if (decoded.status() == DecodeStatus::frame) {
      return std::move(decoded).frame();
    }
    if (decoded.status() == DecodeStatus::error) {
      return stream_error(pid_, decoded.error().describe());
    }
    const ssize_t n = ::read(stdout_fd_, in_.data(), in_.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return stream_error(pid_, n == 0 ? "stdout ended" : fmt::format("reading stdout failed: {}", std::strerror(errno)));
    }
    decoder_.feed(std::string_view(in_.data(), static_cast<std::size_t>(n)));
  }
}

}  // namespace seedpool::bench
