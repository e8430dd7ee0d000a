#include "jobs.hpp"

#include "line_reader.hpp"
#include "say.hpp"
#include "stop_request.hpp"
#include "worker_log.hpp"

#include <seedpool/core/channel.hpp>
#include <seedpool/core/codec.hpp>
#include <seedpool/core/pool.hpp>

#include <fmt/format.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace seedpool::tool {
namespace {

using Clock = std::chrono::steady_clock;
using Tick = std::function<void()>;

struct Counts {
  std::atomic<std::uint64_t> ok{0};
  std::atomic<std::uint64_t> failed{0};
};

std::string one_line(const Error& e) {
  const std::string& m = e.message;
  return fmt::format("ERROR {}: {}", to_string(e.code), m.substr(0, m.find('\n')));
}

// Writes `text` and a newline to stdout, every byte of it: a reply may hold
// NUL bytes, which the C string functions would cut it at. Returns 0, or
// the errno of the write that failed.
int write_line(const std::string& text) {
  errno = 0;
  const bool written = std::fwrite(text.data(), 1, text.size(), stdout) == text.size() &&
                       std::fputc('\n', stdout) != EOF && std::fflush(stdout) == 0;
  return written ? 0 : (errno != 0 ? errno : EIO);
}

ExecuteOptions execute_options(const RunOptions& o) {
  return ExecuteOptions{std::nullopt, o.kind.affinity_key, o.kind.affinity_mode};
}

// The job's tasks, joined before the channels they use are destroyed: a
// receiver may have a task's last item while that task is still inside the
// send (a channel wakes its receivers after it has let go of its lock).
class JobTasks {
 public:
  explicit JobTasks(World& world) : world_(world) {}
  ~JobTasks() { join_all(); }
  JobTasks(const JobTasks&) = delete;
  JobTasks& operator=(const JobTasks&) = delete;

  // Starts a task; a thread the kernel refuses (thread or memory limits) is
  // an error that names the task and says what to lower, not an abort.
  Status start(std::string name, std::function<void()> body, std::string_view lower) {
    try {
      tasks_.push_back(world_.spawn_joinable(name, std::move(body)));
    } catch (const std::system_error& e) {
      return Error{ErrorCode::launch_failed,
                   fmt::format("cannot start the thread of task '{}': {}; lower {}", name, e.what(), lower), {}};
    }
    return {};
  }

  void join_all() {
    for (const std::unique_ptr<JoinableTask>& task : tasks_) {
      task->join();
    }
    tasks_.clear();
  }

 private:
  World& world_;
  std::vector<std::unique_ptr<JoinableTask>> tasks_;
};

// Waits until `n` tasks have sent to `done`, ticking at least twice a second.
void await(World& world, Channel<int>& done, std::uint64_t n, const Tick& tick) {
  for (std::uint64_t finished = 0; finished < n;) {
    if (done.receive(world.now() + milliseconds(500))) {
      ++finished;
    }
    tick();
  }
}

// Generated load: `concurrency` callers share `calls` calls (no more callers
// than calls: the others would have nothing to do). A stop ends every caller
// after its call in flight.
Status run_load(World& world, Pool& pool, const RunOptions& o, const StopRequest& stop, Counts& counts,
                const Tick& tick) {
  const std::uint64_t callers = std::min(o.load.concurrency, o.load.calls);
  std::atomic<std::uint64_t> remaining{o.load.calls};
  Channel<int> done(world, "load-done", callers);
  auto caller = [&] {
    for (std::uint64_t n = remaining.load(); n > 0 && !stop.requested(); n = remaining.load()) {
      if (!remaining.compare_exchange_weak(n, n - 1)) {
        continue;
      }
      Result<std::string> reply = pool.execute(o.load.payload, execute_options(o));
      (reply ? counts.ok : counts.failed).fetch_add(1);
    }
    (void)done.send(1);
  };
  JobTasks tasks(world);
  std::uint64_t started = 0;
  Status spawned;
  while (started < callers && spawned) {
    spawned = tasks.start(fmt::format("load-{}", started), caller, "--load concurrency=");
    started += spawned ? 1U : 0U;
  }
  if (!spawned) {
    remaining.store(0);  // the callers that run end after their call in flight
  }
  await(world, done, started, tick);
  tasks.join_all();
  return spawned;
}

// A line of stdin: its index, its payload, and whether it was longer than
// any call can be (its payload is then its start, one byte over the limit).
struct Item {
  std::uint64_t index = 0;
  std::string payload;
  bool cut = false;
};
using Answer = std::pair<std::uint64_t, Result<std::string>>;

// Prints the answers in input order; at most concurrency * 3 wait in `early`.
// Once stdout cannot be written (a reader that went away, a full disk) the
// job stops as a SIGPIPE would have it stop, but without losing track: no
// more input is read, the calls in flight finish and are counted, and the
// error says how many answers were not written.
Status print_answers(Channel<Answer>& output, const RunOptions& o, StopRequest& stop, const Tick& tick) {
  std::map<std::uint64_t, Result<std::string>> early;
  std::uint64_t next = 0;
  int write_error = 0;
  std::uint64_t unwritten = 0;
  while (Received<Answer> answer = output.receive()) {
    early.emplace(answer.value->first, std::move(answer.value->second));
    for (auto it = early.find(next); it != early.end(); it = early.find(++next)) {
      if (write_error == 0) {
        write_error = write_line(it->second ? it->second.value() : one_line(it->second.error()));
        if (write_error != 0) {
          stop.request(write_error == EPIPE ? SIGPIPE : StopRequest::no_signal);
        }
      }
      unwritten += write_error != 0 ? 1U : 0U;
      if (!it->second && o.quiet_workers && write_error == 0) {
        // The stderr tail was not shown as it happened: show it now.
        say("line {}: {}\n", next + 1, it->second.error().describe());
      }
      early.erase(it);
    }
    tick();
  }
  if (write_error != 0) {
    return Error{ErrorCode::io_error,
                 fmt::format("cannot write to stdout: {}; stopped reading input; {} answer(s) not written, from "
                             "line {} on",
                             std::strerror(write_error), unwritten, next - unwritten + 1),
                 {}};
  }
  return {};
}

// Feeds stdin's lines to `input` until the end of input or a stop. A line
// is kept up to the largest payload a call frame holds: of a longer one only
// its start is kept, enough for the pool to refuse it naming the limit.
Status read_lines(Channel<Item>& input, const RunOptions& o, const StopRequest& stop) {
  const std::size_t payload_bytes_max = static_cast<std::size_t>(o.pool.frame_bytes_max) - kFrameHeaderBytes;
  LineReader reader(STDIN_FILENO, stop.wake_fd(), payload_bytes_max);
  std::uint64_t index = 0;
  for (std::optional<std::string> line; !stop.requested() && (line = reader.next());) {
    if (input.send(Item{index++, std::move(*line), reader.cut()}) != ChannelStatus::ok) {
      break;
    }
  }
  if (!reader.error().empty()) {
    return Error{ErrorCode::io_error, reader.error(), {}};
  }
  return {};
}

// Payloads from stdin, one per line; replies printed in input order. A stop
// ends the reading at once; lines already read still get their answer.
Status run_stdin(World& world, Pool& pool, const RunOptions& o, StopRequest& stop, Counts& counts,
                 const Tick& tick) {
  const std::uint64_t concurrency = o.concurrency != 0 ? o.concurrency : o.pool.size.max;
  Channel<Item> input(world, "stdin-lines", concurrency);
  Channel<Answer> output(world, "replies", concurrency * 2);
  Channel<int> done(world, "callers-done", concurrency + 1);
  JobTasks tasks(world);
  Status printed;
  Status status = tasks.start("printer", [&] {
    printed = print_answers(output, o, stop, tick);
    (void)done.send(2);
  }, "--concurrency");
  if (!status) {
    return status;
  }
  std::uint64_t callers = 0;
  while (callers < concurrency && status) {
    status = tasks.start(fmt::format("caller-{}", callers), [&] {
      while (Received<Item> item = input.receive()) {
        const std::size_t kept = item.value->payload.size();
        Result<std::string> reply = pool.execute(std::move(item.value->payload), execute_options(o));
        if (item.value->cut && !reply) {
          Error said = reply.error();
          said.message = fmt::format("a line of at least {} bytes (read no further): {}", kept, said.message);
          reply = std::move(said);
        }
        (reply ? counts.ok : counts.failed).fetch_add(1);
        (void)output.send(Answer{item.value->index, std::move(reply)});
      }
      (void)done.send(1);
    }, "--concurrency");
    callers += status ? 1U : 0U;
  }
  if (status) {
    status = read_lines(input, o, stop);
  }
  input.close();
  for (std::uint64_t finished = 0; finished < callers;) {
    finished += done.receive().value.value_or(0) == 1 ? 1U : 0U;
  }
  output.close();
  (void)done.receive();  // the printer
  tasks.join_all();
  return status ? printed : status;
}

// The latency quantiles, "p50 <= 500 us, p99 <= 2500 us": "-" when there
// was no call (an empty histogram has no quantile), "p99 > 60000000 us" for
// one beyond the last bucket.
std::string latency(const Histogram& h) {
  if (h.count() == 0) {
    return "-";
  }
  const auto bound = [&h](unsigned q) {
    const Duration d = h.quantile_bound(q);
    return d == Duration::max() ? fmt::format("p{} > {} us", q, Histogram::bounds_ns.back() / 1000)
                                : fmt::format("p{} <= {} us", q, d.ns() / 1000);
  };
  return fmt::format("{}, {}", bound(50), bound(99));
}

void print_stats(const PoolStats& stats, double wall_seconds) {
  const std::uint64_t calls = stats.total(stats.calls);
  const double rate = wall_seconds > 0 ? static_cast<double>(calls) / wall_seconds : 0.0;
  say("seedpool: {} calls ({} ok) in {:.2f}s = {:.0f} calls/s; call latency {}\n"
      "seedpool: checkouts {} ({} ok); worker starts {} ({} ok); exits {}; recycles {}; health failures {}\n",
      calls, stats.count(stats.calls, "ok"), wall_seconds, rate, latency(stats.call_duration),
      stats.total(stats.checkouts), stats.count(stats.checkouts, "ok"), stats.total(stats.inits),
      stats.count(stats.inits, "ok"), stats.worker_exits, stats.recycles, stats.health_failures);
  for (const auto& [outcome, n] : stats.calls) {
    if (outcome != "ok") {
      say("seedpool:   calls {}: {}\n", outcome, n);
    }
  }
}

// Writes the pool's metrics to `path` through a temporary file renamed over
// it, so that a reader never sees half a file. Returns "" or what failed.
std::string write_metrics(Pool& pool, const std::string& path) {
  // The rename replaces whatever has the name: only a regular file may.
  struct stat existing {};
  if (::lstat(path.c_str(), &existing) == 0 && !S_ISREG(existing.st_mode)) {
    const char* what = S_ISDIR(existing.st_mode)   ? "directory"
                       : S_ISLNK(existing.st_mode) ? "symbolic link"
                                                   : "device, pipe or socket";
    return fmt::format("the --metrics file '{}' exists and is not a regular file (a {}); it is replaced at every "
                       "interval, so name a file",
                       path, what);
  }
  const std::string temporary = path + ".tmp";
  std::ofstream out(temporary, std::ios::trunc);
  out << pool.stats().to_prometheus();
  out.close();
  if (!out) {
    const int error = errno;
    std::remove(temporary.c_str());
    return fmt::format("cannot write the --metrics file '{}': {}", temporary,
                       error != 0 ? std::strerror(error) : "the write failed");
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    std::remove(temporary.c_str());
    return fmt::format("cannot put the --metrics file in place as '{}': {}", path, std::strerror(error));
  }
  return {};
}

// The periodic metrics file: says when writing it starts failing and when
// it works again, not at every interval.
class MetricsWriter {
 public:
  MetricsWriter(Pool& pool, const std::string& path) : pool_(pool), path_(path) {}

  // Writes the file; false (and said once) when it failed.
  bool write() {
    const std::string failed = write_metrics(pool_, path_);
    if (failed.empty() && failing_) {
      say("seedpool: the --metrics file '{}' is written again\n", path_);
    } else if (!failed.empty() && !failing_) {
      say("seedpool: {}; tried again at every interval\n", failed);
    }
    failing_ = !failed.empty();
    return !failing_;
  }

 private:
  Pool& pool_;
  const std::string& path_;
  bool failing_ = false;
};

// Takes SIGINT, SIGTERM and SIGHUP (blocked in every thread) for the whole
// run, start included: the first records the stop, which wakes the stdin
// reader, and shuts the pool down, which ends a start in progress and lets
// calls in flight finish within the shutdown grace; a second one ends the
// grace at once (the calls in flight fail with pool_shutting_down, the
// workers are stopped). SIGUSR2 only ends the watcher.
class SignalWatcher {
 public:
  // Throws std::system_error when the thread cannot be created.
  SignalWatcher(World& world, Pool& pool, StopRequest& stop, const sigset_t& signals)
      : thread_([&world, &pool, &stop, signals] { watch(world, pool, stop, signals); }) {}
  ~SignalWatcher() {
    pthread_kill(thread_.native_handle(), SIGUSR2);
    thread_.join();
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  static void watch(World& world, Pool& pool, StopRequest& stop, const sigset_t& signals) {
    int received = 0;
    if (sigwait(&signals, &received) != 0 || received == SIGUSR2) {
      return;
    }
    stop.request(received);
    say("\nseedpool: signal {}: shutting down (another signal ends the calls in flight at once)\n", received);
    std::thread shutdown;
    try {
      shutdown = std::thread([&pool] { (void)pool.shutdown(); });
    } catch (const std::system_error&) {
      (void)pool.shutdown();  // no thread to spare: the grace runs its course
      return;
    }
    if (sigwait(&signals, &received) == 0 && received != SIGUSR2) {
      say("\nseedpool: signal {} again: ending the calls in flight now\n", received);
      (void)pool.shutdown(world.now());
    }
    shutdown.join();
  }

  std::thread thread_;
};

// How long start() waits beyond the workers' own init deadline: long enough
// for a worker that hangs in init to be failed by its init_timeout, so that
// the start's error reports it with its own reason and stderr tail rather
// than as "still initializing".
constexpr Duration start_deadline_margin = seconds(1);

// Starts the pool; Pool::start itself starts a task, which may be refused.
Status start_pool(World& world, Pool& pool, const RunOptions& o) {
  try {
    return pool.start(world.now() + o.pool.init_timeout + start_deadline_margin);
  } catch (const std::system_error& e) {
    return Error{ErrorCode::launch_failed, fmt::format("cannot start the pool's task: {}", e.what()), {}};
  }
}

// A failed start: the error names every worker, each with its own stderr
// tail (Pool::start says so).
void print_start_failure(const Error& error) { say("seedpool: {}\n", error.describe()); }

// The job itself, from the start of the pool to its shutdown; the exit status.
int run_job(World& world, Pool& pool, const RunOptions& o, StopRequest& stop) {
  const auto started_at = Clock::now();
  if (Status started = start_pool(world, pool, o); !started) {
    print_start_failure(started.error());
    (void)pool.shutdown();
    return 1;
  }
  if (o.pool.init == InitMode::lazy) {
    say("seedpool: pool of '{}' started; lazy init: workers start with the first calls\n", o.pool.command.program);
  } else {
    say("seedpool: {} workers of '{}' ready in {:.0f} ms\n", o.pool.min_ready, o.pool.command.program,
        std::chrono::duration<double, std::milli>(Clock::now() - started_at).count());
  }
  Counts counts;
  const bool tty = isatty(STDERR_FILENO) != 0;
  MetricsWriter metrics(pool, o.metrics_path);
  auto last_metrics = Clock::now();
  const auto job_start = Clock::now();
  auto tick = [&] {
    if (!o.metrics_path.empty() && Clock::now() - last_metrics >= std::chrono::nanoseconds(o.metrics_interval.ns())) {
      (void)metrics.write();
      last_metrics = Clock::now();
    }
    if (o.status_line) {
      const double t = std::chrono::duration<double>(Clock::now() - job_start).count();
      say("{}calls ok {}  failed {}  {:.0f}/s{}", tty ? "\r" : "", counts.ok.load(), counts.failed.load(),
          static_cast<double>(counts.ok.load() + counts.failed.load()) / t, tty ? "   " : "\n");
    }
  };
  const Status job = o.load.calls > 0 ? run_load(world, pool, o, stop, counts, tick)
                                      : run_stdin(world, pool, o, stop, counts, tick);
  const double wall = std::chrono::duration<double>(Clock::now() - job_start).count();
  if (o.status_line && tty) {
    say("\n");
  }
  if (!job) {
    say("seedpool: {}\n", job.error().message);
  }
  const Status stopped = pool.shutdown();
  print_stats(pool.stats(), wall);
  // The last figures must reach the file: a failure here fails the run.
  const bool metrics_written = o.metrics_path.empty() || metrics.write();
  if (!stopped) {
    say("seedpool: shutdown: {}\n", stopped.error().describe());
  }
  return job && stopped && metrics_written && counts.failed.load() == 0 ? 0 : 1;
}

}  // namespace

int run_pool(World& world, const RunOptions& o, const sigset_t& stop_signals) {
  WorkerLog log(!o.quiet_workers);
  auto created = Pool::create(world, o.pool, PoolHooks{.telemetry = nullptr, .log = &log});
  if (!created) {
    say("seedpool: {}\n", created.error().describe());
    return 2;
  }
  Pool& pool = *created.value();
  // A --metrics file that cannot be written is found before any worker
  // starts (a missing directory, a directory given as the file).
  if (!o.metrics_path.empty()) {
    if (const std::string failed = write_metrics(pool, o.metrics_path); !failed.empty()) {
      say("seedpool run: {}\n", failed);
      return 2;
    }
  }
  int status = 1;
  try {
    StopRequest stop;
    const SignalWatcher watcher(world, pool, stop, stop_signals);
    status = run_job(world, pool, o, stop);
    // Interrupted, or stdout went away: the shell's convention (128 + the
    // signal; SIGPIPE for a closed stdout), so that a script sees the job
    // did not run to its end.
    status = stop.signal() != 0 ? 128 + stop.signal() : status;
  } catch (const std::system_error& e) {
    say("seedpool: cannot watch for signals: {}\n", e.what());
  }
  (void)pool.shutdown();
  return status;
}

}  // namespace seedpool::tool
