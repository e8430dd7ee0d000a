// One process as the I/O loop sees it; see process_io.hpp.

#include "process_io.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <unistd.h>

namespace seedpool::real::detail {
namespace {

constexpr std::uint32_t read_events = EPOLLIN | EPOLLONESHOT;

Clock::duration to_clock(Duration d) { return std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(d.ns())); }

}  // namespace

ProcessIo::ProcessIo(std::shared_ptr<ProcessShared> shared, UniqueFd stderr_fd, UniqueFd exit_watch,
                     const RealWorldConfig& config, std::size_t read_bytes_max)
    : shared_(std::move(shared)),
      config_(config),
      // Each read yields at most one event per byte, plus one corruption
      // report: one read of each stream and one handed off by a helping
      // caller; finishing adds one final line, one report and Exited.
      pending_events_max_(3 * (read_bytes_max + 1) + 3),
      stderr_fd_(std::move(stderr_fd)),
      exit_watch_(std::move(exit_watch)),
      polling_exit_(!exit_watch_.valid()),
      stderr_lines_(config.stderr_line_bytes_max) {
  SEEDPOOL_ASSERT(stderr_fd_.valid());
  SEEDPOOL_ASSERT(read_bytes_max >= 1);
}

ProcessIo::~ProcessIo() = default;

int ProcessIo::register_with(Epoll& epoll) {
  SharedStdout& out = shared_->out;
  int error = 0;
  {
    std::lock_guard<std::mutex> lock(out.mutex);
    error = epoll.add(out.fd.get(), epoll_tag(key(), Stream::stdout_pipe), read_events);
    out.armed = error == 0;
  }
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
    {
      std::lock_guard<std::mutex> lock(out.mutex);
      epoll.remove(out.fd.get());
      out.armed = false;
    }
    epoll.remove(stderr_fd_.get());
    if (exit_watch_.valid()) {
      epoll.remove(exit_watch_.get());
    }
    return error;
  }
  stderr_armed_ = true;
  return 0;
}

void ProcessIo::on_event(Stream stream, std::uint32_t events, Epoll& epoll, std::span<char> buffer,
                         Clock::time_point now) {
  switch (stream) {
    case Stream::stdout_pipe: {
      {
        std::lock_guard<std::mutex> lock(shared_->out.mutex);
        shared_->out.armed = false;  // the oneshot fired
      }
      read_stdout(epoll, buffer);
      return;
    }
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
// each lands in pending_ before it is delivered again. Not while a caller
// helps: it reads stdout itself.
void ProcessIo::read_stdout(Epoll& epoll, std::span<char> buffer) {
  SharedStdout& out = shared_->out;
  std::lock_guard<std::mutex> lock(out.mutex);
  take_handed_off_locked(epoll);
  if (!out.fd.valid() || out.holder == StdoutHolder::caller) {
    return;
  }
  if (out.holder == StdoutHolder::kept) {
    out.hand_to(StdoutHolder::loop);  // whatever the callers left unread, the loop reads now
  }
  const ReadOutcome read = read_once(out.fd.get(), buffer);
  (void)out.decode_locked(std::string_view(buffer.data(), read.bytes), pending_);
  if (read.eof) {
    close_stdout_locked(epoll);
  }
  SEEDPOOL_ASSERT(pending_.size() <= pending_events_max_);
}

// Queues what a helping caller read and the router left, after what the loop
// read before, and takes stdout back from a caller that handed it back;
// closes stdout when the helper saw its end.
void ProcessIo::take_handed_off_locked(Epoll& epoll) {
  SharedStdout& out = shared_->out;
  for (ProcessEvent& event : out.handed_off) {
    pending_.push_back(std::move(event));
  }
  out.handed_off.clear();
  if (out.holder == StdoutHolder::handed_back) {
    out.hand_to(StdoutHolder::loop);
  }
  if (out.ended && out.fd.valid() && out.holder != StdoutHolder::caller) {
    close_stdout_locked(epoll);
  }
  SEEDPOOL_ASSERT(pending_.size() <= pending_events_max_);
}

void ProcessIo::close_stdout_locked(Epoll& epoll) {
  SharedStdout& out = shared_->out;
  SEEDPOOL_ASSERT(out.holder != StdoutHolder::caller);
  SEEDPOOL_ASSERT(out.fd.valid());
  if (out.holder != StdoutHolder::loop) {
    out.hand_to(StdoutHolder::loop);  // kept, or handed back: the loop takes it to close it
  }
  out.hand_to(StdoutHolder::closed);
  epoll.remove(out.fd.get());
  out.fd.reset();
  out.armed = false;
  out.loop_times_keeping = false;
  out.frames.end(pending_);
  // No frame can follow; the router may refer back to the handle.
  out.router.reset();
}

// Takes stdout back from the callers once it has been kept for the linger
// time without a call, or at once after the exit; stops checking back once
// neither callers nor a helper have it.
void ProcessIo::take_back_kept_locked(Clock::time_point now) {
  SharedStdout& out = shared_->out;
  if (out.holder == StdoutHolder::kept && (exit_ || now - out.kept_since >= to_clock(config_.caller_read_linger))) {
    out.hand_to(StdoutHolder::loop);
  }
  if (out.holder != StdoutHolder::kept && out.holder != StdoutHolder::caller) {
    out.loop_times_keeping = false;
  }
}

bool ProcessIo::stdout_open() {
  std::lock_guard<std::mutex> lock(shared_->out.mutex);
  return shared_->out.fd.valid();
}

void ProcessIo::read_stderr(Epoll& epoll, std::span<char> buffer) {
  const ReadOutcome read = read_once(stderr_fd_.get(), buffer);
  stderr_lines_.feed(std::string_view(buffer.data(), read.bytes), pending_);
  if (read.eof) {
    close_stderr(epoll);
  }
  SEEDPOOL_ASSERT(pending_.size() <= pending_events_max_);
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
    stdin_closed_at_ = Clock::now();
    return;
  }
  const StdinFlush flush = idle ? StdinFlush::drained : shared_->flush_stdin_locked();
  const int fd = shared_->stdin_fd.get();
  const std::uint64_t tag = epoll_tag(key(), Stream::stdin_pipe);
  switch (flush) {
    case StdinFlush::drained: epoll.modify(fd, tag, EPOLLONESHOT); return;
    case StdinFlush::blocked: epoll.modify(fd, tag, EPOLLOUT | EPOLLONESHOT); return;
    case StdinFlush::broken:
      // Bytes a writer queued were refused: its write had returned ok.
      close_stdin_fd_locked(epoll);
      stdin_closed_at_ = Clock::now();
      return;
  }
}

void ProcessIo::close_stdin_fd_locked(Epoll& epoll) {
  SEEDPOOL_ASSERT(shared_->stdin_closed_why.has_value());
  if (shared_->stdin_fd.valid()) {
    epoll.remove(shared_->stdin_fd.get());
    shared_->stdin_fd.reset();
  }
}

// Once the process has closed its stdin for exit_after_stdin_closed_max and
// still runs, queues the OutputCorrupt that says so; only with pending_
// empty, which keeps it within pending_events_max_. Only what the loop found
// is reported: a write refused on a caller's thread already told its caller.
void ProcessIo::report_closed_stdin(Epoll& epoll, Clock::time_point now) {
  if (stdin_closed_at_ == Clock::time_point::max() || exit_ || !pending_.empty() ||
      now < stdin_closed_at_ + to_clock(config_.exit_after_stdin_closed_max)) {
    return;
  }
  stdin_closed_at_ = Clock::time_point::max();
  if (reap_if_exited(epoll, now)) {
    return;  // an exit, with the pidfd's report still on its way
  }
  pending_.emplace_back(OutputCorrupt{Error{
      ErrorCode::protocol_error,
      fmt::format("it closed its stdin while running (and did not exit within {} ms): a frame written to it "
                  "may be lost unread, and it can take no more frames, not even shutdown",
                  config_.exit_after_stdin_closed_max.ns() / 1'000'000),
      {}}});
}

// Reaps the process if it has exited. A pidfd that reports an exit waitid
// cannot see yet should not happen; polling then covers it rather than a
// readable pidfd spinning the loop.
void ProcessIo::reap(Epoll& epoll, Clock::time_point now) {
  if (reap_if_exited(epoll, now)) {
    return;
  }
  if (!polling_exit_) {
    close_exit_watch(epoll);
    polling_exit_ = true;
  }
  next_poll_ = now + reaper_poll_interval;
}

// Returns whether the process had exited and is now reaped.
bool ProcessIo::reap_if_exited(Epoll& epoll, Clock::time_point now) {
  SEEDPOOL_ASSERT(!exit_.has_value());
  exit_ = shared_->try_reap(config_.kill_group_on_exit, false);
  if (!exit_) {
    return false;
  }
  close_exit_watch(epoll);
  drain_deadline_ = now + to_clock(config_.drain_after_exit_max);
  stdin_closed_at_ = Clock::time_point::max();
  std::lock_guard<std::mutex> lock(shared_->mutex);
  close_stdin_fd_locked(epoll);
  return true;
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
  {
    SharedStdout& out = shared_->out;
    std::lock_guard<std::mutex> lock(out.mutex);
    // Armed also while handed back: the loop's next read takes the hand-off
    // first, so nothing it reads can overtake what the caller left.
    const bool loop_reads = out.holder == StdoutHolder::loop || out.holder == StdoutHolder::handed_back;
    if (out.fd.valid() && !out.armed && loop_reads && !out.ended) {
      epoll.modify(out.fd.get(), epoll_tag(key(), Stream::stdout_pipe), read_events);
      out.armed = true;
    }
  }
  if (stderr_fd_.valid() && !stderr_armed_) {
    epoll.modify(stderr_fd_.get(), epoll_tag(key(), Stream::stderr_pipe), read_events);
    stderr_armed_ = true;
  }
}

bool ProcessIo::advance(Epoll& epoll, std::span<char> buffer, Clock::time_point now) {
  SharedStdout& out = shared_->out;
  {
    std::lock_guard<std::mutex> lock(out.mutex);
    take_handed_off_locked(epoll);
    take_back_kept_locked(now);
    // Whatever brought the loop here (an exit, a hang-up it could not read
    // because a caller holds stdout, a timer) may need stdout once the caller
    // is done: it asks for service then. Otherwise an exit seen while a caller
    // read could wait for good, its stdout's hang-up spent and no timer set.
    if (out.holder == StdoutHolder::caller) {
      out.loop_waits = true;
    }
  }
  report_closed_stdin(epoll, now);
  deliver_pending(now);
  {
    std::lock_guard<std::mutex> lock(out.mutex);
    out.backlogged = !pending_.empty();
  }
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
    {
      std::lock_guard<std::mutex> lock(out.mutex);
      if (out.holder == StdoutHolder::caller) {
        return false;  // loop_waits is set: the helper asks for service when done
      }
    }
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
  read_stdout(epoll, buffer);
  {
    std::lock_guard<std::mutex> lock(shared_->out.mutex);
    if (shared_->out.fd.valid()) {
      close_stdout_locked(epoll);
    }
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
  const SharedStdout& out = shared_->out;
  std::lock_guard<std::mutex> lock(shared_->out.mutex);
  if (exit_) {
    // While a helper holds stdout, it asks for service when done (loop_waits).
    return out.holder == StdoutHolder::caller ? Clock::time_point::max() : drain_deadline_;
  }
  Clock::time_point at = polling_exit_ ? next_poll_ : Clock::time_point::max();
  if (stdin_closed_at_ != Clock::time_point::max()) {
    at = std::min(at, stdin_closed_at_ + to_clock(config_.exit_after_stdin_closed_max));
  }
  if (out.loop_times_keeping) {
    // Check back when the keeping would end; while a helper reads, one
    // linger time from now.
    const Clock::time_point from = out.holder == StdoutHolder::kept ? out.kept_since : Clock::now();
    at = std::min(at, from + to_clock(config_.caller_read_linger));
  }
  return at;
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
  {
    // The World is being destroyed: no task may still wait on a call.
    std::lock_guard<std::mutex> lock(shared_->out.mutex);
    if (shared_->out.holder == StdoutHolder::caller) {
      shared_->out.hand_to(StdoutHolder::loop);
    }
    take_handed_off_locked(epoll);
    if (shared_->out.fd.valid()) {
      close_stdout_locked(epoll);
    }
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
