// The README's pool example, compiled and run: it takes any World, so the
// same function runs on the simulated World here and on the real one in
// production.

#include <seedpool/core/pool.hpp>
#include <seedpool/sim/sim_process.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace {

// README example begins
seedpool::Status use_pool(seedpool::World& world, const std::string& program) {
  seedpool::PoolConfig config;
  config.name = "math";
  config.command = {program, {"examples/math_worker.py"}, {}, {}};
  config.size = {2, 4};  // keep 2 warm, grow to 4 on demand
  config.min_ready = 2;  // start() waits for both

  auto created = seedpool::Pool::create(world, config);  // validates the config
  if (!created) return created.error();
  seedpool::Pool& pool = *created.value();
  if (seedpool::Status started = pool.start(); !started) return started;  // reasons + stderr tails

  // One call: checkout, call, checkin.
  auto sum = pool.execute(R"({"handler": "add", "args": {"a": 1, "b": 2}})");
  if (!sum) return sum.error();

  // A lease keeps one worker for several calls, in order.
  auto lease = pool.checkout({.deadline = world.now() + seedpool::seconds(1)});
  if (!lease) return lease.error();
  auto first = lease.value().call(R"({"handler": "add", "args": {"a": 2, "b": 3}})");
  auto second = lease.value().call(R"({"handler": "add", "args": {"a": 4, "b": 5}})");
  lease.value().release();  // or let it go out of scope
  if (!first || !second) return (!first ? first : second).error();

  seedpool::PoolStats stats = pool.stats();
  fmt::print("{} calls ok; p99 call latency <= {} ms\n{}", stats.count(stats.calls, "ok"),
             stats.call_duration.quantile_bound(99).ns() / 1'000'000, stats.to_prometheus());
  return pool.shutdown();  // waits for leases, then terminates and reaps every worker
}
// README example ends

TEST(ReadmeExample, RunsOnTheSimulatedWorld) {
  seedpool::Status status;
  const auto run = seedpool::sim::simulate({}, [&](seedpool::sim::SimWorld& world) {
    seedpool::sim::SimProcessHost host(world);  // simulated workers echo each call
    status = use_pool(world, "/usr/bin/python3");
    EXPECT_EQ(host.alive(), 0U);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  EXPECT_TRUE(status.ok()) << status.error().describe();
}

}  // namespace
