#pragma once

// Helpers shared by the pool tests: a small configuration with short virtual
// timeouts, a runner that puts a SimProcessHost next to the pool, a sweep over
// seeds of both scheduling strategies, a join for concurrent caller tasks, a
// telemetry sink that keeps every event, and a launch log that maps workers to
// the pids of their simulated processes.

#include <seedpool/core/channel.hpp>
#include <seedpool/core/pool.hpp>
#include <seedpool/sim/sim_process.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seedpool::pooltest {

inline constexpr std::string_view worker_program = "/opt/sim/worker";

// One worker, short virtual timeouts and health checks off, so that each test
// turns on exactly the behaviour it is about.
inline PoolConfig base_config(std::string name = "test") {
  PoolConfig config;
  config.name = std::move(name);
  config.command.program = std::string(worker_program);
  config.size = {1, 1};
  config.min_ready = 1;
  config.init_timeout = seconds(1);
  config.checkout_timeout = seconds(1);
  config.call_timeout = seconds(1);
  config.health_interval = Duration::zero();
  config.restart_backoff_base = milliseconds(10);
  config.restart_backoff_max = seconds(1);
  config.shutdown_grace = seconds(1);
  config.terminate_grace = milliseconds(100);
  return config;
}

inline bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

inline sim::StrategySpec random_walk() { return sim::StrategySpec{}; }

inline sim::StrategySpec pct(unsigned depth = 3, std::uint64_t steps_estimate = 2'000) {
  sim::StrategySpec spec;
  spec.kind = sim::StrategySpec::Kind::pct;
  spec.depth = depth;
  spec.steps_estimate = steps_estimate;
  return spec;
}

using SimBody = std::function<void(sim::SimWorld&, sim::SimProcessHost&)>;

// Runs `body` on a fresh SimWorld with a SimProcessHost installed. The host
// outlives the run, so a test may inspect it afterwards; a run that ended ok
// must have left no process alive.
inline sim::RunResult run_sim(const SimBody& body, std::uint64_t seed = 1, sim::StrategySpec strategy = {}) {
  sim::SimConfig config;
  config.seed = seed;
  config.strategy = strategy;
  config.virtual_time_max = hours(24);
  sim::SimWorld world(config);
  sim::SimProcessHost host(world);
  sim::RunResult result = world.run([&] { body(world, host); });
  if (result.ok()) {
    EXPECT_EQ(host.alive(), 0u) << "a worker process outlived the run (an orphan)";
  }
  return result;
}

// Runs `body` for `seeds` seeds under the random walk and under PCT, so that
// a race constructed in virtual time meets many interleavings of the tasks
// that collide there. Stops at the first failing run and names it.
inline void sweep_strategies(std::uint64_t seeds, const SimBody& body, std::uint64_t first_seed = 1) {
  for (const sim::StrategySpec& strategy : {random_walk(), pct(3), pct(2, 500)}) {
    for (std::uint64_t seed = first_seed; seed < first_seed + seeds; ++seed) {
      SCOPED_TRACE(fmt::format("seed {} strategy {}", seed, strategy.to_string()));
      const sim::RunResult result = run_sim(body, seed, strategy);
      EXPECT_TRUE(result.ok()) << result.summary();
      if (::testing::Test::HasFailure()) {
        return;
      }
    }
  }
}

// Concurrent caller tasks and a join for them. Tasks are fibers on the one
// simulation thread, so results may be written to plain shared variables.
class TaskGroup {
 public:
  explicit TaskGroup(World& world)
      : world_(world), done_(std::make_shared<Channel<int>>(world, "task-group/done", 64)) {}
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  ~TaskGroup() { join(); }

  void spawn(std::string name, std::function<void()> body) {
    ++running_;
    world_.spawn(std::move(name), [done = done_, body = std::move(body)] {
      body();
      (void)done->send(0);
    });
  }

  // Waits until every spawned task has returned.
  void join() {
    for (; running_ > 0; --running_) {
      if (!done_->receive()) {
        return;  // the simulation is tearing down
      }
    }
  }

 private:
  World& world_;
  std::shared_ptr<Channel<int>> done_;
  std::size_t running_ = 0;
};

// Keeps every telemetry event, and the most workers that were ever active
// (starting, initializing, ready or busy) at once.
class EventLog final : public TelemetrySink {
 public:
  void on_event(const TelemetryEvent& event) override {
    events.push_back(event);
    if (event.kind == TelemetryKind::worker_state) {
      if (is_active(event.from)) {
        --active;
      }
      if (is_active(event.to)) {
        ++active;
      }
      EXPECT_GE(active, 0) << "a worker left a state it was never counted in";
      active_max = std::max(active_max, active);
    }
  }

  std::size_t count(TelemetryKind kind) const {
    return static_cast<std::size_t>(
        std::count_if(events.begin(), events.end(), [kind](const TelemetryEvent& e) { return e.kind == kind; }));
  }
  std::size_t count(TelemetryKind kind, std::optional<ErrorCode> error) const {
    return static_cast<std::size_t>(std::count_if(events.begin(), events.end(), [&](const TelemetryEvent& e) {
      return e.kind == kind && e.error == error;
    }));
  }
  std::vector<TelemetryEvent> of(TelemetryKind kind) const {
    std::vector<TelemetryEvent> out;
    std::copy_if(events.begin(), events.end(), std::back_inserter(out),
                 [kind](const TelemetryEvent& e) { return e.kind == kind; });
    return out;
  }

  std::vector<TelemetryEvent> events;
  std::int64_t active = 0;
  std::int64_t active_max = 0;
};

// Records every launch (when, and as which worker) and chooses each launch's
// behaviour. The pool names a worker's process "<pool>/<worker>", and the host
// numbers pids in launch order from sim::first_pid, so a worker's pid is known
// as long as no launch fails.
class LaunchLog {
 public:
  using Choose = std::function<sim::WorkerBehavior(std::uint64_t launch_index)>;

  LaunchLog(sim::SimWorld& world, sim::SimProcessHost& host, Choose choose = {}) : world_(world) {
    host.set_behavior_for_launch([this, choose = std::move(choose)](std::uint64_t index, const ProcessSpec& spec) {
      at.push_back(world_.now());
      names.push_back(spec.name);
      return choose ? choose(index) : sim::WorkerBehavior{};
    });
  }
  LaunchLog(const LaunchLog&) = delete;
  LaunchLog& operator=(const LaunchLog&) = delete;

  std::size_t size() const { return at.size(); }

  // The pid of `worker`'s process; -1 when it was never launched.
  std::int64_t pid_of(std::string_view pool, WorkerRef worker) const {
    const std::string name = fmt::format("{}/{}", pool, worker.to_string());
    const auto it = std::find(names.begin(), names.end(), name);
    return it == names.end() ? -1 : sim::first_pid + static_cast<std::int64_t>(it - names.begin());
  }

  std::vector<Instant> at;
  std::vector<std::string> names;

 private:
  sim::SimWorld& world_;
};

// A deadline `d` from now on `world`'s clock.
inline Instant in(World& world, Duration d) { return world.now() + d; }

inline std::unique_ptr<Pool> make_pool(World& world, PoolConfig config, PoolHooks hooks = {}) {
  Result<std::unique_ptr<Pool>> created = Pool::create(world, std::move(config), hooks);
  EXPECT_TRUE(created.ok()) << created.error().describe();
  return created.ok() ? std::move(created).value() : nullptr;
}

}  // namespace seedpool::pooltest
