#include "jobs.hpp"

#include <seedpool/core/channel.hpp>
#include <seedpool/core/pool.hpp>

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace seedpool::tool {
namespace {

using Clock = std::chrono::steady_clock;

class StderrForwarder final : public LogSink {
 public:
  void on_stderr(std::string_view pool, WorkerRef worker, std::string_view line) override {
    std::lock_guard lock(mutex_);
    fmt::print(stderr, "[{}/{}] {}\n", pool, worker.to_string(), line);
  }

 private:
  std::mutex mutex_;
};

struct Counts {
  std::atomic<std::uint64_t> ok{0};
  std::atomic<std::uint64_t> failed{0};
};

std::string one_line(const Error& e) {
  const std::string& m = e.message;
  return fmt::format("ERROR {}: {}", to_string(e.code), m.substr(0, m.find('\n')));
}

// Writes `text` and a newline to stdout, every byte of it: a reply may hold
// NUL bytes, which the C string functions would cut it at.
void write_line(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

ExecuteOptions execute_options(const RunOptions& o) {
  return ExecuteOptions{std::nullopt, o.kind.affinity_key, o.kind.affinity_mode};
}

// Generated load: `concurrency` callers share `calls` calls (no more callers
// than calls: the others would have nothing to do).
void run_load(World& world, Pool& pool, const RunOptions& o, Counts& counts,
              const std::function<void()>& tick) {
  const std::uint64_t callers = std::min(o.load.concurrency, o.load.calls);
  auto remaining = std::make_shared<std::atomic<std::uint64_t>>(o.load.calls);
  Channel<int> done(world, "load-done", callers);
  for (std::uint64_t c = 0; c < callers; ++c) {
    world.spawn(fmt::format("load-{}", c), [&, remaining] {
      for (std::uint64_t n = remaining->load(); n > 0; n = remaining->load()) {
        if (!remaining->compare_exchange_weak(n, n - 1)) {
          continue;
        }
        Result<std::string> reply = pool.execute(o.load.payload, execute_options(o));
        (reply ? counts.ok : counts.failed).fetch_add(1);
      }
      (void)done.send(1);
    });
  }
  for (std::uint64_t finished = 0; finished < callers;) {
    if (done.receive(world.now() + milliseconds(500))) {
      ++finished;
    }
    tick();
  }
}

// Payloads from stdin, one per line; replies printed in input order.
void run_stdin(World& world, Pool& pool, const RunOptions& o, Counts& counts, const std::function<void()>& tick) {
  const std::uint64_t concurrency = o.concurrency != 0 ? o.concurrency : o.pool.size.max;
  using Item = std::pair<std::uint64_t, std::string>;
  using Answer = std::pair<std::uint64_t, Result<std::string>>;
  Channel<Item> input(world, "stdin-lines", concurrency);
  Channel<Answer> output(world, "replies", concurrency * 2);
  Channel<int> done(world, "callers-done", concurrency + 1);
  for (std::uint64_t c = 0; c < concurrency; ++c) {
    world.spawn(fmt::format("caller-{}", c), [&] {
      while (Received<Item> item = input.receive()) {
        Result<std::string> reply = pool.execute(std::move(item.value->second), execute_options(o));
        (reply ? counts.ok : counts.failed).fetch_add(1);
        (void)output.send(Answer{item.value->first, std::move(reply)});
      }
      (void)done.send(1);
    });
  }
  world.spawn("printer", [&] {
    std::map<std::uint64_t, Result<std::string>> early;  // at most concurrency * 3 entries
    std::uint64_t next = 0;
    while (Received<Answer> answer = output.receive()) {
      early.emplace(answer.value->first, std::move(answer.value->second));
      for (auto it = early.find(next); it != early.end(); it = early.find(++next)) {
        write_line(it->second ? it->second.value() : one_line(it->second.error()));
        if (!it->second && o.quiet_workers) {
          // The stderr tail was not shown as it happened: show it now.
          fmt::print(stderr, "line {}: {}\n", next + 1, it->second.error().describe());
        }
        early.erase(it);
      }
      tick();
    }
    (void)done.send(2);
  });
  std::string line;
  for (std::uint64_t index = 0; std::getline(std::cin, line); ++index) {
    if (input.send(Item{index, line}) != ChannelStatus::ok) {
      break;
    }
  }
  input.close();
  for (std::uint64_t finished = 0; finished < concurrency;) {
    finished += done.receive().value.value_or(0) == 1 ? 1U : 0U;
  }
  output.close();
  (void)done.receive();  // the printer
}

void print_stats(const PoolStats& stats, double wall_seconds) {
  const std::uint64_t calls = stats.total(stats.calls);
  fmt::print(stderr,
             "seedpool: {} calls ({} ok) in {:.2f}s = {:.0f} calls/s; call latency p50 <= {} us, p99 <= {} us\n"
             "seedpool: checkouts {} ({} ok); worker starts {} ({} ok); exits {}; recycles {}; health failures {}\n",
             calls, stats.count(stats.calls, "ok"), wall_seconds, static_cast<double>(calls) / wall_seconds,
             stats.call_duration.quantile_bound(50).ns() / 1000, stats.call_duration.quantile_bound(99).ns() / 1000,
             stats.total(stats.checkouts), stats.count(stats.checkouts, "ok"), stats.total(stats.inits),
             stats.count(stats.inits, "ok"), stats.worker_exits, stats.recycles, stats.health_failures);
  for (const auto& [outcome, n] : stats.calls) {
    if (outcome != "ok") {
      fmt::print(stderr, "seedpool:   calls {}: {}\n", outcome, n);
    }
  }
}

void write_metrics(Pool& pool, const std::string& path) {
  const std::string temporary = path + ".tmp";
  std::ofstream(temporary) << pool.stats().to_prometheus();
  std::rename(temporary.c_str(), path.c_str());
}

}  // namespace

int run_pool(World& world, const RunOptions& o, const sigset_t& stop_signals) {
  StderrForwarder forwarder;
  auto created = Pool::create(world, o.pool, PoolHooks{nullptr, o.quiet_workers ? nullptr : &forwarder});
  if (!created) {
    fmt::print(stderr, "seedpool: {}\n", created.error().describe());
    return 2;
  }
  Pool& pool = *created.value();
  const auto started_at = Clock::now();
  if (Status started = pool.start(); !started) {
    fmt::print(stderr, "seedpool: {}\n", started.error().describe());
    (void)pool.shutdown();
    return 1;
  }
  fmt::print(stderr, "seedpool: {} workers of '{}' ready in {:.0f} ms\n", o.pool.min_ready, o.pool.command.program,
             std::chrono::duration<double, std::milli>(Clock::now() - started_at).count());

  std::thread signal_watcher([&pool, stop_signals] {
    int received = 0;
    if (sigwait(&stop_signals, &received) == 0 && received != SIGUSR2) {
      fmt::print(stderr, "\nseedpool: signal {}: shutting down\n", received);
      (void)pool.shutdown();
    }
  });

  Counts counts;
  const bool tty = isatty(STDERR_FILENO) != 0;
  auto last_metrics = Clock::now();
  const auto job_start = Clock::now();
  auto tick = [&] {
    if (!o.metrics_path.empty() && Clock::now() - last_metrics >= std::chrono::nanoseconds(o.metrics_interval.ns())) {
      write_metrics(pool, o.metrics_path);
      last_metrics = Clock::now();
    }
    if (o.status_line) {
      const double t = std::chrono::duration<double>(Clock::now() - job_start).count();
      fmt::print(stderr, "{}calls ok {}  failed {}  {:.0f}/s{}", tty ? "\r" : "", counts.ok.load(),
                 counts.failed.load(), static_cast<double>(counts.ok.load() + counts.failed.load()) / t,
                 tty ? "   " : "\n");
    }
  };
  if (o.load.calls > 0) {
    run_load(world, pool, o, counts, tick);
  } else {
    run_stdin(world, pool, o, counts, tick);
  }
  const double wall = std::chrono::duration<double>(Clock::now() - job_start).count();
  if (o.status_line && tty) {
    fmt::print(stderr, "\n");
  }
  const Status stopped = pool.shutdown();
  print_stats(pool.stats(), wall);
  if (!o.metrics_path.empty()) {
    write_metrics(pool, o.metrics_path);
  }
  // Wake the watcher so that it can be joined.
  pthread_kill(signal_watcher.native_handle(), SIGUSR2);
  signal_watcher.join();
  if (!stopped) {
    fmt::print(stderr, "seedpool: shutdown: {}\n", stopped.error().describe());
    return 1;
  }
  return counts.failed.load() == 0 ? 0 : 1;
}

}  // namespace seedpool::tool
