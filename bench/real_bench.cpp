// seedpool-real-bench: the real pool (RealWorld: threads, OS processes and
// pipes) against baselines measured in the same run.
//
//   BM_RawPipeRoundTrip/echo     the floor: a call frame written and its reply
//                                read over raw pipes to seedpool-echo-worker;
//                                no pool, no thread but the caller
//   BM_PoolLeaseCall/echo        Lease::call through a 1-worker pool to the
//                                same program
//   BM_PoolExecute/echo          Pool::execute (checkout + call + release)
//                                through the same kind of pool
//   BM_ThreadHopRoundTrip        a message to a RealWorld task and back over
//                                two Channels: the cost of the thread hops
//                                a pool call is made of
//   BM_RawPipeRoundTrip/python,  the same two round trips with the Python
//   BM_PoolLeaseCall/python      echo worker: what one Python call costs
//   BM_SeedpoolThroughput/*      trivial calls by several caller threads
//                                through a pool of Python echo workers:
//                                /execute with Pool::execute for each call,
//                                /lease with one held lease per caller
//   BM_ProcessPoolExecutor       the same calls on Python's
//                                ProcessPoolExecutor with as many workers
//                                (bench/process_pool_baseline.py)
//   BM_PoolEagerStart/python/N   Pool::start() of N Python echo workers
//   BM_RawParallelStart/python/N the floor: spawn and handshake of N Python
//                                echo workers without the pool
//   BM_PoolEagerStart/echo/N,    the same with the C++ echo worker, whose own
//   BM_RawParallelStart/echo/N   start costs little: the pool's share
//   BM_PoolEagerStart/echo-waiting-init/N  the C++ echo worker with an init
//                                that sleeps 50 ms: starts that wait, not
//                                compute, overlap whatever the CPU count
//
// Round-trip benchmarks also report this process's context switches and CPU
// time per call (getrusage), which show where a pool call's time goes; the
// throughput benchmarks report the workers' too (/proc).
//
// Every latency is taken per call with steady_clock, so percentiles come from
// the samples themselves. Repetitions of all benchmarks are interleaved in
// random order (--benchmark_enable_random_interleaving), so that a burst of
// load from a neighbour falls on the baseline as often as on the pool, and the
// summary reports medians over repetitions and the ratios between them.
//
// Targets: round trip p50 pool / raw <= 1.5, through a held lease and
// through Pool::execute alike; throughput seedpool / ProcessPoolExecutor >= 10
// on held leases and >= 5 with Pool::execute by 8 caller threads; eager
// start of 8 Python workers <= 1.5 x the start of one. The binary reports
// against them and exits 0 whether or not they are met; a wrong reply aborts.
//
// Flags: every --benchmark_* flag of Google Benchmark, plus --quick: fewer
// calls and repetitions (about ten seconds instead of about twenty on a
// busy 2-CPU machine).

#include "figures_reporter.hpp"
#include "piped_child.hpp"
#include "process_pool_baseline.hpp"
#include "raw_worker.hpp"
#include "samples.hpp"

#include <seedpool/core/assert.hpp>
#include <seedpool/core/pool.hpp>
#include <seedpool/real/real_world.hpp>

#include "bench_args.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#ifndef SEEDPOOL_ECHO_WORKER
#error "SEEDPOOL_ECHO_WORKER must name the seedpool-echo-worker executable"
#endif
#ifndef SEEDPOOL_PYTHON_WORKERS
#error "SEEDPOOL_PYTHON_WORKERS must name the workers/python directory"
#endif
#ifndef SEEDPOOL_POOL_BASELINE
#error "SEEDPOOL_POOL_BASELINE must name bench/process_pool_baseline.py"
#endif

namespace {

using Clock = std::chrono::steady_clock;
using seedpool::Error;
using seedpool::Lease;
using seedpool::Pool;
using seedpool::PoolConfig;
using seedpool::Result;
using seedpool::Status;
using seedpool::WorkerCommand;
using seedpool::bench::FiguresReporter;
using seedpool::bench::RawWorker;
using seedpool::real::RealWorld;

// The interpreter for the Python workers and the baseline script. It is
// resolved once to the executable itself (sys.executable), because the
// python3 found in PATH may be a launcher script (pyenv's shim runs bash and
// several helpers) whose own start-up would be charged to every worker start.
constexpr std::string_view python_in_path = "python3";

// A call of the reference workers' convention. The C++ echo worker returns it
// unchanged; the Python echo handler returns its args as JSON.
constexpr std::string_view echo_payload = R"({"handler":"echo","args":{"x":1}})";

// Calls made before any timing, so that both sides have paged in their code
// and warmed their allocators.
constexpr int warmup_calls = 200;

// Throughput: the same worker count on both sides; callers beyond the worker
// count keep every worker fed while others are between calls.
constexpr std::size_t throughput_workers = 4;
constexpr std::size_t throughput_callers = 8;

// Eager start: the pool sizes compared.
constexpr std::int64_t start_size_one = 1;
constexpr std::int64_t start_size_many = 8;

std::int64_t cpu_count() { return std::max<std::int64_t>(1, std::thread::hardware_concurrency()); }

// Targets, reported against, never enforced.
constexpr double round_trip_ratio_target = 1.5;
constexpr double lease_throughput_ratio_target = 10.0;
constexpr double execute_throughput_ratio_target = 5.0;
constexpr double start_ratio_target = 1.5;

// How much each benchmark does; --quick picks the smaller plan.
struct Plan {
  std::int64_t round_trip_calls;  // timed calls per repetition
  int round_trip_repetitions;
  std::size_t throughput_calls;   // per repetition, on each side
  int throughput_repetitions;
  int start_repetitions;          // per pool size; one start each
};
// Throughput makes 20,000 calls a repetition: at 4,000 the seedpool side
// ran some 50 ms, and its repetitions spread by a quarter on a shared VM.
constexpr Plan full_plan{5000, 3, 20000, 3, 5};
constexpr Plan quick_plan{1000, 3, 1000, 3, 3};
// Python round trips are about ten times slower; they take fewer calls.
constexpr std::int64_t python_calls_divisor = 5;

// ---------------------------------------------------------------------------
// Workers and pools.

// A worker program and what it answers to echo_payload.
struct WorkerKind {
  WorkerCommand command;
  std::string_view reply;
};

// seedpool-echo-worker returns the payload unchanged.
WorkerKind cpp_echo() { return WorkerKind{WorkerCommand{SEEDPOOL_ECHO_WORKER, {}, {}, {}}, echo_payload}; }

// The same worker with an init that waits rather than computes (as one that
// loads a model over the network does): shows whether starts overlap when
// the machine's CPUs are not what bounds them.
constexpr int waiting_init_ms = 50;
WorkerKind cpp_echo_waiting_init() {
  return WorkerKind{
      WorkerCommand{SEEDPOOL_ECHO_WORKER, {"--slow-init", std::to_string(waiting_init_ms)}, {}, {}}, echo_payload};
}

// examples/echo_worker.py returns the call's args, as json.dumps writes them.
WorkerKind python_echo(const std::string& python) {
  const std::string script = std::string(SEEDPOOL_PYTHON_WORKERS) + "/examples/echo_worker.py";
  return WorkerKind{WorkerCommand{python, {script}, {}, {}}, R"({"x": 1})"};
}

// The interpreter python3 in PATH runs, as an absolute path; python3 itself
// when that cannot be found out (the benchmarks then say why they fail).
std::string resolve_python() {
  const std::vector<std::string> argv{std::string(python_in_path), "-c", "import sys; print(sys.executable)"};
  Result<seedpool::bench::PipedChild> child =
      seedpool::bench::spawn_piped(argv, {.stdin_pipe = false, .stderr_to_null = true});
  if (!child) {
    return std::string(python_in_path);
  }
  std::string out;
  const bool read = seedpool::bench::read_to_end(child.value().stdout_fd, out);
  ::close(child.value().stdout_fd);
  const int status = seedpool::bench::wait_or_kill(child.value().pid, seedpool::bench::baseline_wait_ms_max);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
    out.pop_back();
  }
  const bool exited_ok = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return read && exited_ok && out.starts_with('/') ? out : std::string(python_in_path);
}

std::vector<std::string> argv_of(const WorkerCommand& command) {
  std::vector<std::string> argv{command.program};
  argv.insert(argv.end(), command.args.begin(), command.args.end());
  return argv;
}

// An eager pool of exactly `workers` workers whose start() waits for all of
// them. Everything else keeps its production default.
PoolConfig pool_config(std::string name, WorkerCommand command, std::size_t workers) {
  PoolConfig config;
  config.name = std::move(name);
  config.command = std::move(command);
  config.size.min = workers;
  config.size.max = workers;
  config.init = seedpool::InitMode::eager;
  config.min_ready = workers;
  return config;
}

Result<std::unique_ptr<Pool>> started_pool(RealWorld& world, PoolConfig config) {
  Result<std::unique_ptr<Pool>> created = Pool::create(world, std::move(config));
  if (!created) {
    return created.error();
  }
  if (Status started = created.value()->start(); !started) {
    return started.error();
  }
  return created;
}

void skip(benchmark::State& state, const Error& error) { state.SkipWithError(error.describe().c_str()); }

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// What this process has used so far, all threads together: context switches
// (voluntary: a thread blocked; involuntary: it was preempted), which is what
// a thread hop costs, and CPU time in microseconds. Child processes (the
// workers) are not included.
struct Usage {
  std::int64_t switches = 0;
  double cpu_us = 0;
};

Usage process_usage() {
  rusage usage{};
  SEEDPOOL_ASSERT(::getrusage(RUSAGE_SELF, &usage) == 0);
  auto micros = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec); };
  return Usage{static_cast<std::int64_t>(usage.ru_nvcsw) + static_cast<std::int64_t>(usage.ru_nivcsw),
               micros(usage.ru_utime) + micros(usage.ru_stime)};
}

// What this process's children (the pool's workers, running) have used so
// far, read from /proc: CPU time from each child's schedstat (nanoseconds,
// where getrusage would see a child only once it is reaped) and context
// switches from its status. A child that starts or ends in between skews the
// difference: measured over a batch of calls on one set of workers.
Usage children_usage() {
  Usage total;
  const std::string parent = std::to_string(::getpid());
  for (const std::filesystem::directory_entry& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::ifstream status(entry.path() / "status");
    std::string line;
    bool child = false;
    std::int64_t switches = 0;
    while (std::getline(status, line)) {
      std::istringstream fields(line);
      std::string key;
      std::string value;
      fields >> key >> value;
      if (key == "PPid:") {
        child = value == parent;
      } else if (key == "voluntary_ctxt_switches:" || key == "nonvoluntary_ctxt_switches:") {
        switches += std::stoll(value);
      }
    }
    double ns = 0;
    if (child && (std::ifstream(entry.path() / "schedstat") >> ns)) {
      total.switches += switches;
      total.cpu_us += ns / 1e3;
    }
  }
  return total;
}

// Sets the per-call usage counters from the usage at the start and `calls`;
// with `workers_before`, the workers' too.
void report_usage_per_call(benchmark::State& state, const Usage& before, std::size_t calls,
                           const std::optional<Usage>& workers_before = std::nullopt) {
  const Usage after = process_usage();
  const auto n = static_cast<double>(calls);
  state.counters["switches_per_call"] = static_cast<double>(after.switches - before.switches) / n;
  state.counters["cpu_us_per_call"] = (after.cpu_us - before.cpu_us) / n;
  if (workers_before) {
    const Usage workers = children_usage();
    state.counters["worker_switches_per_call"] = static_cast<double>(workers.switches - workers_before->switches) / n;
    state.counters["worker_cpu_us_per_call"] = (workers.cpu_us - workers_before->cpu_us) / n;
  }
}

// ---------------------------------------------------------------------------
// Call round trip.

// Runs `call` once per benchmark iteration, timing each with steady_clock
// (the iteration's manual time), and reports the p50 and p99 in
// microseconds and this process's usage per call. A failed call skips the
// benchmark with the reason; a wrong reply aborts.
template <class Call>
void time_each_call(benchmark::State& state, std::string_view expected, Call&& call) {
  std::vector<double> micros;
  micros.reserve(static_cast<std::size_t>(state.max_iterations));
  const Usage before = process_usage();
  for (auto _ : state) {
    const Clock::time_point start = Clock::now();
    Result<std::string> reply = call();
    const double seconds = seconds_since(start);
    if (!reply) {
      skip(state, reply.error());
      break;
    }
    SEEDPOOL_ASSERT_MSG(reply.value() == expected, "the echo worker answered with another payload");
    state.SetIterationTime(seconds);
    micros.push_back(seconds * 1e6);
  }
  if (!micros.empty()) {
    state.counters["p50_us"] = seedpool::bench::quantile(micros, 0.50);
    state.counters["p99_us"] = seedpool::bench::quantile(micros, 0.99);
    report_usage_per_call(state, before, micros.size());
  }
}

// Keeps the calling thread, and so the threads and processes started from
// it, on one CPU for its lifetime. Round trips are measured that way, the
// raw pipe and the pool alike: on a virtual machine a wake-up that lands on
// an idle second CPU costs some 30 us more than one on the waker's CPU, and
// which of the two a run gets is chance, which made single runs bimodal
// (5 us or 40 us p50 for the same code).
class OnOneCpu {
 public:
  OnOneCpu() {
    if (::sched_getaffinity(0, sizeof saved_, &saved_) != 0) {
      return;
    }
    for (std::size_t cpu = 0; cpu < std::size_t{CPU_SETSIZE}; ++cpu) {
      if (CPU_ISSET(cpu, &saved_)) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        pinned_ = ::sched_setaffinity(0, sizeof one, &one) == 0;
        return;
      }
    }
  }
  ~OnOneCpu() {
    if (pinned_) {
      (void)::sched_setaffinity(0, sizeof saved_, &saved_);
    }
  }
  OnOneCpu(const OnOneCpu&) = delete;
  OnOneCpu& operator=(const OnOneCpu&) = delete;

 private:
  cpu_set_t saved_{};
  bool pinned_ = false;
};

void BM_RawPipeRoundTrip(benchmark::State& state, const WorkerKind& kind) {
  const OnOneCpu pinned;
  Result<std::unique_ptr<RawWorker>> spawned = RawWorker::spawn(argv_of(kind.command));
  if (!spawned) {
    return skip(state, spawned.error());
  }
  RawWorker& worker = *spawned.value();
  if (Status ready = worker.handshake(1); !ready) {
    return skip(state, ready.error());
  }
  const std::string payload(echo_payload);
  for (int i = 0; i < warmup_calls; ++i) {
    SEEDPOOL_ASSERT(worker.call(payload).ok());
  }
  time_each_call(state, kind.reply, [&worker, &payload] { return worker.call(payload); });
}

// Two thread hops on RealWorld channels: the caller sends to a task, which
// sends straight back, as the pool's caller and pool task do once per call.
// No process, no pipe: the cost of handing a message to a blocked thread.
void BM_ThreadHopRoundTrip(benchmark::State& state) {
  const OnOneCpu pinned;
  RealWorld world;
  auto to_task = std::make_shared<seedpool::Channel<std::string>>(world, "to-task", 1);
  auto to_caller = std::make_shared<seedpool::Channel<std::string>>(world, "to-caller", 1);
  world.spawn("hop", [to_task, to_caller] {
    while (seedpool::Received<std::string> got = to_task->receive()) {
      SEEDPOOL_ASSERT(to_caller->send(std::move(*got.value)) == seedpool::ChannelStatus::ok);
    }
  });
  auto hop = [&to_task, &to_caller]() -> Result<std::string> {
    SEEDPOOL_ASSERT(to_task->send(std::string(echo_payload)) == seedpool::ChannelStatus::ok);
    return std::move(*to_caller->receive().value);
  };
  for (int i = 0; i < warmup_calls; ++i) {
    (void)hop();
  }
  time_each_call(state, echo_payload, hop);
  to_task->close();
}

void BM_PoolLeaseCall(benchmark::State& state, const WorkerKind& kind) {
  const OnOneCpu pinned;
  RealWorld world;
  Result<std::unique_ptr<Pool>> pool = started_pool(world, pool_config("bench-lease", kind.command, 1));
  if (!pool) {
    return skip(state, pool.error());
  }
  Result<Lease> lease = pool.value()->checkout();
  if (!lease) {
    return skip(state, lease.error());
  }
  for (int i = 0; i < warmup_calls; ++i) {
    SEEDPOOL_ASSERT(lease.value().call(std::string(echo_payload)).ok());
  }
  time_each_call(state, kind.reply, [&lease] { return lease.value().call(std::string(echo_payload)); });
  lease.value().release();
  (void)pool.value()->shutdown();
}

void BM_PoolExecute(benchmark::State& state) {
  const OnOneCpu pinned;
  RealWorld world;
  Result<std::unique_ptr<Pool>> pool = started_pool(world, pool_config("bench-execute", cpp_echo().command, 1));
  if (!pool) {
    return skip(state, pool.error());
  }
  Pool& p = *pool.value();
  for (int i = 0; i < warmup_calls; ++i) {
    SEEDPOOL_ASSERT(p.execute(std::string(echo_payload)).ok());
  }
  time_each_call(state, echo_payload, [&p] { return p.execute(std::string(echo_payload)); });
  (void)p.shutdown();
}

// ---------------------------------------------------------------------------
// Throughput with Python workers.

struct Batch {
  double seconds = 0;
  std::optional<Error> failure;  // the first failed or wrong call, if any
};

// Makes `calls` calls through `pool` from `callers` threads, each taking the
// next call number until none is left; call i sends {"x": i} and must get it
// back. Timed from the release of the callers to the last reply.
// How the callers of run_calls reach a worker.
enum class CallMode {
  execute,  // Pool::execute per call: checkout, call, release
  lease,    // each caller checks out one lease first and makes all its calls on it
};

Batch run_calls(Pool& pool, std::size_t calls, std::size_t callers, CallMode mode) {
  std::atomic<std::size_t> next{0};
  std::mutex failure_mutex;
  Batch batch;
  std::latch go(1);
  auto fail = [&](Error error) {
    std::lock_guard<std::mutex> lock(failure_mutex);
    if (!batch.failure) {
      batch.failure = std::move(error);
    }
  };
  auto caller = [&] {
    Result<Lease> lease = mode == CallMode::lease ? pool.checkout() : Result<Lease>(Lease());
    if (!lease) {
      fail(lease.error());
    }
    go.wait();
    for (std::size_t i = next.fetch_add(1); i < calls && lease; i = next.fetch_add(1)) {
      std::string payload = fmt::format(R"({{"handler":"echo","args":{{"x":{}}}}})", i);
      Result<std::string> reply =
          mode == CallMode::lease ? lease.value().call(std::move(payload)) : pool.execute(std::move(payload));
      if (reply && reply.value() == fmt::format(R"({{"x": {}}})", i)) {
        continue;
      }
      fail(reply ? Error{seedpool::ErrorCode::protocol_error, fmt::format("call {} answered '{}'", i, reply.value()),
                         {}}
                 : reply.error());
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < callers; ++t) {
    threads.emplace_back(caller);
  }
  const Clock::time_point start = Clock::now();
  go.count_down();
  for (std::thread& thread : threads) {
    thread.join();
  }
  batch.seconds = seconds_since(start);
  return batch;
}

void BM_SeedpoolThroughput(benchmark::State& state, const WorkerKind& kind, std::size_t calls, CallMode mode) {
  // One lease per worker in lease mode; more callers than workers otherwise,
  // so that a worker is never idle for want of a caller.
  const std::size_t callers = mode == CallMode::lease ? throughput_workers : throughput_callers;
  RealWorld world;
  Result<std::unique_ptr<Pool>> pool =
      started_pool(world, pool_config("bench-throughput", kind.command, throughput_workers));
  if (!pool) {
    return skip(state, pool.error());
  }
  if (Batch warm = run_calls(*pool.value(), warmup_calls, callers, mode); warm.failure) {
    return skip(state, *warm.failure);
  }
  double calls_per_second = 0;
  const Usage before = process_usage();
  const Usage workers_before = children_usage();
  for (auto _ : state) {
    const Batch batch = run_calls(*pool.value(), calls, callers, mode);
    if (batch.failure) {
      skip(state, *batch.failure);
      break;
    }
    state.SetIterationTime(batch.seconds);
    calls_per_second = static_cast<double>(calls) / batch.seconds;
  }
  state.counters["calls_per_second"] = calls_per_second;
  report_usage_per_call(state, before, calls, workers_before);
  (void)pool.value()->shutdown();
}

void BM_ProcessPoolExecutor(benchmark::State& state, const std::string& python, std::size_t calls) {
  const seedpool::bench::BaselineRun run{python, SEEDPOOL_POOL_BASELINE, throughput_workers, calls};
  double calls_per_second = 0;
  for (auto _ : state) {
    Result<seedpool::bench::BaselineFigures> figures = seedpool::bench::run_process_pool_baseline(run);
    if (!figures) {
      skip(state, figures.error());
      break;
    }
    state.SetIterationTime(figures.value().seconds);
    calls_per_second = figures.value().calls_per_second;
  }
  state.counters["calls_per_second"] = calls_per_second;
}

// ---------------------------------------------------------------------------
// Eager start at scale.

// One iteration: Pool::create (untimed), start() (timed: it returns once
// every worker has answered init), shutdown (untimed).
void BM_PoolEagerStart(benchmark::State& state, const WorkerKind& kind) {
  const auto size = static_cast<std::size_t>(state.range(0));
  RealWorld world;
  for (auto _ : state) {
    Result<std::unique_ptr<Pool>> pool = Pool::create(world, pool_config("bench-start", kind.command, size));
    SEEDPOOL_ASSERT_MSG(pool.ok(), "the benchmark's pool configuration is invalid");
    const Clock::time_point start = Clock::now();
    const Status started = pool.value()->start();
    const double seconds = seconds_since(start);
    (void)pool.value()->shutdown();
    if (!started) {
      skip(state, started.error());
      break;
    }
    state.SetIterationTime(seconds);
    state.counters["start_ms"] = seconds * 1e3;
  }
}

// One iteration: spawn `size` workers one after another, send each its init,
// then wait for every ready; no pool, no threads. Stopping them is untimed.
void BM_RawParallelStart(benchmark::State& state, const WorkerKind& kind) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const std::vector<std::string> argv = argv_of(kind.command);
  for (auto _ : state) {
    std::vector<std::unique_ptr<RawWorker>> workers;
    std::optional<Error> failure;
    const Clock::time_point start = Clock::now();
    for (std::size_t i = 0; i < size && !failure; ++i) {
      Result<std::unique_ptr<RawWorker>> spawned = RawWorker::spawn(argv);
      if (!spawned) {
        failure = spawned.error();
      } else if (Status sent = spawned.value()->send_init(i + 1); !sent) {
        failure = sent.error();
      } else {
        workers.push_back(std::move(spawned).value());
      }
    }
    for (std::size_t i = 0; i < workers.size() && !failure; ++i) {
      if (Status ready = workers[i]->await_ready(); !ready) {
        failure = ready.error();
      }
    }
    const double seconds = seconds_since(start);
    workers.clear();
    if (failure) {
      skip(state, *failure);
      break;
    }
    state.SetIterationTime(seconds);
    state.counters["start_ms"] = seconds * 1e3;
  }
}

void register_benchmarks(const Plan& plan, const std::string& python) {
  using benchmark::RegisterBenchmark;
  const std::int64_t python_calls = plan.round_trip_calls / python_calls_divisor;
  const std::pair<benchmark::internal::Benchmark*, std::int64_t> round_trips[] = {
      {RegisterBenchmark("BM_RawPipeRoundTrip/echo", BM_RawPipeRoundTrip, cpp_echo()), plan.round_trip_calls},
      {RegisterBenchmark("BM_PoolLeaseCall/echo", BM_PoolLeaseCall, cpp_echo()), plan.round_trip_calls},
      {RegisterBenchmark("BM_PoolExecute/echo", BM_PoolExecute), plan.round_trip_calls},
      {RegisterBenchmark("BM_ThreadHopRoundTrip", BM_ThreadHopRoundTrip), plan.round_trip_calls},
      {RegisterBenchmark("BM_RawPipeRoundTrip/python", BM_RawPipeRoundTrip, python_echo(python)), python_calls},
      {RegisterBenchmark("BM_PoolLeaseCall/python", BM_PoolLeaseCall, python_echo(python)), python_calls},
  };
  for (const auto& [b, calls] : round_trips) {
    b->Iterations(calls)->Repetitions(plan.round_trip_repetitions)->UseManualTime()->Unit(benchmark::kMicrosecond);
  }
  for (auto* b : {RegisterBenchmark("BM_SeedpoolThroughput/execute", BM_SeedpoolThroughput, python_echo(python),
                                    plan.throughput_calls, CallMode::execute),
                  RegisterBenchmark("BM_SeedpoolThroughput/lease", BM_SeedpoolThroughput, python_echo(python),
                                    plan.throughput_calls, CallMode::lease),
                  RegisterBenchmark("BM_ProcessPoolExecutor", BM_ProcessPoolExecutor, python, plan.throughput_calls)}) {
    b->Iterations(1)->Repetitions(plan.throughput_repetitions)->UseManualTime()->Unit(benchmark::kMillisecond);
  }
  for (auto* b : {RegisterBenchmark("BM_PoolEagerStart/python", BM_PoolEagerStart, python_echo(python)),
                  RegisterBenchmark("BM_RawParallelStart/python", BM_RawParallelStart, python_echo(python)),
                  RegisterBenchmark("BM_PoolEagerStart/echo", BM_PoolEagerStart, cpp_echo()),
                  RegisterBenchmark("BM_RawParallelStart/echo", BM_RawParallelStart, cpp_echo()),
                  RegisterBenchmark("BM_PoolEagerStart/echo-waiting-init", BM_PoolEagerStart,
                                    cpp_echo_waiting_init())}) {
    b->Arg(start_size_one)->Arg(start_size_many)->Iterations(1)->Repetitions(plan.start_repetitions);
    b->UseManualTime()->Unit(benchmark::kMillisecond);
  }
  // As many Python workers as CPUs: how far starts overlap while each still
  // has a CPU of its own.
  if (const std::int64_t cpus = cpu_count(); cpus != start_size_one && cpus != start_size_many) {
    RegisterBenchmark("BM_PoolEagerStart/python", BM_PoolEagerStart, python_echo(python))
        ->Arg(cpus)
        ->Iterations(1)
        ->Repetitions(plan.start_repetitions)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
}

// ---------------------------------------------------------------------------
// The summary across benchmarks.

std::string verdict(bool met) { return met ? "met" : "MISSED"; }

// The 1-minute load average, or "?" where /proc/loadavg cannot be read.
std::string load_average() {
  std::ifstream file("/proc/loadavg");
  std::string first;
  return file >> first ? first : "?";
}

std::string local_time_now() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  char text[32] = "?";
  if (::localtime_r(&now, &local) != nullptr) {
    (void)std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S %Z", &local);
  }
  return text;
}

std::string round_trip_lines(const FiguresReporter& r) {
  const std::optional<double> pool = r.median("BM_PoolLeaseCall/echo:p50_us");
  const std::optional<double> raw = r.median("BM_RawPipeRoundTrip/echo:p50_us");
  if (!pool || !raw) {
    return "  call round trip: not measured\n";
  }
  const double ratio = *pool / *raw;
  std::string out = fmt::format(
      "  call round trip p50: pool {:.1f} us, raw pipe {:.1f} us, ratio {:.2f} (target <= {}: {})\n", *pool, *raw,
      ratio, round_trip_ratio_target, verdict(ratio <= round_trip_ratio_target));
  out += fmt::format("    p99: pool {:.1f} us, raw pipe {:.1f} us; p50 per repetition: pool [{}] us, raw [{}] us\n",
                     r.median("BM_PoolLeaseCall/echo:p99_us").value_or(0),
                     r.median("BM_RawPipeRoundTrip/echo:p99_us").value_or(0),
                     r.values("BM_PoolLeaseCall/echo:p50_us", 1), r.values("BM_RawPipeRoundTrip/echo:p50_us", 1));
  out += fmt::format("    per call in this process: pool {:.1f} context switches and {:.1f} us CPU, raw pipe {:.1f} "
                     "and {:.1f} us\n",
                     r.median("BM_PoolLeaseCall/echo:switches_per_call").value_or(0),
                     r.median("BM_PoolLeaseCall/echo:cpu_us_per_call").value_or(0),
                     r.median("BM_RawPipeRoundTrip/echo:switches_per_call").value_or(0),
                     r.median("BM_RawPipeRoundTrip/echo:cpu_us_per_call").value_or(0));
  out += fmt::format("    one thread-hop round trip (2 hops on RealWorld channels): p50 {:.1f} us, {:.1f} context "
                     "switches\n",
                     r.median("BM_ThreadHopRoundTrip:p50_us").value_or(0),
                     r.median("BM_ThreadHopRoundTrip:switches_per_call").value_or(0));
  if (const std::optional<double> execute = r.median("BM_PoolExecute/echo:p50_us")) {
    const double execute_ratio = *execute / *raw;
    out += fmt::format("    Pool::execute (checkout + call + release) p50 {:.1f} us, p99 {:.1f} us, ratio to raw "
                       "{:.2f} (target <= {}: {}); per call {:.1f} context switches and {:.1f} us CPU\n",
                       *execute, r.median("BM_PoolExecute/echo:p99_us").value_or(0), execute_ratio,
                       round_trip_ratio_target, verdict(execute_ratio <= round_trip_ratio_target),
                       r.median("BM_PoolExecute/echo:switches_per_call").value_or(0),
                       r.median("BM_PoolExecute/echo:cpu_us_per_call").value_or(0));
  }
  const std::optional<double> python_pool = r.median("BM_PoolLeaseCall/python:p50_us");
  const std::optional<double> python_raw = r.median("BM_RawPipeRoundTrip/python:p50_us");
  if (python_pool && python_raw) {
    out += fmt::format("    Python echo worker p50: pool {:.1f} us, raw pipe {:.1f} us, ratio {:.2f}\n", *python_pool,
                       *python_raw, *python_pool / *python_raw);
  }
  return out;
}

std::string throughput_lines(const FiguresReporter& r, const Plan& plan) {
  const std::optional<double> theirs = r.median("BM_ProcessPoolExecutor:calls_per_second");
  if (!theirs || *theirs <= 0) {
    return "  throughput: not measured\n";
  }
  std::string out = fmt::format("  throughput, {} Python workers, {} trivial calls; ProcessPoolExecutor ({} "
                                "executor.submit calls) {:.0f} calls/s, per repetition [{}]\n",
                                throughput_workers, plan.throughput_calls, plan.throughput_calls, *theirs,
                                r.values("BM_ProcessPoolExecutor:calls_per_second", 1));
  // Held leases are the way to stream small calls through the pool (README);
  // a checkout per call has its own, lower target.
  const auto line = [&](const std::string& name, const std::string& how, double target_ratio) {
    const std::optional<double> ours = r.median(name + ":calls_per_second");
    if (!ours) {
      return;
    }
    const double ratio = *ours / *theirs;
    const std::string target =
        fmt::format("target >= {}: {}", target_ratio, verdict(ratio >= target_ratio));
    out += fmt::format("    seedpool, {}: {:.0f} calls/s, ratio {:.2f} ({}); per repetition [{}]; this process per "
                       "call: {:.1f} us CPU, {:.1f} context switches; the workers: {:.1f} us CPU, {:.1f} context switches\n",
                       how, *ours, ratio, target, r.values(name + ":calls_per_second", 1),
                       r.median(name + ":cpu_us_per_call").value_or(0), r.median(name + ":switches_per_call").value_or(0),
                       r.median(name + ":worker_cpu_us_per_call").value_or(0),
                       r.median(name + ":worker_switches_per_call").value_or(0));
  };
  line("BM_SeedpoolThroughput/lease", fmt::format("calls on {} held leases, one per caller thread", throughput_workers),
       lease_throughput_ratio_target);
  line("BM_SeedpoolThroughput/execute", fmt::format("Pool::execute by {} caller threads", throughput_callers),
       execute_throughput_ratio_target);
  return out;
}

// "C ms, D ms, ratio R" for one kind of start, or nullopt when not measured.
std::optional<std::string> start_pair(const FiguresReporter& r, const std::string& name, double* ratio_out) {
  const std::optional<double> one = r.median(fmt::format("{}/{}:time", name, start_size_one));
  const std::optional<double> many = r.median(fmt::format("{}/{}:time", name, start_size_many));
  if (!one || !many) {
    return std::nullopt;
  }
  const double ratio = *many / *one;
  if (ratio_out != nullptr) {
    *ratio_out = ratio;
  }
  return fmt::format("{} worker {:.1f} ms, {} workers {:.1f} ms, ratio {:.2f}", start_size_one, *one * 1e3,
                     start_size_many, *many * 1e3, ratio);
}

std::string start_lines(const FiguresReporter& r) {
  double ratio = 0;
  const std::optional<std::string> pool = start_pair(r, "BM_PoolEagerStart/python", &ratio);
  if (!pool) {
    return "  eager start: not measured\n";
  }
  std::string out = fmt::format("  eager start (Python echo worker): {} (target <= {}: {})\n", *pool, start_ratio_target,
                                verdict(ratio <= start_ratio_target));
  out += fmt::format("    per repetition: 1 worker [{}] ms, 8 workers [{}] ms\n",
                     r.values(fmt::format("BM_PoolEagerStart/python/{}:time", start_size_one), 1e3),
                     r.values(fmt::format("BM_PoolEagerStart/python/{}:time", start_size_many), 1e3));
  const std::optional<double> one = r.median(fmt::format("BM_PoolEagerStart/python/{}:time", start_size_one));
  const std::optional<double> per_cpu = r.median(fmt::format("BM_PoolEagerStart/python/{}:time", cpu_count()));
  if (one && per_cpu && cpu_count() != start_size_one && cpu_count() != start_size_many) {
    out += fmt::format("    as many workers as CPUs ({}): {:.1f} ms, ratio {:.2f} to one\n", cpu_count(), *per_cpu * 1e3,
                       *per_cpu / *one);
  }
  if (const std::optional<std::string> raw = start_pair(r, "BM_RawParallelStart/python", nullptr)) {
    out += fmt::format("    without the pool (spawn + init + ready, one thread): {}\n", *raw);
  }
  if (const std::optional<std::string> echo = start_pair(r, "BM_PoolEagerStart/echo", nullptr)) {
    out += fmt::format("    C++ echo worker through the pool: {}\n", *echo);
  }
  if (const std::optional<std::string> echo = start_pair(r, "BM_RawParallelStart/echo", nullptr)) {
    out += fmt::format("    C++ echo worker without the pool: {}\n", *echo);
  }
  if (const std::optional<std::string> waiting = start_pair(r, "BM_PoolEagerStart/echo-waiting-init", nullptr)) {
    out += fmt::format("    C++ echo worker whose init waits {} ms (no CPU), through the pool: {}\n", waiting_init_ms,
                       *waiting);
  }
  return out;
}

void print_summary(const FiguresReporter& reporter, const Plan& plan, const std::string& load_before,
                   const std::string& python) {
  std::string out = fmt::format("\nseedpool real pool (same run, {}):\n", local_time_now());
  out += fmt::format("  machine: {} CPUs, load average {} before the run, {} after\n",
                     std::thread::hardware_concurrency(), load_before, load_average());
  out += fmt::format("  python: {}\n", python);
  out += round_trip_lines(reporter);
  out += throughput_lines(reporter, plan);
  out += start_lines(reporter);
  for (const auto& [benchmark_name, message] : reporter.errors()) {
    out += fmt::format("  {} failed: {}\n", benchmark_name, message);
  }
  out += "  figures are medians over repetitions run in random order; ratios are between medians of this run\n";
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
}

// The arguments for benchmark::Initialize: `argv` without --quick, with
// random interleaving switched on first so that an explicit flag later on the
// command line overrides it. Sets `quick` when --quick was given.
std::vector<char*> benchmark_arguments(int argc, char** argv, bool& quick) {
  static char interleave[] = "--benchmark_enable_random_interleaving=true";
  std::vector<char*> args = seedpool::bench::without_quick_flag(argc, argv, quick);
  args.insert(args.begin() + 1, interleave);
  args.push_back(nullptr);
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::vector<char*> args = benchmark_arguments(argc, argv, quick);
  int count = static_cast<int>(args.size()) - 1;
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) {
    return 1;
  }
  const Plan& plan = quick ? quick_plan : full_plan;
  const std::string python = resolve_python();
  register_benchmarks(plan, python);
  const std::string load_before = load_average();
  const bool color = ::isatty(STDOUT_FILENO) == 1;
  FiguresReporter reporter(color ? benchmark::ConsoleReporter::OO_Color : benchmark::ConsoleReporter::OO_None);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_summary(reporter, plan, load_before, python);
  benchmark::Shutdown();
  return 0;
}
