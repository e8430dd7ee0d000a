#pragma once

// Helpers for the pool's integration tests on the real backend: worker
// commands (the echo worker, the Python reference worker, small python3 -c
// workers), a recorder for the pool's telemetry and worker stderr, /proc
// inspection of this process's children and their process groups, and a
// fixture that gives every test its own RealWorld and checks, once the world
// is gone, that no child process and no descriptor outlived it.
//
// Deadlines here are hang guards only: no test asserts how long anything took.

#include "support/proc_table.hpp"

#include <seedpool/core/pool.hpp>
#include <seedpool/core/pool_config.hpp>
#include <seedpool/core/telemetry.hpp>
#include <seedpool/real/real_world.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fcntl.h>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include <utility>
#include <vector>

#ifndef SEEDPOOL_ECHO_WORKER
#error "SEEDPOOL_ECHO_WORKER must name the seedpool-echo-worker executable"
#endif
#ifndef SEEDPOOL_PYTHON_WORKERS
#error "SEEDPOOL_PYTHON_WORKERS must name workers/python"
#endif

namespace seedpool::integration {

// Every wait in these tests gives up after this long: a guard against hangs,
// never a measurement. Generous, because the machine may be small and busy.
inline constexpr Duration hang_guard = seconds(60);

inline const std::string echo_worker = SEEDPOOL_ECHO_WORKER;
inline const std::string python_workers = SEEDPOOL_PYTHON_WORKERS;
// The system interpreter when there is one: a version manager's shim on PATH
// is a shell script that pays a start-up of its own before it execs Python.
inline const std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

inline bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// ---------------------------------------------------------------- commands

inline WorkerCommand echo_command(std::vector<std::string> flags = {}) {
  return WorkerCommand{echo_worker, std::move(flags), {}, {}};
}

// python3 workers/python/examples/<script>.
inline WorkerCommand python_example(const std::string& script) {
  return WorkerCommand{python, {python_workers + "/examples/" + script}, {}, {}};
}

// python3 -c `code`, with seedpool_worker importable. `tag` becomes argv[1] so
// that the workers can be told apart in /proc by their command line.
inline WorkerCommand python_code(std::string code, std::string tag) {
  return WorkerCommand{python, {"-c", std::move(code), std::move(tag)}, {{"PYTHONPATH", python_workers}}, {}};
}

// Single-quotes `word` for /bin/sh.
inline std::string sh_quote(std::string_view word) {
  std::string out = "'";
  for (const char c : word) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

inline std::string sh_words(const WorkerCommand& command) {
  std::string out = sh_quote(command.program);
  for (const std::string& arg : command.args) {
    out += ' ' + sh_quote(arg);
  }
  return out;
}

// A command whose first start runs `bad` and every later start runs `good`:
// the first worker to create `claim_dir` misbehaves, its replacements and its
// peers do not. exec keeps the pid, so the worker is still the process (and
// process-group leader) the pool launched. Environment and working directory
// come from `good`, and `bad` must need no more than that.
inline WorkerCommand first_start_runs(const std::string& claim_dir, const WorkerCommand& bad, const WorkerCommand& good) {
  WorkerCommand command = good;
  command.program = "/bin/sh";
  command.args = {"-c", "if mkdir " + sh_quote(claim_dir) + " 2>/dev/null; then exec " + sh_words(bad) +
                            "; else exec " + sh_words(good) + "; fi"};
  return command;
}

// ---------------------------------------------------------------- recorder

// Records the pool's telemetry events and every worker stderr line. The pool
// calls it from its own task; tests read it from theirs, hence the mutex.
class Recorder final : public TelemetrySink, public LogSink {
 public:
  void on_event(const TelemetryEvent& event) override {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(event);
  }
  void on_stderr(std::string_view /*pool*/, WorkerRef worker, std::string_view line) override {
    std::lock_guard<std::mutex> lock(mutex_);
    lines_.emplace_back(worker, std::string(line));
  }

  std::vector<TelemetryEvent> events(TelemetryKind kind) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<TelemetryEvent> out;
    std::copy_if(events_.begin(), events_.end(), std::back_inserter(out),
                 [kind](const TelemetryEvent& e) { return e.kind == kind; });
    return out;
  }

  std::vector<std::pair<WorkerRef, std::string>> lines() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

  // The first stderr line containing `part`, with its worker.
  std::optional<std::pair<WorkerRef, std::string>> line_with(std::string_view part) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& entry : lines_) {
      if (contains(entry.second, part)) {
        return entry;
      }
    }
    return std::nullopt;
  }

  // The pid the echo worker `worker` announced on stderr at start ("echo
  // worker <pid> ready"), once that line has arrived.
  std::optional<pid_t> echo_pid_of(WorkerRef worker) const {
    static constexpr std::string_view prefix = "echo worker ";
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [ref, line] : lines_) {
      if (ref == worker && line.starts_with(prefix) && line.ends_with(" ready")) {
        return static_cast<pid_t>(std::stol(line.substr(prefix.size())));
      }
    }
    return std::nullopt;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<TelemetryEvent> events_;
  std::vector<std::pair<WorkerRef, std::string>> lines_;
};

// ---------------------------------------------------------------- /proc

using testing::all_processes;
using testing::is_live;
using testing::open_fd_count;
using testing::proc_cmdline;
using testing::proc_info;
using testing::ProcInfo;

// Children of this process in any state, zombies included.
inline std::vector<ProcInfo> children() {
  std::vector<ProcInfo> out;
  for (const ProcInfo& info : all_processes()) {
    if (info.ppid == ::getpid()) {
      out.push_back(info);
    }
  }
  return out;
}

// Live children of this process whose command line contains `marker` (a
// child between fork and exec still shows this program's command line, so
// it is not counted until it runs the worker).
inline std::vector<pid_t> worker_pids(std::string_view marker) {
  std::vector<pid_t> out;
  for (const ProcInfo& info : children()) {
    if (is_live(info) && contains(proc_cmdline(info.pid), marker)) {
      out.push_back(info.pid);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Live processes whose parent is `parent`.
inline std::vector<ProcInfo> live_children_of(pid_t parent) {
  std::vector<ProcInfo> out;
  for (const ProcInfo& info : all_processes()) {
    if (info.ppid == parent && is_live(info)) {
      out.push_back(info);
    }
  }
  return out;
}

// Live (not zombie) processes in any of the process groups `pgids`.
inline std::vector<ProcInfo> live_in_groups(const std::set<pid_t>& pgids) {
  std::vector<ProcInfo> out;
  for (const ProcInfo& info : all_processes()) {
    if (pgids.contains(info.pgrp) && is_live(info)) {
      out.push_back(info);
    }
  }
  return out;
}

inline std::string describe(const std::vector<ProcInfo>& processes) {
  std::string out;
  for (const ProcInfo& info : processes) {
    out += "\n  pid " + std::to_string(info.pid) + " state " + info.state + " ppid " + std::to_string(info.ppid) +
           " pgrp " + std::to_string(info.pgrp) + ": " + proc_cmdline(info.pid);
  }
  return out.empty() ? " (none)" : out;
}

// Sends SIGKILL to `pid` through a pidfd, after checking that the process the
// pidfd names is still a child of ours: a worker's pid cannot be reused before
// the RealWorld reaps it, but it may be reaped between the scan and the kill.
// Returns whether the signal was sent.
inline bool kill_child(pid_t pid) {
  const long fd = ::syscall(SYS_pidfd_open, pid, 0u);
  if (fd < 0) {
    return false;
  }
  bool sent = false;
  if (const std::optional<ProcInfo> info = proc_info(pid); info && info->ppid == ::getpid()) {
    sent = ::syscall(SYS_pidfd_send_signal, static_cast<int>(fd), SIGKILL, nullptr, 0u) == 0;
  }
  ::close(static_cast<int>(fd));
  return sent;
}

// Polls `condition` every few milliseconds until it holds or `guard` passes.
// Returns whether it held.
inline bool eventually(real::RealWorld& world, const std::function<bool()>& condition, Duration guard = hang_guard) {
  const Instant deadline = world.now() + guard;
  while (!condition()) {
    if (world.now() >= deadline) {
      return false;
    }
    world.sleep_for(milliseconds(5));
  }
  return true;
}

// ---------------------------------------------------------------- fixture

// One RealWorld per test. TearDown shuts the pool down (if the test has not),
// destroys it and the world, then checks that every child process is gone,
// zombies included, and that the descriptor count is back where it started.
class PoolIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fds_before_ = open_fd_count();
    world_ = std::make_unique<real::RealWorld>();
  }

  void TearDown() override {
    if (pool_ != nullptr) {
      (void)pool_->shutdown();
      pool_.reset();
    }
    world_.reset();
    EXPECT_EQ(open_fd_count(), fds_before_) << "descriptors leaked by the pool or the RealWorld";
    const std::vector<ProcInfo> left = children();
    EXPECT_TRUE(left.empty()) << "child processes outlived the RealWorld:" << describe(left);
    if (!scratch_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_, ignored);
    }
  }

  real::RealWorld& world() { return *world_; }
  Pool& pool() { return *pool_; }

  // Settings for tests on a small, busy machine: quick restarts, no health
  // checks unless a test wants them, and generous timeouts everywhere else.
  static PoolConfig config(std::string name, WorkerCommand command, std::size_t size) {
    PoolConfig c;
    c.name = std::move(name);
    c.command = std::move(command);
    c.size.min = size;
    c.size.max = size;
    c.min_ready = size;
    c.init_timeout = seconds(30);
    c.checkout_timeout = seconds(30);
    c.call_timeout = seconds(30);
    c.health_interval = Duration::zero();
    c.restart_backoff_base = milliseconds(10);
    c.restart_backoff_max = milliseconds(200);
    c.shutdown_grace = seconds(10);
    c.terminate_grace = seconds(2);
    return c;
  }

  // Creates the pool with the recorder as its telemetry and log sink.
  void create_pool(PoolConfig c) {
    Result<std::unique_ptr<Pool>> created = Pool::create(world(), std::move(c), PoolHooks{&recorder_, &recorder_});
    ASSERT_TRUE(created.ok()) << created.error().describe();
    pool_ = std::move(created).value();
  }

  // Creates the pool and starts it; fails the test when start() fails.
  void start_pool(PoolConfig c) {
    create_pool(std::move(c));
    ASSERT_FALSE(HasFatalFailure());
    const Status started = pool_->start(world().now() + hang_guard);
    ASSERT_TRUE(started.ok()) << started.error().describe();
  }

  // Waits until `n` workers are ready and none is starting, initializing or
  // stopping: the pool is back to size and at rest.
  bool settles_at(std::size_t n) {
    return eventually(world(), [&] { return settles_at_now(n); });
  }

  bool settles_at_now(std::size_t n) {
    const auto wanted = static_cast<std::int64_t>(n);
    const PoolStats s = pool_->stats();
    return s.workers_in(WorkerState::ready) == wanted && s.workers_in(WorkerState::starting) == 0 &&
           s.workers_in(WorkerState::initializing) == 0 && s.workers_in(WorkerState::stopping) == 0;
  }

  // Like settles_at, and also `n` live processes whose command line contains
  // `marker`: a worker that died but whose exit the pool has not handled yet
  // still counts as ready, and only /proc shows that it is gone. Killed
  // processes must be dead already (SIGKILL is delivered asynchronously).
  bool back_to_size(std::size_t n, std::string_view marker) {
    return eventually(world(), [&] { return settles_at_now(n) && worker_pids(marker).size() == n; });
  }

  // Shuts the pool down and checks what shutdown() promises: every process
  // reaped (no child left in any state) and nothing left in the groups of
  // `pgids` (a SIGKILL to a grandchild is delivered asynchronously, so that
  // part is polled).
  void shutdown_and_check(const std::set<pid_t>& pgids = {}) {
    const Status down = pool_->shutdown();
    EXPECT_TRUE(down.ok()) << down.error().describe();
    const std::vector<ProcInfo> left = children();
    EXPECT_TRUE(left.empty()) << "children left after shutdown():" << describe(left);
    EXPECT_TRUE(eventually(world(), [&] { return live_in_groups(pgids).empty(); }))
        << "processes left in the workers' groups:" << describe(live_in_groups(pgids));
  }

  // A fresh directory for this test, removed by TearDown.
  std::string scratch_dir() {
    if (scratch_.empty()) {
      std::string pattern = (std::filesystem::temp_directory_path() / "seedpool-integ-XXXXXX").string();
      const char* made = ::mkdtemp(pattern.data());
      EXPECT_NE(made, nullptr) << "mkdtemp failed: errno " << errno;
      scratch_ = pattern;
    }
    return scratch_;
  }

  Recorder recorder_;

 private:
  std::size_t fds_before_ = 0;
  std::string scratch_;
  std::unique_ptr<real::RealWorld> world_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace seedpool::integration
