// The state a process's handle and the I/O loop share; see process_shared.hpp.

#include "process_shared.hpp"

#include <seedpool/core/codec.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

namespace seedpool::real::detail {
namespace {

// Reported when the exit status was taken by someone else's waitpid.
constexpr int exit_code_unknown = -1;

ExitStatus status_of(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) {
    return ExitStatus{false, info.si_status, 0};
  }
  return ExitStatus{true, 0, info.si_status};  // CLD_KILLED or CLD_DUMPED
}

// waitid for `pid`, retried on EINTR. Returns 0 or an errno value; info.si_pid
// stays 0 when WNOHANG found the process still running.
int wait_for(pid_t pid, siginfo_t& info, int options) {
  for (;;) {
    info = siginfo_t{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, options) == 0) {
      return 0;
    }
    if (errno != EINTR) {
      return errno;
    }
  }
}

}  // namespace

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

std::size_t SharedStdout::decode_locked(std::string_view bytes, std::deque<ProcessEvent>& events) {
  const std::size_t first = events.size();
  frames.feed(bytes, events);
  if (router == nullptr) {
    return 0;
  }
  std::size_t left = first;
  for (std::size_t i = first; i < events.size(); ++i) {
    auto* received = std::get_if<FrameReceived>(&events[i]);
    if (received != nullptr && router->route(received->frame)) {
      continue;
    }
    if (left != i) {
      events[left] = std::move(events[i]);
    }
    ++left;
  }
  const std::size_t taken = events.size() - left;
  events.resize(left);
  return taken;
}

ProcessShared::ProcessShared(World& world, std::uint64_t key_in, pid_t pid_in, std::string name_in,
                             UniqueFd stdin_fd_in, UniqueFd stdout_fd, std::size_t stdin_bytes_max,
                             std::size_t frame_bytes_max, std::size_t events_max)
    : key(key_in),
      pid(pid_in),
      name(std::move(name_in)),
      events(world, fmt::format("{} events", name), events_max),
      out(std::move(stdout_fd), frame_bytes_max),
      stdin_fd(std::move(stdin_fd_in)),
      stdin_bytes_max_(stdin_bytes_max) {
  SEEDPOOL_ASSERT(pid > 0);
  SEEDPOOL_ASSERT(stdin_fd.valid() && out.fd.valid());
}

Error ProcessShared::write_refused(const Frame& frame, const std::string& why) const {
  return Error{ErrorCode::closed,
               fmt::format("cannot write {} frame to process '{}' (pid {}): {}", with_article(frame.kind), name, pid,
                           why),
               {}};
}

Status ProcessShared::write_frame(const Frame& frame, bool& wake_loop) {
  std::lock_guard<std::mutex> lock(mutex);
  if (stdin_closed_why) {
    return write_refused(frame, *stdin_closed_why);
  }
  const std::size_t unwritten = stdin_buffer.size() - stdin_written;
  if (encoded_frame_bytes(frame) > stdin_bytes_max_ - std::min(unwritten, stdin_bytes_max_)) {
    return write_refused(frame, fmt::format("{} bytes are still waiting to be written (stdin_bytes_max {}); "
                                            "the process has stopped reading its stdin",
                                            unwritten, stdin_bytes_max_));
  }
  append_frame(stdin_buffer, frame);
  if (unwritten > 0) {
    return {};  // the loop is already waiting for the pipe to take more
  }
  // Writing here rather than in the loop saves a thread hop on every call.
  switch (flush_stdin_locked()) {
    case StdinFlush::drained: return {};
    case StdinFlush::blocked: wake_loop = true; return {};
    case StdinFlush::broken: wake_loop = true; return write_refused(frame, *stdin_closed_why);
  }
  SEEDPOOL_ASSERT_MSG(false, "unknown StdinFlush");
  return {};
}

StdinFlush ProcessShared::flush_stdin_locked() {
  SEEDPOOL_ASSERT(!stdin_closed_why.has_value());
  SEEDPOOL_ASSERT(stdin_fd.valid());
  while (stdin_written < stdin_buffer.size()) {
    const ssize_t n = ::write(stdin_fd.get(), stdin_buffer.data() + stdin_written, stdin_buffer.size() - stdin_written);
    if (n >= 0) {
      stdin_written += static_cast<std::size_t>(n);
    } else if (errno == EAGAIN) {
      // Keep the buffer from growing by what was written long ago.
      if (stdin_written >= stdin_buffer.size() / 2) {
        stdin_buffer.erase(0, stdin_written);
        stdin_written = 0;
      }
      return StdinFlush::blocked;
    } else if (errno != EINTR) {
      close_stdin_locked(fmt::format("its stdin is closed ({}); the process no longer reads", errno_text(errno)));
      return StdinFlush::broken;
    }
  }
  stdin_buffer.clear();
  stdin_written = 0;
  return StdinFlush::drained;
}

void ProcessShared::close_stdin_locked(std::string reason) {
  if (!stdin_closed_why) {
    stdin_closed_why = std::move(reason);
  }
  stdin_buffer.clear();
  stdin_buffer.shrink_to_fit();
  stdin_written = 0;
}

void ProcessShared::signal(int signo) {
  std::lock_guard<std::mutex> lock(mutex);
  if (reaped) {
    return;
  }
  // Until the reap, the pid (a zombie at worst) and its group id cannot be
  // reused, and only the loop reaps, under this same lock.
  if (::kill(-pid, signo) != 0 && errno == ESRCH) {
    static_cast<void>(::kill(pid, signo));
  }
}

std::optional<ExitStatus> ProcessShared::try_reap(bool kill_group, bool block) {
  std::lock_guard<std::mutex> lock(mutex);
  SEEDPOOL_ASSERT(!reaped);
  siginfo_t info{};
  int error = wait_for(pid, info, WEXITED | WNOWAIT | (block ? 0 : WNOHANG));
  if (error == 0 && info.si_pid == 0) {
    return std::nullopt;
  }
  if (error == 0) {
    if (kill_group) {
      static_cast<void>(::kill(-pid, SIGKILL));
    }
    error = wait_for(pid, info, WEXITED);
  }
  reaped = true;
  close_stdin_locked("it has exited");
  if (error != 0) {
    SEEDPOOL_ASSERT_MSG(error == ECHILD, "waitid failed for a child of ours");
    return ExitStatus{false, exit_code_unknown, 0};
  }
  return status_of(info);
}

}  // namespace seedpool::real::detail
