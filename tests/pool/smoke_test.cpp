// A first end-to-end pass through the pool on the simulated World.

#include <seedpool/core/pool.hpp>
#include <seedpool/sim/sim_process.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <gtest/gtest.h>

namespace seedpool {
namespace {

PoolConfig small_config() {
  PoolConfig config;
  config.name = "smoke";
  config.command.program = "/usr/bin/worker";
  config.size = {2, 4};
  config.min_ready = 2;
  return config;
}

TEST(PoolSmoke, StartExecuteLeaseStatsShutdown) {
  sim::SimConfig sim_config;
  sim_config.seed = 7;
  std::string first;
  PoolStats stats;
  const auto result = sim::simulate(sim_config, [&](sim::SimWorld& world) {
    sim::SimProcessHost host(world);
    auto created = Pool::create(world, small_config());
    ASSERT_TRUE(created.ok());
    auto& pool = *created.value();
    const Status started = pool.start();
    ASSERT_TRUE(started.ok()) << started.error().describe();
    auto answer = pool.execute("hello");
    ASSERT_TRUE(answer.ok()) << answer.error().describe();
    first = answer.value();
    auto lease = pool.checkout();
    ASSERT_TRUE(lease.ok()) << lease.error().describe();
    EXPECT_EQ(lease.value().call("a").value(), "a");
    EXPECT_EQ(lease.value().call("b").value(), "b");
    lease.value().release();
    stats = pool.stats();
    EXPECT_TRUE(pool.shutdown().ok());
    EXPECT_EQ(host.alive(), 0u);
  });
  EXPECT_TRUE(result.ok()) << result.summary();
  EXPECT_EQ(first, "hello");
  EXPECT_EQ(stats.count(stats.calls, "ok"), 3u);
  EXPECT_EQ(stats.count(stats.checkouts, "ok"), 2u);
  EXPECT_EQ(stats.count(stats.inits, "ok"), 2u);
}

}  // namespace
}  // namespace seedpool
