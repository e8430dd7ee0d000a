// The Process handle; see process_shared.hpp.

#include "io_loop.hpp"
#include "process_shared.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <poll.h>
#include <string_view>
#include <vector>

namespace seedpool::real::detail {
namespace {

// How long a caller reading stdout sleeps in poll() at a time.
constexpr std::int64_t helper_poll_slice_ms = 10;
// Bytes a caller reading stdout takes at once.
constexpr std::size_t helper_read_bytes = std::size_t{64} * 1024;

}  // namespace

RealProcess::~RealProcess() {
  shared_->abandoned.store(true, std::memory_order_release);
  loop_.request_service(shared_->key);
}

Status RealProcess::write_frame(Frame frame) {
  bool wake_loop = false;
  Status status = shared_->write_frame(frame, wake_loop);
  if (wake_loop) {
    loop_.request_service(shared_->key);
  }
  return status;
}

void RealProcess::signal(Signal signal) {
  switch (signal) {
    case Signal::terminate: shared_->signal(SIGTERM); return;
    case Signal::kill: shared_->signal(SIGKILL); return;
  }
}

void RealProcess::set_router(std::shared_ptr<FrameRouter> router) {
  SharedStdout& out = shared_->out;
  std::lock_guard<std::mutex> lock(out.mutex);
  // Once stdout is closed no frame can come, and a router kept here could
  // keep its owner (and so this handle) alive for good.
  out.router = out.fd.valid() ? std::move(router) : nullptr;
}

bool RealProcess::read_output(Instant deadline) {
  SharedStdout& out = shared_->out;
  int fd = -1;
  bool poll_before_read = true;
  // Read once here and once after each read: each read of the clock costs
  // as much as a tenth of the call's own work.
  Instant now = loop_.now();
  {
    std::lock_guard<std::mutex> lock(out.mutex);
    if (out.holder == StdoutHolder::caller || out.backlogged || !out.handed_off.empty() || out.ended ||
        !out.fd.valid() || out.router == nullptr || now >= deadline) {
      return false;
    }
    if (!out.router->expecting()) {
      return true;  // the loop read the frame first: nothing to wait for
    }
    SEEDPOOL_ASSERT(out.holder != StdoutHolder::closed);
    fd = out.fd.get();
    // Kept: left unwatched by the last call, nothing to hand over.
    if (out.holder != StdoutHolder::kept && out.armed) {
      loop_.set_stdout_interest(shared_->key, fd, false);
      out.armed = false;
    }
    out.hand_to(StdoutHolder::caller);
    poll_before_read = !out.early_replies.read_first();
  }
  bool routed_any = false;
  bool poll_failed = false;
  thread_local std::vector<char> buffer(helper_read_bytes);
  for (bool done = false; !done; now = loop_.now()) {
    if (now >= deadline) {
      break;
    }
    if (poll_before_read) {
      // In slices, so that a call answered another way (the pool failing the
      // worker) is noticed even if no output ever comes.
      const std::int64_t left_ms = ((deadline - now).ns() + 999'999) / 1'000'000;
      pollfd readable{fd, POLLIN, 0};
      const int ready = ::poll(&readable, 1, static_cast<int>(std::min(left_ms, helper_poll_slice_ms)));
      if (ready == 0) {
        break;
      }
      if (ready < 0) {
        if (errno == EINTR) {
          continue;
        }
        poll_failed = true;  // out of kernel memory, say: the caller waits the usual way
        break;
      }
    }
    std::lock_guard<std::mutex> lock(out.mutex);
    const ReadOutcome read = read_once(fd, buffer);
    if (!poll_before_read) {
      out.early_replies.note(read.bytes > 0 || read.eof);
      poll_before_read = true;
    }
    const std::size_t routed = out.decode_locked(std::string_view(buffer.data(), read.bytes), out.handed_off);
    out.ended = read.eof;
    routed_any = routed_any || routed > 0;
    done = routed > 0 || read.eof || !out.handed_off.empty();
  }
  bool service = false;
  {
    std::lock_guard<std::mutex> lock(out.mutex);
    SEEDPOOL_ASSERT(out.holder == StdoutHolder::caller);
    service = !out.handed_off.empty() || out.ended || out.loop_waits;
    out.loop_waits = false;
    const Duration linger = loop_.config().caller_read_linger;
    if (!service && routed_any && linger > Duration::zero()) {
      out.hand_to(StdoutHolder::kept);
      out.kept_since = loop_.clock_of(now);
      if (!out.loop_times_keeping) {
        out.loop_times_keeping = true;
        service = true;  // once: the loop then checks back until it takes stdout back
      }
    } else if (!service) {
      loop_.set_stdout_interest(shared_->key, fd, true);
      out.armed = true;
      out.hand_to(StdoutHolder::loop);
    } else {
      out.hand_to(StdoutHolder::handed_back);
    }
  }
  if (service) {
    loop_.request_service(shared_->key);  // the loop queues the rest, re-arms or closes
  }
  return !poll_failed;
}

}  // namespace seedpool::real::detail
