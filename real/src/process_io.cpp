// One process as the I/O loop sees it; see process_io.hpp.

#include "process_io.hpp"

#include <seedpool/core/assert.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <unistd.h>

namespace seedpool::real::detail {
namespace {

constexpr std::uint32_t read_events = EPOLLIN | EPOLLONESHOT;

struct ReadOutcome {
  std::size_t bytes = 0;
  bool eof = false;
};

// One read, retried on EINTR. A read error other than EAGAIN ends the
// stream as EOF would: nothing more can come from it.
ReadOutcome read_once(int fd, std::span<char> buffer) {
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n > 0) {
      return {static_cast<std::size_t>(n), false};
    }
    if (n == 0) {
      return {0, true};
    }
    if (errno == EAGAIN) {
      return {0, false};
    }
    if (errno != EINTR) {
      return {0, true};
    }
  }
}

Clock::duration to_clock(Duration d) { return std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(d.ns())); }

}  // namespace

ProcessIo::ProcessIo(std::shared_ptr<ProcessShared> shared, UniqueFd stdout_fd, UniqueFd stderr_fd,
                     UniqueFd exit_watch, const RealWorldConfig& config, std::size_t read_bytes_max)
    : shared_(std::move(shared)),
      config_(config),
      // Each read yields at most one event per byte, plus one corruption
      // report; finishing adds one final line, one report and Exited.
      pending_events_max_(2 * (read_bytes_max + 1) + 3),
      stdout_fd_(std::move(stdout_fd)),
      stderr_fd_(std::move(stderr_fd)),
      exit_watch_(std::move(exit_watch)),
      polling_exit_(!exit_watch_.valid()),
      stdout_frames_(config.frame_bytes_max),
      stderr_lines_(config.stderr_line_bytes_max) {
  SEEDPOOL_ASSERT(stdout_fd_.valid() && stderr_fd_.valid());
  SEEDPOOL_ASSERT(read_bytes_max >= 1);
}

ProcessIo::~ProcessIo() = default;

int ProcessIo::register_with(Epoll& epoll) {
  int error = epoll.add(stdout_fd_.get(), epoll_tag(key(), Stream::stdout_pipe), read_events);
  error = error != 0 ? error : epoll.add(stderr_fd_.get(), epoll_tag(key(), Stream::stderr_pipe), read_events);
  if (error == 0 && exit_watch_.valid()) {
    error = epoll.add(exit_watch_.get(), epoll_tag(key(), Stream::exit_watch), read_events);
  }
  if (error == 0) {
    // Armed for EPOLLERR only (always reported): the reader closed stdin.
    std::lock_guard<std::mutex> lock(shared_->mutex);
    error = epoll.add(shared_->stdin_fd.get(), epoll_tag(key(), Stream::stdin_pipe), EPOLLONESHOT);
  }
  if (error != 0) {
    epoll.remove(stdout_fd_.get());
    epoll.remove(stderr_fd_.get());
    if (exit_watch_.valid()) {
      epoll.remove(exit_watch_.get());
    }
    return error;
  }
  stdout_armed_ = true;
  stderr_armed_ = true;
  return 0;
}

void ProcessIo::on_event(Stream stream, std::uint32_t events, Epoll& epoll, std::span<char> buffer,
                         Clock::time_point now) {
  switch (stream) {
    case Stream::stdout_pipe:
      stdout_armed_ = false;
      if (stdout_fd_.valid()) {
        read_stdout(epoll, buffer);
      }
      return;
    case Stream::stderr_pipe:
      stderr_armed_ = false;
      if (stderr_fd_.valid()) {
        read_stderr(epoll, buffer);
      }
      return;
    case Stream::stdin_pipe: serve_stdin(epoll, events); return;
    case Stream::exit_watch:
      if (!exit_) {
        reap(epoll, now);
      }
      return;
  }
}

void ProcessIo::on_request(Epoll& epoll) { serve_stdin(epoll, 0); }

// Streams are armed only while pending_ is empty, so at most one read of
// each lands in pending_ before it is delivered again.
void ProcessIo::read_stdout(Epoll& epoll, std::span<char> buffer) {
  const ReadOutcome read = read_once(stdout_fd_.get(), buffer);
  const std::size_t before = pending_.size();
  stdout_frames_.feed(std::string_view(buffer.data(), read.bytes), pending_);
  route_frames(before);
  if (read.eof) {
    close_stdout(epoll);
  }
  SEEDPOOL_ASSERT(pending_.size() <= pending_events_max_);
}

// Offers the frames this read decoded (pending_ from `first` on) to the
// process's router, keeping the order of those it leaves.
void ProcessIo::route_frames(std::size_t first) {
  std::shared_ptr<FrameRouter> router;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    router = shared_->router;
  }
  if (router == nullptr) {
    return;
  }
  std::size_t kept = first;
  for (std::size_t i = first; i < pending_.size(); ++i) {
    auto* received = std::get_if<FrameReceived>(&pending_[i]);
    if (received != nullptr && router->route(received->frame)) {
      continue;
    }
    if (kept != i) {
      pending_[kept] = std::move(pending_[i]);
    }
    ++kept;
  }
  pending_.resize(kept);
}

void ProcessIo::read_stderr(Epoll& epoll, std::span<char> buffer) {
  const ReadOutcome read = read_once(stderr_fd_.get(), buffer);
  stderr_lines_.feed(std::string_view(buffer.data(), read.bytes), pending_);
  if (read.eof) {
    close_stderr(epoll);
  }
  SEEDPOOL_ASSERT(pending_.size() <= pending_events_max_);
}

void ProcessIo::close_stdout(Epoll& epoll) {
  epoll.remove(stdout_fd_.get());
  stdout_fd_.reset();
  stdout_armed_ = false;
  stdout_frames_.end(pending_);
  // No frame can follow; the router may refer back to the handle.
  std::lock_guard<std::mutex> lock(shared_->mutex);
  shared_->router.reset();
}

void ProcessIo::close_stderr(Epoll& epoll) {
  epoll.remove(stderr_fd_.get());
  stderr_fd_.reset();
  stderr_armed_ = false;
  stderr_lines_.end(pending_);
}

// Writes what stdin takes and re-arms it: for writability while bytes wait,
// else for EPOLLERR alone, which reports that the process closed its stdin.
void ProcessIo::serve_stdin(Epoll& epoll, std::uint32_t events) {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  if (!shared_->stdin_fd.valid()) {
    return;
  }
  if (shared_->stdin_closed_why) {
    close_stdin_fd_locked(epoll);
    return;
  }
  const bool idle = shared_->stdin_written == shared_->stdin_buffer.size();
  if (idle && (events & (EPOLLERR | EPOLLHUP)) != 0) {
    shared_->close_stdin_locked(
        "its stdin is closed (" + errno_text(EPIPE) + "); the process no longer reads");
    close_stdin_fd_locked(epoll);
    return;
  }
  const StdinFlush flush = idle ? StdinFlush::drained : shared_->flush_stdin_locked();
  const int fd = shared_->stdin_fd.get();
  const std::uint64_t tag = epoll_tag(key(), Stream::stdin_pipe);
  switch (flush) {
    case StdinFlush::drained: epoll.modify(fd, tag, EPOLLONESHOT); return;
    case StdinFlush::blocked: epoll.modify(fd, tag, EPOLLOUT | EPOLLONESHOT); return;
    case StdinFlush::broken: close_stdin_fd_locked(epoll); return;
  }
}

void ProcessIo::close_stdin_fd_locked(Epoll& epoll) {
  SEEDPOOL_ASSERT(shared_->stdin_closed_why.has_value());
  if (shared_->stdin_fd.valid()) {
    epoll.remove(shared_->stdin_fd.get());
    shared_->stdin_fd.reset();
  }
}

// Reaps the process if it has exited. A pidfd that reports an exit waitid
// cannot see yet should not happen; polling then covers it rather than a
// readable pidfd spinning the loop.
void ProcessIo::reap(Epoll& epoll, Clock::time_point now) {
  SEEDPOOL_ASSERT(!exit_.has_value());
  exit_ = shared_->try_reap(config_.kill_group_on_exit, false);
  if (!exit_) {
    if (!polling_exit_) {
      close_exit_watch(epoll);
      polling_exit_ = true;
    }
    next_poll_ = now + reaper_poll_interval;
    return;
  }
  close_exit_watch(epoll);
  drain_deadline_ = now + to_clock(config_.drain_after_exit_max);
  std::lock_guard<std::mutex> lock(shared_->mutex);
  close_stdin_fd_locked(epoll);
}

void ProcessIo::close_exit_watch(Epoll& epoll) {
  if (exit_watch_.valid()) {
    epoll.remove(exit_watch_.get());
    exit_watch_.reset();
  }
}

void ProcessIo::deliver_pending(Clock::time_point now) {
  if (shared_->abandoned.load(std::memory_order_acquire)) {
    pending_.clear();  // nobody will read them; never hold the child up
  }
  while (!pending_.empty()) {
    const ChannelStatus status = shared_->events.try_send(std::move(pending_.front()));
    if (status == ChannelStatus::full) {
      retry_at_ = now + pending_retry_interval;
      if (exit_) {
        // Time spent waiting for the consumer does not count against the
        // drain bound: only a descendant holding the pipes should hit it.
        drain_deadline_ = std::max(drain_deadline_, now + to_clock(config_.drain_after_exit_max));
      }
      return;
    }
    // ok, or closed: the consumer closed the channel and wants nothing more.
    pending_.pop_front();
  }
  retry_at_ = Clock::time_point::max();
}

void ProcessIo::rearm_streams(Epoll& epoll) {
  SEEDPOOL_ASSERT(pending_.empty());
  if (stdout_fd_.valid() && !stdout_armed_) {
    epoll.modify(stdout_fd_.get(), epoll_tag(key(), Stream::stdout_pipe), read_events);
    stdout_armed_ = true;
  }
  if (stderr_fd_.valid() && !stderr_armed_) {
    epoll.modify(stderr_fd_.get(), epoll_tag(key(), Stream::stderr_pipe), read_events);
    stderr_armed_ = true;
  }
}

bool ProcessIo::advance(Epoll& epoll, std::span<char> buffer, Clock::time_point now) {
  deliver_pending(now);
  if (!pending_.empty()) {
    return false;
  }
  if (finished_) {
    shared_->events.close();
    return true;
  }
  if (!exit_ && polling_exit_ && now >= next_poll_) {
    reap(epoll, now);
  }
  if (exit_ && (!streams_open() || now >= drain_deadline_)) {
    finish(epoll, buffer);
    deliver_pending(now);
    if (pending_.empty()) {
      shared_->events.close();
      return true;
    }
    return false;
  }
  rearm_streams(epoll);
  return false;
}

// Takes one last read of each stream still open (held by a descendant after
// drain_after_exit_max), closes them, and queues Exited last.
void ProcessIo::finish(Epoll& epoll, std::span<char> buffer) {
  SEEDPOOL_ASSERT(exit_.has_value() && !finished_);
  if (stdout_fd_.valid()) {
    read_stdout(epoll, buffer);
  }
  if (stdout_fd_.valid()) {
    close_stdout(epoll);
  }
  if (stderr_fd_.valid()) {
    read_stderr(epoll, buffer);
  }
  if (stderr_fd_.valid()) {
    close_stderr(epoll);
  }
  pending_.emplace_back(Exited{*exit_});
  finished_ = true;
  SEEDPOOL_ASSERT(pending_.size() <= pending_events_max_);
}

Clock::time_point ProcessIo::deadline() const noexcept {
  if (!pending_.empty()) {
    return retry_at_;
  }
  if (exit_) {
    return drain_deadline_;
  }
  return polling_exit_ ? next_poll_ : Clock::time_point::max();
}

void ProcessIo::shut_down(Epoll& epoll) {
  if (!exit_) {
    shared_->signal(SIGKILL);
    exit_ = shared_->try_reap(false, true);
    SEEDPOOL_ASSERT(exit_.has_value());
  }
  close_exit_watch(epoll);
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->close_stdin_locked("the RealWorld was destroyed");
    close_stdin_fd_locked(epoll);
  }
  if (stdout_fd_.valid()) {
    close_stdout(epoll);
  }
  if (stderr_fd_.valid()) {
    close_stderr(epoll);
  }
  if (!finished_) {
    pending_.emplace_back(Exited{*exit_});
    finished_ = true;
  }
  deliver_pending(Clock::now());
  pending_.clear();
  shared_->events.close();
}

}  // namespace seedpool::real::detail
