// seedpool-sim-bench: what the simulator engine costs, measured in one run.
//
//   BM_BlockedTaskMemory  resident memory of 10,000 tasks blocked at once
//   BM_FiberRoundTrip     the floor: one boost::context::fiber round trip
//   BM_SimStep            one simulator step of two tasks ping-ponging over
//                         Channel<int> (capacity 1) under the default config
//   BM_SyncOp/yield       two tasks taking turns at a bare World::yield
//   BM_SyncOp/mutex       ... at a Mutex lock+unlock pair on one shared mutex
//   BM_SyncOp/atomic      ... at an Atomic<int> load
//
// After the benchmarks a summary relates them: the cost of a simulator step
// as a multiple of the raw round trip, both measured in this process, so the
// ratio is stable across machines where the absolute figures are not.
//
// The sync primitives (<seedpool/core/sync.hpp>) each cost one scheduling
// point: the summary prints the time of a lock+unlock pair and of an atomic
// load as multiples of a bare yield's, all three measured the same way in
// this run.
//
// Targets: >= 15 M steps/s per core, step / round trip <= 3,
// <= 32 KiB RSS per blocked task, lock+unlock pair / yield <= 1.5,
// atomic load / yield <= 1.5. The binary reports against them and exits 0
// whether or not they are met; a failed correctness check aborts.
//
// Flags: every --benchmark_* flag of Google Benchmark, plus --quick, which
// lowers the minimum time per benchmark to 0.05 s (an explicit
// --benchmark_min_time still wins).

#include "proc_memory.hpp"

#include <seedpool/core/assert.hpp>
#include <seedpool/core/channel.hpp>
#include <seedpool/core/sync.hpp>
#include <seedpool/sim/sim_world.hpp>

#include "bench_args.hpp"

#include <benchmark/benchmark.h>
#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace ctx = boost::context;
using seedpool::Channel;
using seedpool::ChannelStatus;
using seedpool::Received;
using seedpool::sim::RunResult;
using seedpool::sim::SimConfig;
using seedpool::bench::MappingResidency;
using seedpool::bench::MemoryStatus;
using seedpool::sim::SimWorld;

// The simulator's default stack size, used for the raw fiber as well so that
// both touch stacks of the same shape. Not constexpr: SimConfig is not a
// literal type (its StrategySpec holds a shared choice log).
const std::size_t stack_bytes = SimConfig{}.stack_bytes;
constexpr std::int64_t messages_per_run = 100'000;  // setup is < 0.1% of a run
constexpr std::int64_t blocked_tasks = 10'000;

// Targets, reported against, never enforced.
constexpr double steps_per_second_target = 15e6;
constexpr double step_ratio_target = 3.0;
constexpr double bytes_per_task_target = 32 * 1024;
constexpr double sync_ratio_target = 1.5;
constexpr std::int64_t sync_ops_per_task = 100'000;

// Above this ratio of wall to CPU time the summary warns that the time
// figures were taken on a busy machine.
constexpr double busy_max = 1.05;

// ---------------------------------------------------------------------------
// Memory: many tasks blocked at once.

struct BlockedTasksMemory {
  bool peak_valid = false;  // VmHWM was reset just before the baseline
  MemoryStatus before;      // sampled before the simulation creates anything
  MemoryStatus blocked;     // sampled with every task blocked
  MappingResidency stacks;  // all simulator stacks at the blocked point
  std::uint64_t steps = 0;
};

// The simulation body: spawns `tasks` tasks that each block receiving from
// one shared channel, waits until all are blocked, samples memory, then
// closes the channel so every task returns and the run ends ok.
void block_tasks(SimWorld& world, std::size_t tasks, BlockedTasksMemory& memory) {
  auto mailbox = std::make_shared<Channel<int>>(world, "mailbox", 1);
  auto started = std::make_shared<std::size_t>(0);
  for (std::size_t i = 0; i < tasks; ++i) {
    world.spawn(fmt::format("blocked-{}", i), [mailbox, started] {
      ++*started;
      const Received<int> got = mailbox->receive();
      SEEDPOOL_ASSERT(got.status == ChannelStatus::closed);
    });
  }
  // Virtual time moves only when nothing can run, so once this sleep ends
  // every task has reached its receive and blocked there.
  world.sleep_for(seedpool::milliseconds(1));
  SEEDPOOL_ASSERT(*started == tasks);
  memory.blocked = seedpool::bench::read_memory_status();
  memory.stacks = seedpool::bench::anonymous_mappings_of_length(stack_bytes);
  mailbox->close();
}

// Runs on a thread of its own: StackPool is per thread and keyed by stack
// size, so a fresh thread starts with no pooled stacks and every stack the
// run uses is mapped and touched inside the measured interval. Stacks pooled
// by earlier benchmarks on other threads are resident before the baseline and
// so are neither counted nor able to hide the cost.
BlockedTasksMemory measure_blocked_tasks(std::size_t tasks) {
  BlockedTasksMemory memory;
  memory.peak_valid = seedpool::bench::reset_peak_rss();
  memory.before = seedpool::bench::read_memory_status();
  SimConfig config;
  config.stack_bytes = stack_bytes;
  const RunResult result =
      seedpool::sim::simulate(config, [&memory, tasks](SimWorld& world) { block_tasks(world, tasks, memory); });
  SEEDPOOL_ASSERT_MSG(result.ok(), result.summary().c_str());
  SEEDPOOL_ASSERT(memory.stacks.mappings >= tasks);
  memory.steps = result.steps;
  return memory;
}

double per_task(std::uint64_t after, std::uint64_t before, std::size_t tasks) {
  const double delta = after >= before ? static_cast<double>(after - before) : 0.0;
  return delta / static_cast<double>(tasks);
}

void BM_BlockedTaskMemory(benchmark::State& state) {
  const auto tasks = static_cast<std::size_t>(state.range(0));
  BlockedTasksMemory memory;
  for (auto _ : state) {
    std::thread worker([&memory, tasks] { memory = measure_blocked_tasks(tasks); });
    worker.join();
  }
  using benchmark::Counter;
  auto bytes = [](double value) { return Counter(value, Counter::kDefaults, Counter::OneK::kIs1024); };
  state.counters["rss_per_task"] = bytes(per_task(memory.blocked.rss_bytes, memory.before.rss_bytes, tasks));
  if (memory.peak_valid) {
    state.counters["peak_rss_per_task"] =
        bytes(per_task(memory.blocked.hwm_bytes, memory.before.hwm_bytes, tasks));
  }
  state.counters["stack_rss_per_task"] =
      bytes(static_cast<double>(memory.stacks.rss_bytes) / static_cast<double>(memory.stacks.mappings));
  state.counters["page_tables_per_task"] =
      bytes(per_task(memory.blocked.page_table_bytes, memory.before.page_table_bytes, tasks));
  state.counters["stacks"] = Counter(static_cast<double>(memory.stacks.mappings));
  state.counters["steps"] = Counter(static_cast<double>(memory.steps));
}
// Registered first so it also runs first, before anything else has grown the
// heap; the fresh thread is what makes the figure honest, the order is a
// second line of defence.
BENCHMARK(BM_BlockedTaskMemory)->Arg(blocked_tasks)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// Time: the raw fiber round trip, and the simulator step.

// One iteration: main resumes the fiber, which at once resumes main.
void BM_FiberRoundTrip(benchmark::State& state) {
  bool stop = false;
  ctx::fiber fiber(std::allocator_arg, ctx::fixedsize_stack(stack_bytes), [&stop](ctx::fiber&& caller) {
    while (!stop) {
      caller = std::move(caller).resume();
    }
    return std::move(caller);
  });
  for (auto _ : state) {
    fiber = std::move(fiber).resume();
  }
  stop = true;
  fiber = std::move(fiber).resume();
  SEEDPOOL_ASSERT_MSG(!fiber, "the benchmark fiber did not finish");
}
BENCHMARK(BM_FiberRoundTrip)->UseRealTime()->Unit(benchmark::kNanosecond);

// The simulation body: "main" sends 0..messages-1 to task "pong" over one
// channel and receives each back over another; both have capacity 1.
void ping_pong(SimWorld& world, std::int64_t messages) {
  auto to_pong = std::make_shared<Channel<int>>(world, "to_pong", 1);
  auto to_ping = std::make_shared<Channel<int>>(world, "to_ping", 1);
  world.spawn("pong", [to_pong, to_ping] {
    while (Received<int> got = to_pong->receive()) {
      SEEDPOOL_ASSERT(to_ping->send(std::move(*got.value)) == ChannelStatus::ok);
    }
  });
  for (std::int64_t i = 0; i < messages; ++i) {
    SEEDPOOL_ASSERT(to_pong->send(static_cast<int>(i)) == ChannelStatus::ok);
    const Received<int> back = to_ping->receive();
    SEEDPOOL_ASSERT(back.status == ChannelStatus::ok);
    SEEDPOOL_ASSERT(*back.value == static_cast<int>(i));
  }
  to_pong->close();
}

// One iteration is a whole simulation (default config: random strategy, no
// kept trace events) including SimWorld setup and teardown; the figures are
// per step, summed over all iterations.
void BM_SimStep(benchmark::State& state) {
  const std::int64_t messages = state.range(0);
  SimConfig config;
  std::uint64_t steps = 0;
  // Timed here as well as by the framework: a kIsRate | kInvert counter would
  // give the same figure but print it with an "s" unit, which misreads as
  // seconds. The loop around simulate() adds nothing measurable to 30 ms runs.
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    ++config.seed;
    const RunResult result =
        seedpool::sim::simulate(config, [messages](SimWorld& world) { ping_pong(world, messages); });
    SEEDPOOL_ASSERT_MSG(result.ok(), result.summary().c_str());
    steps += result.steps;
  }
  const std::chrono::duration<double, std::nano> elapsed = std::chrono::steady_clock::now() - start;
  SEEDPOOL_ASSERT(steps > 0);
  using benchmark::Counter;
  const auto total = static_cast<double>(steps);
  state.counters["items_per_second"] = Counter(total, Counter::kIsRate);
  state.counters["ns_per_step"] = Counter(elapsed.count() / total);
  state.counters["steps_per_run"] = Counter(total, Counter::kAvgIterations);
}
BENCHMARK(BM_SimStep)->Arg(messages_per_run)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// Time: the sync primitives against a bare yield.

enum class SyncOp : std::int64_t { yield, mutex, atomic };

std::string_view sync_op_label(SyncOp op) {
  switch (op) {
    case SyncOp::yield: return "yield";
    case SyncOp::mutex: return "mutex";
    case SyncOp::atomic: return "atomic";
  }
  return "?";
}

// The simulation body: "main" and "peer" each do `ops` operations of one
// kind, taking turns as the strategy picks. Every operation is one
// scheduling point; the mutex's critical section is empty, so it is never
// held at a scheduling point and no lock blocks. The yield goes through
// World&, as code written against the World calls it.
void take_turns(SimWorld& sim, SyncOp op, std::int64_t ops) {
  seedpool::World& world = sim;
  seedpool::Mutex mutex(world, "shared");
  seedpool::Atomic<int> value(world, 1);
  int sum = 0;
  const auto run = [&world, &mutex, &value, &sum, op, ops] {
    for (std::int64_t i = 0; i < ops; ++i) {
      switch (op) {
        case SyncOp::yield: world.yield(); break;
        case SyncOp::mutex: {
          std::lock_guard<seedpool::Mutex> held(mutex);
          ++sum;
          break;
        }
        case SyncOp::atomic: sum += value.load(); break;
      }
    }
  };
  seedpool::Thread peer(world, "peer", run);
  run();
  peer.join();
  SEEDPOOL_ASSERT(op == SyncOp::yield || sum == 2 * ops);
}

// One iteration is a whole simulation; the figures are per operation, over
// all iterations.
void BM_SyncOp(benchmark::State& state) {
  const auto op = static_cast<SyncOp>(state.range(0));
  state.SetLabel(std::string(sync_op_label(op)));
  SimConfig config;
  // Both tasks read an atomic nobody changes: parked, they would measure
  // the parking, not the operation.
  config.park_spinners = false;
  std::uint64_t steps = 0;
  std::int64_t ops = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    ++config.seed;
    const RunResult result = seedpool::sim::simulate(
        config, [op](SimWorld& world) { take_turns(world, op, sync_ops_per_task); });
    SEEDPOOL_ASSERT_MSG(result.ok(), result.summary().c_str());
    steps += result.steps;
    ops += 2 * sync_ops_per_task;
  }
  const std::chrono::duration<double, std::nano> elapsed = std::chrono::steady_clock::now() - start;
  SEEDPOOL_ASSERT(ops > 0);
  using benchmark::Counter;
  state.counters["ns_per_op"] = Counter(elapsed.count() / static_cast<double>(ops));
  state.counters["steps_per_op"] = Counter(static_cast<double>(steps) / static_cast<double>(ops));
}
BENCHMARK(BM_SyncOp)
    ->Arg(static_cast<std::int64_t>(SyncOp::yield))
    ->Arg(static_cast<std::int64_t>(SyncOp::mutex))
    ->Arg(static_cast<std::int64_t>(SyncOp::atomic))
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// The summary across benchmarks.

// Prints like the console reporter and keeps each figure the summary needs,
// one value per repetition.
class SummaryReporter final : public benchmark::ConsoleReporter {
 public:
  using ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& reports) override {
    ConsoleReporter::ReportRuns(reports);
    for (const Run& run : reports) {
      if (run.run_type != Run::RT_Iteration || run.error_occurred || run.iterations == 0) {
        continue;
      }
      const std::string& name = run.run_name.function_name;
      if (name != "BM_BlockedTaskMemory" && run.cpu_accumulated_time > 0) {
        // Wall clock over CPU time: 1.0 on an idle core; more means this
        // process was descheduled and its real-time figures are inflated.
        figures_["busy"].push_back(run.real_accumulated_time / run.cpu_accumulated_time);
      }
      const double iterations = static_cast<double>(run.iterations);
      if (name == "BM_FiberRoundTrip") {
        figures_["BM_FiberRoundTrip/ns"].push_back(run.real_accumulated_time / iterations * 1e9);
        figures_["BM_FiberRoundTrip/cpu_ns"].push_back(run.cpu_accumulated_time / iterations * 1e9);
      }
      const auto steps = run.counters.find("steps_per_run");
      if (name == "BM_SimStep" && steps != run.counters.end() && steps->second.value > 0) {
        figures_["BM_SimStep/cpu_ns_per_step"].push_back(run.cpu_accumulated_time / iterations * 1e9 /
                                                         steps->second.value);
      }
      // Benchmarks with arguments keep their figures under "name/label".
      const std::string key = run.report_label.empty() ? name : name + "/" + run.report_label;
      if (name == "BM_SyncOp") {
        figures_[key + "/cpu_ns_per_op"].push_back(run.cpu_accumulated_time / run.real_accumulated_time *
                                                   run.counters.at("ns_per_op").value);
      }
      for (const auto& [counter, value] : run.counters) {
        figures_[key + "/" + counter].push_back(value.value);
      }
    }
  }

  // The largest value of a figure, if it was measured.
  std::optional<double> max(const std::string& figure) const {
    const auto found = figures_.find(figure);
    if (found == figures_.end() || found->second.empty()) {
      return std::nullopt;
    }
    return *std::max_element(found->second.begin(), found->second.end());
  }

  // The median over repetitions of a figure ("BM_SimStep/ns_per_step"), if it
  // was measured.
  std::optional<double> median(const std::string& figure) const {
    const auto found = figures_.find(figure);
    if (found == figures_.end() || found->second.empty()) {
      return std::nullopt;
    }
    std::vector<double> values = found->second;
    const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
    std::nth_element(values.begin(), middle, values.end());
    return *middle;
  }

 private:
  std::map<std::string, std::vector<double>> figures_;
};

// Above busy_max the wall clock ran ahead of the CPU clock: the process was
// descheduled and every real-time figure is inflated, the raw round trip most
// (it is the shortest), which can make the ratio look better than it is.
bool machine_was_busy(const SummaryReporter& reporter) { return reporter.max("busy").value_or(1.0) > busy_max; }

std::string verdict(bool met, bool busy) {
  std::string text = met ? "met" : "MISSED";
  return busy ? text + ", unreliable: see note" : text;
}

std::string time_summary(const SummaryReporter& reporter, bool busy) {
  const std::optional<double> round_trip = reporter.median("BM_FiberRoundTrip/ns");
  const std::optional<double> step = reporter.median("BM_SimStep/ns_per_step");
  std::string out = round_trip ? fmt::format("  raw fiber round trip:      {:.1f} ns\n", *round_trip)
                               : "  raw fiber round trip:      not run\n";
  if (!step) {
    return out + "  simulator step:            not run\n";
  }
  const double steps_per_second = 1e9 / *step;
  out += fmt::format("  simulator step:            {:.1f} ns  ({:.2f} M steps/s, target >= {:.0f} M: {})\n", *step,
                     steps_per_second / 1e6, steps_per_second_target / 1e6,
                     verdict(steps_per_second >= steps_per_second_target, busy));
  if (round_trip) {
    const double ratio = *step / *round_trip;
    out += fmt::format("  ratio step / round trip:   {:.2f}   (target <= {:.0f}: {})\n", ratio, step_ratio_target,
                       verdict(ratio <= step_ratio_target, busy));
  }
  return out;
}

std::string memory_summary(const SummaryReporter& reporter) {
  const std::optional<double> peak = reporter.median("BM_BlockedTaskMemory/peak_rss_per_task");
  const std::optional<double> rss = reporter.median("BM_BlockedTaskMemory/rss_per_task");
  if (!rss) {
    return "  memory:                    not run\n";
  }
  const double counted = peak.value_or(*rss);
  const double stack = reporter.median("BM_BlockedTaskMemory/stack_rss_per_task").value_or(0.0);
  const double page_tables = reporter.median("BM_BlockedTaskMemory/page_tables_per_task").value_or(0.0);
  std::string out = fmt::format("  memory: {} blocked tasks, {} RSS per task: {:.0f} bytes (target <= {:.0f}: {})\n",
                                blocked_tasks, peak ? "peak" : "current", counted, bytes_per_task_target,
                                verdict(counted <= bytes_per_task_target, false));
  out += fmt::format("          of which stack pages {:.0f} bytes; current RSS per task {:.0f} bytes; "
                     "page tables (outside RSS) {:.0f} bytes\n",
                     stack, *rss, page_tables);
  return out;
}

// The busy warning, with the time figures by CPU time, which excludes the
// time this process spent descheduled (though not the cache damage of
// sharing a core).
std::string busy_note(const SummaryReporter& reporter) {
  std::string out = fmt::format(
      "  note: wall time ran up to {:.0f}% over CPU time: the machine was busy and the time figures above are "
      "inflated; rerun on an idle machine\n",
      (reporter.max("busy").value_or(1.0) - 1.0) * 100.0);
  const std::optional<double> cpu_round_trip = reporter.median("BM_FiberRoundTrip/cpu_ns");
  const std::optional<double> cpu_step = reporter.median("BM_SimStep/cpu_ns_per_step");
  if (cpu_round_trip && cpu_step) {
    out += fmt::format("        by CPU time instead: round trip {:.1f} ns, step {:.1f} ns, ratio {:.2f}\n",
                       *cpu_round_trip, *cpu_step, *cpu_step / *cpu_round_trip);
  }
  return out;
}

// The sync primitives against a bare yield: the time of one operation (a
// run's wall time over its operations, two tasks taking turns), each one
// scheduling point, so a ratio is the cost of the primitive's scheduling
// point in bare yields.
std::string sync_summary(const SummaryReporter& reporter, bool busy, const char* figure) {
  const std::optional<double> yield = reporter.median(std::string("BM_SyncOp/yield/") + figure);
  if (!yield) {
    return "  sync primitives:           not run\n";
  }
  const double yield_steps = reporter.median("BM_SyncOp/yield/steps_per_op").value_or(0.0);
  std::string out = fmt::format("  sync primitives, time per operation ({} time; 2 tasks taking turns; each "
                                "operation is one scheduling point):\n",
                                std::string_view(figure) == "ns_per_op" ? "wall" : "CPU");
  out += fmt::format("    bare World::yield:         {:6.1f} ns  ({:.2f} steps each)\n", *yield, yield_steps);
  const auto line = [&](const char* label, const char* what, const std::string& op) {
    const std::optional<double> ns = reporter.median("BM_SyncOp/" + op + "/" + figure);
    if (!ns) {
      return fmt::format("    {:<26} not run\n", label);
    }
    const double steps = reporter.median("BM_SyncOp/" + op + "/steps_per_op").value_or(0.0);
    const double ratio = *ns / *yield;
    return fmt::format("    {:<26} {:6.1f} ns  ({:.2f} steps each)  {} / yield = {:.2f}  (target <= {:.1f}: {})\n",
                       label, *ns, steps, what, ratio, sync_ratio_target, verdict(ratio <= sync_ratio_target, busy));
  };
  out += line("Mutex lock+unlock pair:", "pair", "mutex");
  out += line("Atomic<int> load:", "load", "atomic");
  return out;
}

void print_summary(const SummaryReporter& reporter) {
  const bool busy = machine_was_busy(reporter);
  std::string out = "\nseedpool sim engine (same run):\n";
  out += time_summary(reporter, busy);
  out += sync_summary(reporter, busy, "ns_per_op");
  if (busy) {
    out += sync_summary(reporter, false, "cpu_ns_per_op");
  }
  out += memory_summary(reporter);
  if (busy) {
    out += busy_note(reporter);
  }
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
}

// The arguments for benchmark::Initialize: `argv` without --quick, and, when
// --quick was given, a short minimum time placed first so that an explicit
// --benchmark_min_time later on the command line overrides it.
std::vector<char*> benchmark_arguments(int argc, char** argv) {
  static char quick_min_time[] = "--benchmark_min_time=0.05";
  bool quick = false;
  std::vector<char*> args = seedpool::bench::without_quick_flag(argc, argv, quick);
  if (quick) {
    args.insert(args.begin() + 1, quick_min_time);
  }
  args.push_back(nullptr);
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = benchmark_arguments(argc, argv);
  int count = static_cast<int>(args.size()) - 1;
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) {
    return 1;
  }
  const bool color = ::isatty(STDOUT_FILENO) == 1;
  SummaryReporter reporter(color ? benchmark::ConsoleReporter::OO_Color : benchmark::ConsoleReporter::OO_None);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_summary(reporter);
  benchmark::Shutdown();
  return 0;
}
