#include "stress.hpp"

#include <seedpool/core/channel.hpp>
#include <seedpool/core/pool.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace seedpool::tool {
namespace {

using Clock = std::chrono::steady_clock;

// The contents of a /proc file, or "" when the process is gone. Plain read():
// a stream reading a vanishing process's file throws from underflow.
std::string read_small_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return {};
  }
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0 && text.size() < 65536;) {
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

// Pids of this process's children whose command line mentions `needle`.
std::vector<pid_t> children(const std::string& needle, bool include_zombies) {
  std::vector<pid_t> found;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) {
    return found;
  }
  const pid_t self = getpid();
  while (dirent* entry = readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(entry->d_name));
    if (pid <= 0) {
      continue;
    }
    const std::string line = read_small_file(fmt::format("/proc/{}/stat", pid));
    const std::size_t close = line.rfind(')');
    if (close == std::string::npos || close + 4 >= line.size()) {
      continue;
    }
    const char state = line[close + 2];
    const pid_t parent = static_cast<pid_t>(std::atoi(line.c_str() + close + 4));
    if (parent != self || (state == 'Z' && !include_zombies)) {
      continue;
    }
    const std::string cmdline = read_small_file(fmt::format("/proc/{}/cmdline", pid));
    if (needle.empty() || cmdline.find(needle) != std::string::npos || state == 'Z') {
      found.push_back(pid);
    }
  }
  closedir(proc);
  return found;
}

// Each worker gets random misbehaviour: a shell picks the flags per launch.
PoolConfig stress_config(const StressOptions& o) {
  PoolConfig c;
  c.name = "stress";
  c.command.program = "/bin/sh";
  const std::string w = o.echo_worker;
  c.command.args = {
      "-c",
      fmt::format("r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' '); n=$((r % 20 + 1)); case $((r % 10)) in "
                  "0) exec {0} --crash-after $n;; 1) exec {0} --hang-after $n;; 2) exec {0} --garbage-after $n;; "
                  "3) exec {0} --wrong-id-after $n;; 4) exec {0} --reply-delay-ms $n;; 5) exec {0} --truncate-after $n;; "
                  "*) exec {0};; esac",
                  w)};
  c.size = {o.workers, o.workers};
  c.min_ready = 1;
  c.init_timeout = seconds(5);
  c.call_timeout = milliseconds(500);
  c.health_interval = milliseconds(500);
  c.health_timeout = milliseconds(500);
  c.restart_backoff_base = milliseconds(5);
  c.restart_backoff_max = milliseconds(500);
  c.breaker_failures = 1000;  // the stress test wants restarts, not a breaker
  c.shutdown_grace = seconds(2);
  c.terminate_grace = milliseconds(500);
  return c;
}

class Stress {
 public:
  Stress(World& world, const StressOptions& o) : world_(world), options_(o), start_(Clock::now()) {}

  void violation(const std::string& kind, const std::string& message) {
    std::lock_guard lock(mutex_);
    violation_locked(kind, message);
  }
  bool stop() const { return stop_.load() || found(); }
  bool found() const {
    std::lock_guard lock(mutex_);
    return result_.found;
  }
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  void caller(Pool& pool, std::uint32_t id, std::uint64_t seed) {
    std::mt19937_64 random(seed);
    for (std::uint64_t sequence = 0; !stop(); ++sequence) {
      const Instant deadline = world_.now() + milliseconds(static_cast<std::int64_t>(1 + random() % 200));
      Result<PendingCheckout> pending = pool.begin_checkout({.deadline = deadline});
      if (!pending) {
        expect_checkout_error(pending.error());
        continue;
      }
      if (random() % 20 == 0) {
        pending.value().cancel();
      }
      Result<Lease> lease = pending.value().wait();
      if (!lease) {
        expect_checkout_error(lease.error());
        continue;
      }
      hold(lease.value().worker(), id);
      const std::uint64_t calls = 1 + random() % 3;
      for (std::uint64_t i = 0; i < calls; ++i) {
        const std::string payload = fmt::format("caller {} call {}.{}", id, sequence, i);
        const auto timeout = milliseconds(static_cast<std::int64_t>(5 + random() % 500));
        Result<std::string> reply = lease.value().call(payload, world_.now() + timeout);
        calls_.fetch_add(1);
        if (reply && reply.value() != payload) {
          violation("reply-mismatch", fmt::format("caller {} sent '{}' and got '{}'", id, payload, reply.value()));
        } else if (!reply) {
          expect_call_error(reply.error());
          break;
        }
      }
      unhold(lease.value().worker(), id);
      lease.value().release();
    }
  }

  void killer(std::uint64_t seed) {
    std::mt19937_64 random(seed);
    while (!stop()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10 + random() % 90));
      const std::vector<pid_t> workers = children(options_.echo_worker, false);
      if (!workers.empty()) {
        ::kill(workers[random() % workers.size()], SIGKILL);
      }
    }
  }

  void end_checks(Pool& pool) {
    // Liveness, as the simulator's quiet period checks it: back to size.
    const auto until = Clock::now() + std::chrono::seconds(30);
    PoolStats stats = pool.stats();
    while (stats.workers_in(WorkerState::ready) != options_.workers && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      stats = pool.stats();
    }
    if (stats.workers_in(WorkerState::ready) != options_.workers) {
      violation("pool-recovered", fmt::format("{} of {} workers ready 30 s after the chaos stopped (busy {})",
                                              stats.workers_in(WorkerState::ready), options_.workers,
                                              stats.workers_in(WorkerState::busy)));
    }
    if (Status stopped = pool.shutdown(); !stopped) {
      violation("shutdown", stopped.error().describe());
    }
    const std::vector<pid_t> left = children("", true);
    if (!left.empty()) {
      violation("processes-reaped", fmt::format("{} child processes left after shutdown", left.size()));
    }
  }

  StressResult result() {
    std::lock_guard lock(mutex_);
    StressResult r = result_;
    r.calls = calls_.load();
    if (!r.found) {
      r.seconds = elapsed();
    }
    return r;
  }

  std::atomic<bool> stop_{false};

 private:
  void expect_checkout_error(const Error& e) {
    switch (e.code) {
      case ErrorCode::timeout:
      case ErrorCode::cancelled:
      case ErrorCode::pool_saturated:
      case ErrorCode::pool_unavailable: return;
      default: violation("checkout-outcome", e.describe());
    }
  }
  void expect_call_error(const Error& e) {
    switch (e.code) {
      case ErrorCode::timeout:
      case ErrorCode::worker_crashed:
      case ErrorCode::worker_error:
      case ErrorCode::protocol_error: return;
      default: violation("call-outcome", e.describe());
    }
  }
  void hold(WorkerRef worker, std::uint32_t caller) {
    std::lock_guard lock(mutex_);
    const auto [it, inserted] = holders_.emplace(worker, caller);
    if (!inserted) {
      violation_locked("lease-exclusive", fmt::format("worker {} leased to caller {} while caller {} holds it",
                                                      worker.to_string(), caller, it->second));
    }
  }
  void violation_locked(const std::string& kind, const std::string& message) {
    if (!result_.found) {
      result_.found = true;
      result_.kind = kind;
      result_.message = message;
      result_.seconds = elapsed();
    }
  }
  void unhold(WorkerRef worker, std::uint32_t caller) {
    std::lock_guard lock(mutex_);
    const auto it = holders_.find(worker);
    if (it != holders_.end() && it->second == caller) {
      holders_.erase(it);
    }
  }

  World& world_;
  const StressOptions& options_;
  const Clock::time_point start_;
  mutable std::mutex mutex_;
  StressResult result_;
  std::map<WorkerRef, std::uint32_t> holders_;
  std::atomic<std::uint64_t> calls_{0};
};

}  // namespace

std::string json_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

StressResult run_stress(World& world, const StressOptions& options) {
  auto created = Pool::create(world, stress_config(options));
  if (!created) {
    return StressResult{true, "config", created.error().describe(), 0, 0};
  }
  Pool& pool = *created.value();
  Stress stress(world, options);
  if (Status started = pool.start(); !started) {
    stress.violation("start", started.error().describe());
  }
  std::vector<std::thread> threads;
  for (std::uint32_t i = 0; i < options.callers; ++i) {
    threads.emplace_back([&, i] { stress.caller(pool, i + 1, options.seed * 1000 + i); });
  }
  threads.emplace_back([&] { stress.killer(options.seed); });
  const auto until = Clock::now() + std::chrono::seconds(options.seconds);
  while (Clock::now() < until && !stress.found()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stress.stop_ = true;
  // From here on every step has a bound: a caller stuck far beyond every
  // deadline, a pool that never gets back to size or a shutdown that never
  // returns is a violation, reported by the watchdog, which then ends the
  // process (a hung pool cannot be torn down).
  std::atomic<const char*> phase{"callers-answered"};
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    const auto limit = Clock::now() + std::chrono::seconds(90);
    while (!finished.load() && Clock::now() < limit) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!finished.load()) {
      stress.violation(phase.load(), fmt::format("the run did not get past '{}' within 90 s after the load stopped",
                                                 phase.load()));
      const StressResult r = stress.result();
      fmt::print("{{\"found\":true,\"kind\":\"{}\",\"seconds\":{:.3f},\"calls\":{},\"message\":\"{}\"}}\n", r.kind,
                 r.seconds, r.calls, json_escape(r.message));
      std::fflush(stdout);
      for (const pid_t child : children("", true)) {
        ::kill(-child, SIGKILL);  // each worker leads its own process group
      }
      std::_Exit(1);
    }
  });
  for (std::thread& t : threads) {
    t.join();
  }
  phase = "shutdown";
  if (!stress.found()) {
    stress.end_checks(pool);
  } else {
    (void)pool.shutdown();
  }
  finished = true;
  watchdog.join();
  return stress.result();
}

}  // namespace seedpool::tool
