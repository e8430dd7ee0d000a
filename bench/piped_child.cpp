// Child processes for the baselines; see piped_child.hpp.

#include "piped_child.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>

extern char** environ;

namespace seedpool::bench {
namespace {

// The polling step of wait_or_kill.
constexpr long wait_poll_ns = 1'000'000;

// Both ends of a pipe, closed on destruction unless released.
struct Pipe {
  int read = -1;
  int write = -1;
  Pipe() = default;
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    if (read >= 0) {
      ::close(read);
    }
    if (write >= 0) {
      ::close(write);
    }
  }
  bool open() {
    int fds[2] = {-1, -1};
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      return false;
    }
    read = fds[0];
    write = fds[1];
    return true;
  }
};

Error launch_error(const std::string& program, int error, std::string_view what) {
  return Error{ErrorCode::launch_failed,
               fmt::format("cannot start '{}': {} ({})", program, std::strerror(error), what), {}};
}

// The file actions that put the pipes (or /dev/null) on descriptors 0..2.
// dup2 clears close-on-exec on the target, so only 0..2 reach the program.
int plan_descriptors(posix_spawn_file_actions_t& actions, const Pipe& in, const Pipe& out,
                     PipedChildOptions options) {
  int error = options.stdin_pipe ? ::posix_spawn_file_actions_adddup2(&actions, in.read, STDIN_FILENO)
                                 : ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (error == 0) {
    error = ::posix_spawn_file_actions_adddup2(&actions, out.write, STDOUT_FILENO);
  }
  if (error == 0 && options.stderr_to_null) {
    error = ::posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  }
  return error;
}

}  // namespace

Result<PipedChild> spawn_piped(const std::vector<std::string>& argv, PipedChildOptions options) {
  SEEDPOOL_ASSERT(!argv.empty());
  Pipe in;
  Pipe out;
  if ((options.stdin_pipe && !in.open()) || !out.open()) {
    return launch_error(argv[0], errno, "pipe2");
  }
  std::vector<char*> args;
  for (const std::string& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  SEEDPOOL_ASSERT(::posix_spawn_file_actions_init(&actions) == 0);
  int error = plan_descriptors(actions, in, out, options);
  pid_t pid = -1;
  if (error == 0) {
    error = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  }
  ::posix_spawn_file_actions_destroy(&actions);
  if (error != 0) {
    return launch_error(argv[0], error, "posix_spawnp");
  }
  PipedChild child;
  child.pid = pid;
  child.stdin_fd = std::exchange(in.write, -1);
  child.stdout_fd = std::exchange(out.read, -1);
  return child;
}

int wait_or_kill(pid_t pid, int wait_ms_max) {
  SEEDPOOL_ASSERT(pid > 0);
  SEEDPOOL_ASSERT(wait_ms_max >= 0);
  int status = 0;
  const long polls_max = static_cast<long>(wait_ms_max) * 1'000'000 / wait_poll_ns;
  for (long poll = 0; poll <= polls_max; ++poll) {
    const pid_t got = ::waitpid(pid, &status, WNOHANG);
    if (got == pid) {
      return status;
    }
    if (got < 0 && errno != EINTR) {
      return -1;
    }
    const timespec step{0, wait_poll_ns};
    ::nanosleep(&step, nullptr);
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return -1;
    }
  }
  return status;
}

bool read_to_end(int fd, std::string& out) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      out.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0) {
      return true;
    } else if (errno != EINTR) {
      return false;
    }
  }
}

}  // namespace seedpool::bench
