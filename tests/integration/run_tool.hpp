#pragma once

// The `seedpool` command as a child process of the test, with pipes on its
// standard streams: write its stdin, signal it, read what it printed, wait
// for its exit. Every process it starts, its workers included, carries a
// marker in its environment, so that a test can look for any of them left
// running after the command exited (a worker outlives a command that forgot
// to stop it: it runs in a process group of its own and is re-parented).
//
// Deadlines here are hang guards: a command still running at its guard is
// killed and the test fails on its exit status.

#include "support/proc_table.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <spawn.h>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

#ifndef SEEDPOOL_RUN_TOOL
#error "SEEDPOOL_RUN_TOOL must name the seedpool executable"
#endif

extern char** environ;

namespace seedpool::integration {

inline const std::string run_tool = SEEDPOOL_RUN_TOOL;

// The environment variable every process of one ToolProcess carries.
inline constexpr std::string_view tool_marker_variable = "SEEDPOOL_RUN_TEST_MARK";

// How a command ended: an exit status, or the signal that killed it.
struct ToolExit {
  bool exited = false;
  int status = -1;  // WEXITSTATUS when exited
  int signal = 0;   // WTERMSIG otherwise

  std::string describe() const {
    return exited ? "exit status " + std::to_string(status) : "killed by signal " + std::to_string(signal);
  }
};

class ToolProcess {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts `seedpool <args...>`, through `wrapper` when given (a program
  // and its arguments that exec their last arguments, such as a shell that
  // sets a resource limit first). Its stdin is a pipe the test writes and
  // closes (close_stdin), or /dev/null when `stdin_pipe` is false.
  explicit ToolProcess(const std::vector<std::string>& args, bool stdin_pipe = true,
                       const std::vector<std::string>& wrapper = {}) {
    static int counter = 0;
    marker_ = std::to_string(::getpid()) + "-" + std::to_string(++counter);
    std::signal(SIGPIPE, SIG_IGN);  // writing to a command that exited must not end the test
    spawn(args, stdin_pipe, wrapper);
  }

  ~ToolProcess() {
    if (pid_ > 0 && !exit_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    for (int fd : {in_, out_, err_}) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
  }
  ToolProcess(const ToolProcess&) = delete;
  ToolProcess& operator=(const ToolProcess&) = delete;

  // Writes all of `bytes` to the command's stdin; false if it stopped reading.
  bool write_stdin(std::string_view bytes) {
    while (!bytes.empty()) {
      pump(0);
      const ssize_t n = ::write(in_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        pump(10);  // let the command drain its output, which it may be blocked on
        continue;
      }
      if (n < 0) {
        return false;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  void close_stdin() {
    if (in_ >= 0) {
      ::close(in_);
      in_ = -1;
    }
  }

  void signal(int signo) const { ::kill(pid_, signo); }

  // Reads output until stderr contains `text`; false at the guard or when
  // the command exited without writing it.
  bool wait_for_stderr(std::string_view text, std::chrono::milliseconds guard = std::chrono::seconds(60)) {
    return wait_for(err_text_, text, guard);
  }

  // The same for stdout.
  bool wait_for_stdout(std::string_view text, std::chrono::milliseconds guard = std::chrono::seconds(60)) {
    return wait_for(out_text_, text, guard);
  }

  // Waits for the exit, reading everything the command writes; kills it at
  // the guard.
  ToolExit wait(std::chrono::milliseconds guard = std::chrono::seconds(60)) {
    const auto deadline = Clock::now() + guard;
    while (!exit_) {
      pump(10);
      reap(false);
      if (!exit_ && Clock::now() >= deadline) {
        ADD_FAILURE() << "the command did not exit within the hang guard; killing it. stderr so far:\n" << err_text_;
        ::kill(pid_, SIGKILL);
        reap(true);
      }
    }
    while (out_ >= 0 || err_ >= 0) {
      if (Clock::now() >= deadline + std::chrono::seconds(5)) {
        break;  // a descendant holds the pipes: what is here is enough
      }
      pump(10);
    }
    return *exit_;
  }

  // Live processes that carry this command's marker: the command and its
  // workers while they run; after wait(), whatever it left behind.
  std::vector<testing::ProcInfo> marked_processes() const {
    const std::string needle = std::string(tool_marker_variable) + "=" + marker_;
    std::vector<testing::ProcInfo> out;
    for (const testing::ProcInfo& info : testing::all_processes()) {
      if (!testing::is_live(info)) {
        continue;
      }
      const std::string environment = testing::read_text("/proc/" + std::to_string(info.pid) + "/environ");
      for (std::size_t at = 0; at < environment.size();) {
        const std::size_t end = environment.find('\0', at);
        const std::size_t stop = end == std::string::npos ? environment.size() : end;
        if (std::string_view(environment).substr(at, stop - at) == needle) {
          out.push_back(info);
          break;
        }
        at = stop + 1;
      }
    }
    return out;
  }

  // Polls until no marked process runs, or the guard passes; true when none.
  bool none_left(std::chrono::milliseconds guard = std::chrono::seconds(10)) const {
    const auto deadline = Clock::now() + guard;
    while (!marked_processes().empty()) {
      if (Clock::now() >= deadline) {
        return false;
      }
      ::usleep(10'000);
    }
    return true;
  }

  // SIGKILLs every marked process: the cleanup after a failed check.
  void kill_left() const {
    for (const testing::ProcInfo& info : marked_processes()) {
      ::kill(info.pid, SIGKILL);
    }
  }

  const std::string& out() const { return out_text_; }
  const std::string& err() const { return err_text_; }
  pid_t pid() const { return pid_; }

 private:
  bool wait_for(const std::string& stream, std::string_view text, std::chrono::milliseconds guard) {
    const auto deadline = Clock::now() + guard;
    while (stream.find(text) == std::string::npos) {
      if (Clock::now() >= deadline || (out_ < 0 && err_ < 0)) {
        return false;
      }
      pump(10);
    }
    return true;
  }

  void spawn(const std::vector<std::string>& args, bool stdin_pipe, const std::vector<std::string>& wrapper) {
    int in[2] = {-1, -1};
    int out[2] = {-1, -1};
    int err[2] = {-1, -1};
    if (stdin_pipe) {
      ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
    } else {
      in[0] = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      ASSERT_GE(in[0], 0);
    }
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawnattr_init(&attributes);
    ::posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    ::posix_spawnattr_setsigmask(&attributes, &none);
    ::posix_spawnattr_setsigdefault(&attributes, &all);

    std::vector<std::string> argv_strings = wrapper;
    argv_strings.push_back(run_tool);
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<std::string> env_strings;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
      env_strings.emplace_back(*entry);
    }
    env_strings.push_back(std::string(tool_marker_variable) + "=" + marker_);
    std::vector<char*> argv;
    std::vector<char*> envp;
    for (std::string& s : argv_strings) {
      argv.push_back(s.data());
    }
    for (std::string& s : env_strings) {
      envp.push_back(s.data());
    }
    argv.push_back(nullptr);
    envp.push_back(nullptr);
    const int error =
        ::posix_spawn(&pid_, argv_strings.front().c_str(), &actions, &attributes, argv.data(), envp.data());
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attributes);
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    in_ = in[1];
    out_ = out[0];
    err_ = err[0];
    ASSERT_EQ(error, 0) << "posix_spawn " << run_tool << ": " << std::strerror(error);
    if (in_ >= 0) {
      ::fcntl(in_, F_SETFL, O_NONBLOCK);
    }
  }

  // Reads what is available on stdout and stderr, waiting up to `timeout_ms`.
  void pump(int timeout_ms) {
    pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
    if (out_ < 0 && err_ < 0) {
      if (timeout_ms > 0) {
        ::usleep(static_cast<useconds_t>(timeout_ms) * 1000);
      }
      return;
    }
    if (::poll(fds, 2, timeout_ms) <= 0) {
      return;
    }
    drain(fds[0], out_, out_text_);
    drain(fds[1], err_, err_text_);
  }

  static void drain(const pollfd& polled, int& fd, std::string& into) {
    if (fd < 0 || (polled.revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
      return;
    }
    char buffer[65536];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      into.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      ::close(fd);
      fd = -1;
    }
  }

  void reap(bool block) {
    int status = 0;
    const pid_t got = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (got != pid_) {
      return;
    }
    exit_ = WIFEXITED(status) ? ToolExit{true, WEXITSTATUS(status), 0} : ToolExit{false, -1, WTERMSIG(status)};
  }

  std::string marker_;
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  int err_ = -1;
  std::string out_text_;
  std::string err_text_;
  std::optional<ToolExit> exit_;
};

}  // namespace seedpool::integration
