#pragma once

// One process as the I/O loop sees it: its stdout and stderr being read, its
// stdin being written, its exit being watched, and the events on their way to
// the Process handle's channel. Only the loop thread touches a ProcessIo
// (registration happens on the launching thread before the loop knows it).
//
// The life of the events, which is what the Process contract promises:
//   - bytes become events in a per-process pending queue, which is moved into
//     the bounded events channel with try_send; the loop never blocks on it;
//   - a stream is read only while pending is empty, so pending holds at most
//     what two reads produce (pending_events_max); while it waits for room,
//     neither stream is armed and the child blocks on its own full pipe;
//   - the exit is noticed through the pidfd (or a poll), the child reaped at
//     once, and Exited queued only after stdout and stderr reached EOF, or
//     drain_after_exit_max after the exit if a descendant holds them open;
//   - a stdin the process closes while it runs on (the loop learns it from
//     EPOLLERR, or from a write of its own failing) becomes one OutputCorrupt
//     unless the process exits within exit_after_stdin_closed_max;
//   - the channel is closed right after Exited is delivered.

#include "epoll.hpp"
#include "output_streams.hpp"
#include "process_shared.hpp"

#include <seedpool/real/real_world.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>

namespace seedpool::real::detail {

using Clock = std::chrono::steady_clock;

// How soon the loop retries delivering events a full channel refused.
inline constexpr std::chrono::milliseconds pending_retry_interval{1};
// How often waitid is polled for a process without a pidfd.
inline constexpr std::chrono::milliseconds reaper_poll_interval{5};

class ProcessIo {
 public:
  // `exit_watch` is the child's pidfd, or invalid to poll for its exit.
  ProcessIo(std::shared_ptr<ProcessShared> shared, UniqueFd stderr_fd, UniqueFd exit_watch,
            const RealWorldConfig& config, std::size_t read_bytes_max);
  ~ProcessIo();
  ProcessIo(const ProcessIo&) = delete;
  ProcessIo& operator=(const ProcessIo&) = delete;

  // Registers every descriptor with `epoll`, armed. Returns 0, or an errno
  // value after undoing what it registered.
  int register_with(Epoll& epoll);

  // Handles an epoll event for one of its descriptors. `buffer` is scratch
  // space for one read.
  void on_event(Stream stream, std::uint32_t events, Epoll& epoll, std::span<char> buffer, Clock::time_point now);

  // A writer queued bytes that did not fit the pipe, stdin broke, or the
  // handle was dropped: serve stdin and re-check everything.
  void on_request(Epoll& epoll);

  // Moves pending events into the channel, re-arms the streams, polls the
  // exit, and finishes (Exited, then close) when due. Returns true once the
  // channel is closed and the loop may drop this process.
  bool advance(Epoll& epoll, std::span<char> buffer, Clock::time_point now);

  // When advance() must run next without an epoll event; Clock::time_point::max()
  // when only events matter.
  Clock::time_point deadline() const noexcept;

  // At the loop's end: kills the group if the process was not reaped, reaps
  // it (blocking), closes every descriptor, delivers what the channel still
  // takes, Exited last, and closes the channel.
  void shut_down(Epoll& epoll);

  std::uint64_t key() const noexcept { return shared_->key; }
  ProcessShared& shared() noexcept { return *shared_; }

 private:
  void read_stdout(Epoll& epoll, std::span<char> buffer);
  void take_handed_off_locked(Epoll& epoll);
  void take_back_kept_locked(Clock::time_point now);
  void close_stdout_locked(Epoll& epoll);
  bool stdout_open();
  void read_stderr(Epoll& epoll, std::span<char> buffer);
  void close_stderr(Epoll& epoll);
  void serve_stdin(Epoll& epoll, std::uint32_t events);
  void close_stdin_fd_locked(Epoll& epoll);
  void report_closed_stdin(Epoll& epoll, Clock::time_point now);
  void reap(Epoll& epoll, Clock::time_point now);
  bool reap_if_exited(Epoll& epoll, Clock::time_point now);
  void close_exit_watch(Epoll& epoll);
  void deliver_pending(Clock::time_point now);
  void rearm_streams(Epoll& epoll);
  void finish(Epoll& epoll, std::span<char> buffer);
  bool streams_open() { return stdout_open() || stderr_fd_.valid(); }

  const std::shared_ptr<ProcessShared> shared_;
  const RealWorldConfig& config_;
  const std::size_t pending_events_max_;
  UniqueFd stderr_fd_;  // stdout is in shared_->out, which a helping caller reads too
  UniqueFd exit_watch_;
  bool stderr_armed_ = false;
  bool polling_exit_ = false;  // no pidfd: waitid is polled
  StderrLines stderr_lines_;
  std::deque<ProcessEvent> pending_;
  std::optional<ExitStatus> exit_;  // set once reaped
  bool finished_ = false;           // Exited is queued
  Clock::time_point drain_deadline_ = Clock::time_point::max();
  Clock::time_point next_poll_ = Clock::time_point::min();
  Clock::time_point retry_at_ = Clock::time_point::max();
  // When the loop found stdin closed by the process; max() while it has not,
  // and again once that is reported or the process exited.
  Clock::time_point stdin_closed_at_ = Clock::time_point::max();
};

}  // namespace seedpool::real::detail
