#pragma once

// What a process's handle (used by pool threads) and the I/O loop share: the
// events channel, stdin with its output buffer, and the reaped flag that makes
// signals safe. Everything the loop alone touches lives in ProcessIo.

#include "fd.hpp"
#include "output_streams.hpp"
#include "stdout_handoff.hpp"

#include <seedpool/core/assert.hpp>
#include <seedpool/core/channel.hpp>
#include <seedpool/core/process.hpp>
#include <seedpool/core/world.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace seedpool::real::detail {

class IoLoop;

// How far a stdin flush got.
enum class StdinFlush {
  drained,  // every queued byte is written
  blocked,  // the pipe is full; the rest waits for writability
  broken,   // the process closed its stdin; nothing more can be written
};

struct ReadOutcome {
  std::size_t bytes = 0;
  bool eof = false;
};

// One read of non-blocking `fd`, retried on EINTR. A read error other than
// EAGAIN ends the stream as EOF would: nothing more can come from it.
ReadOutcome read_once(int fd, std::span<char> buffer);

// Whether a helper waiting for a reply reads stdout before it polls it.
// Where the worker shares the caller's CPU it has often answered by the time
// the call's write returns, and then a poll is one more system call; whether
// it has depends on the scheduler and on what the caller does between calls,
// so it is learnt per process: a two-bit counter of first reads that found
// output. Below 2 the helper polls first, and reads first every 8th call to
// look again.
class EarlyReplies {
 public:
  static constexpr int look_every = 8;

  // As a helper begins its read.
  bool read_first() {
    if (score_ >= 2 || ++polled_first_ >= look_every) {
      polled_first_ = 0;
      return true;
    }
    return false;
  }
  // What a first read found.
  void note(bool found) { score_ = found ? std::min(score_ + 1, 3) : std::max(score_ - 1, 0); }

 private:
  int score_ = 3;
  int polled_first_ = 0;  // calls polled first since the last look
};

// A process's stdout. The I/O loop reads it, except while a caller waiting
// for a reply reads it on its own thread (Process::read_output), which saves
// waking the loop and then the caller. `mutex` orders the two: whoever reads
// decodes with the one decoder and offers frames to the router first; the
// frames it leaves, and the corruption and end reports, reach events() in
// stream order through the loop. Who holds it is `holder`; its states and
// moves are in stdout_handoff.hpp.
struct SharedStdout {
  SharedStdout(UniqueFd fd_in, std::size_t frame_bytes_max) : fd(std::move(fd_in)), frames(frame_bytes_max) {}

  // With `mutex` held: decodes `bytes`, offers each frame to the router, and
  // appends what it leaves (and a corruption report) to `events`. Returns
  // how many frames the router took.
  std::size_t decode_locked(std::string_view bytes, std::deque<ProcessEvent>& events);

  // With `mutex` held: passes stdout to `to`, which must be a legal move
  // from the current holder (stdout_move_legal).
  void hand_to(StdoutHolder to) {
    SEEDPOOL_ASSERT(holder != to);
    SEEDPOOL_ASSERT_MSG(stdout_move_legal(holder, to), "illegal stdout hand-off move");
    holder = to;
  }

  std::mutex mutex;  // guards every member
  UniqueFd fd;       // closed only by the loop, and never while a helper reads it
  StdoutFrames frames;
  std::shared_ptr<FrameRouter> router;  // offered each decoded frame first
  StdoutHolder holder = StdoutHolder::loop;  // changed only through hand_to
  bool armed = false;   // the loop's epoll interest in `fd` is armed (oneshot)
  bool ended = false;   // a helper read the end of the stream; the loop closes `fd`
  bool backlogged = false;  // the loop has events waiting for room: no helper may read
  bool loop_waits = false;  // the loop served the process during a helper's read: ask for service after it
  std::chrono::steady_clock::time_point kept_since;  // when `holder` last became kept
  bool loop_times_keeping = false;  // the loop checks back on `kept`
  EarlyReplies early_replies;  // whether a helper reads before it polls
  // What a helper decoded and the router left, for the loop to queue next;
  // at most one read's worth (a helper does not read while it is not empty).
  std::deque<ProcessEvent> handed_off;
};

class ProcessShared {
 public:
  ProcessShared(World& world, std::uint64_t key, pid_t pid, std::string name, UniqueFd stdin_fd, UniqueFd stdout_fd,
                std::size_t stdin_bytes_max, std::size_t frame_bytes_max, std::size_t events_max);

  const std::uint64_t key;  // the I/O loop's name for this process; never reused
  const pid_t pid;          // also the process group id
  const std::string name;   // "worker-3" or the program, for messages
  Channel<ProcessEvent> events;
  SharedStdout out;
  // Set when the Process handle is destroyed: nobody will read the events,
  // so the loop discards them instead of holding the child up.
  std::atomic<bool> abandoned{false};

  // Any thread. Queues `frame` for stdin and writes what the pipe takes now.
  // Sets `wake_loop` when the loop must act: bytes are left for it to write,
  // or stdin broke and its descriptor must be closed. Fails with closed once
  // the process has exited or closed stdin, or when stdin_bytes_max would be
  // exceeded.
  Status write_frame(const Frame& frame, bool& wake_loop);

  // Any thread. Sends `signo` to the process group, falling back to the
  // process itself if it left its group. A no-op once the process is reaped,
  // so a reused pid is never signalled.
  void signal(int signo);

  // The loop, with `mutex` held. Writes queued bytes until done or EAGAIN.
  StdinFlush flush_stdin_locked();
  // The loop, with `mutex` held. Refuses later writes with `reason`.
  void close_stdin_locked(std::string reason);

  // The loop. Reaps the process if it has exited: first SIGKILLs the rest of
  // its group when `kill_group` (the zombie keeps the group id reserved),
  // then collects the status. Returns nullopt while it runs. With `block`,
  // waits for the exit instead (only after a SIGKILL, at shutdown).
  std::optional<ExitStatus> try_reap(bool kill_group, bool block);

  std::mutex mutex;  // guards the members below
  UniqueFd stdin_fd;  // closed only by the loop, after removing it from epoll
  std::string stdin_buffer;
  std::size_t stdin_written = 0;                 // bytes of stdin_buffer already written
  std::optional<std::string> stdin_closed_why;  // set: writes fail with this reason
  bool reaped = false;

 private:
  Error write_refused(const Frame& frame, const std::string& why) const;

  const std::size_t stdin_bytes_max_;
};

// The Process handle the pool holds. Destroying it does not stop the child:
// the child runs until it exits or is killed, and the loop still reaps it.
class RealProcess final : public Process {
 public:
  RealProcess(std::shared_ptr<ProcessShared> shared, IoLoop& loop) : shared_(std::move(shared)), loop_(loop) {}
  ~RealProcess() override;
  RealProcess(const RealProcess&) = delete;
  RealProcess& operator=(const RealProcess&) = delete;

  std::int64_t pid() const override { return shared_->pid; }
  Status write_frame(Frame frame) override;
  Channel<ProcessEvent>& events() override { return shared_->events; }
  void signal(Signal signal) override;
  void set_router(std::shared_ptr<FrameRouter> router) override;
  // Reads stdout on the calling thread; see SharedStdout.
  bool read_output(Instant deadline) override;

 private:
  std::shared_ptr<ProcessShared> shared_;
  IoLoop& loop_;
};

}  // namespace seedpool::real::detail
