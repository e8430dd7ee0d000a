// PoolConfig::validate names the first bad field and its rule;
// parse_init_mode and parse_checkout_kind turn configuration text into
// options or a clear error, never a hang.

#include "pool/pool_test_support.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace seedpool {
namespace {

using namespace pooltest;

PoolConfig valid_config() {
  PoolConfig config;
  config.command.program = "/usr/bin/python3";
  return config;
}

TEST(PoolConfigValidate, DefaultsWithAProgramAreValid) {
  const Status valid = valid_config().validate();
  EXPECT_TRUE(valid.ok()) << valid.error().describe();
  PoolConfig config = valid_config();
  config.init = InitMode::lazy;
  config.size = {0, 1};
  config.min_ready = 5;  // ignored by a lazy start
  EXPECT_TRUE(config.validate().ok());
}

struct BadField {
  std::string field;  // as the message must name it
  std::function<void(PoolConfig&)> spoil;
};

TEST(PoolConfigValidate, NamesEachBadField) {
  const std::vector<BadField> cases = {
      {"name", [](PoolConfig& c) { c.name.clear(); }},
      {"command.program", [](PoolConfig& c) { c.command.program.clear(); }},
      {"size.max", [](PoolConfig& c) { c.size = {0, 0}; }},
      {"size.min", [](PoolConfig& c) { c.size = {5, 4}; }},
      {"min_ready", [](PoolConfig& c) { c.min_ready = 2; c.size = {1, 4}; }},
      {"waiters_max", [](PoolConfig& c) { c.waiters_max = 0; }},
      {"mailbox_depth_max", [](PoolConfig& c) { c.mailbox_depth_max = 15; }},
      {"affinity_keys_max", [](PoolConfig& c) { c.affinity_keys_max = 0; }},
      {"stderr_lines_kept", [](PoolConfig& c) { c.stderr_lines_kept = 0; }},
      {"stderr_lines_kept", [](PoolConfig& c) { c.stderr_line_bytes_max = 0; }},
      {"init_timeout", [](PoolConfig& c) { c.init_timeout = Duration::zero(); }},
      {"checkout_timeout", [](PoolConfig& c) { c.checkout_timeout = milliseconds(-1); }},
      {"call_timeout", [](PoolConfig& c) { c.call_timeout = Duration::zero(); }},
      {"health_timeout", [](PoolConfig& c) { c.health_timeout = Duration::zero(); }},
      {"restart_backoff_base", [](PoolConfig& c) { c.restart_backoff_base = Duration::zero(); }},
      {"breaker_window", [](PoolConfig& c) { c.breaker_window = Duration::zero(); }},
      {"breaker_cooldown", [](PoolConfig& c) { c.breaker_cooldown = Duration::zero(); }},
      {"terminate_grace", [](PoolConfig& c) { c.terminate_grace = Duration::zero(); }},
      {"health_interval", [](PoolConfig& c) { c.health_interval = milliseconds(-1); }},
      {"max_lifetime", [](PoolConfig& c) { c.max_lifetime = milliseconds(-1); }},
      {"shutdown_grace", [](PoolConfig& c) { c.shutdown_grace = milliseconds(-1); }},
      {"ready_exit_window", [](PoolConfig& c) { c.ready_exit_window = milliseconds(-1); }},
      {"restart_backoff_max", [](PoolConfig& c) { c.restart_backoff_max = milliseconds(50); }},
      {"max_lifetime_jitter", [](PoolConfig& c) { c.max_lifetime_jitter = seconds(1); }},
      {"restart_backoff_jitter_percent", [](PoolConfig& c) { c.restart_backoff_jitter_percent = 101; }},
      {"breaker_failures", [](PoolConfig& c) { c.breaker_failures = 0; }},
      {"frame_bytes_max", [](PoolConfig& c) { c.frame_bytes_max = 12; }},
      {"frame_bytes_max", [](PoolConfig& c) { c.frame_bytes_max = std::uint64_t{1} << 33; }},
  };
  for (const BadField& bad : cases) {
    PoolConfig config = valid_config();
    bad.spoil(config);
    const Status status = config.validate();
    ASSERT_FALSE(status.ok()) << bad.field << " was accepted";
    EXPECT_EQ(status.error().code, ErrorCode::invalid_argument);
    EXPECT_TRUE(contains(status.error().message, "PoolConfig." + bad.field)) << status.error().message;
  }
}

TEST(PoolConfigValidate, ZeroDisablesHealthChecksAndRecycling) {
  PoolConfig config = valid_config();
  config.health_interval = Duration::zero();
  config.max_lifetime = Duration::zero();
  config.max_lifetime_jitter = Duration::zero();
  config.shutdown_grace = Duration::zero();
  EXPECT_TRUE(config.validate().ok());
}

// A pool is never created from a bad configuration: no task, no launch.
TEST(PoolConfigValidate, PoolCreateRefusesAnInvalidConfig) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    PoolConfig config = valid_config();
    config.size = {3, 2};
    Result<std::unique_ptr<Pool>> created = Pool::create(world, config);
    ASSERT_FALSE(created.ok());
    EXPECT_TRUE(contains(created.error().message, "size.min")) << created.error().message;
    EXPECT_EQ(host.launches(), 0u);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(ParseInitMode, AcceptsEagerAndLazyOnly) {
  ASSERT_TRUE(parse_init_mode("eager").ok());
  EXPECT_EQ(parse_init_mode("eager").value(), InitMode::eager);
  EXPECT_EQ(parse_init_mode("lazy").value(), InitMode::lazy);
  EXPECT_EQ(to_string(InitMode::eager), "eager");
  EXPECT_EQ(to_string(InitMode::lazy), "lazy");
  for (const std::string_view bad : {"", "Eager", "lazy ", "on-demand"}) {
    Result<InitMode> parsed = parse_init_mode(bad);
    ASSERT_FALSE(parsed.ok()) << "'" << bad << "' was accepted";
    EXPECT_EQ(parsed.error().code, ErrorCode::invalid_argument);
    EXPECT_TRUE(contains(parsed.error().message, fmt::format("'{}'", bad))) << parsed.error().message;
    EXPECT_TRUE(contains(parsed.error().message, "'eager' or 'lazy'")) << parsed.error().message;
  }
}

TEST(ParseCheckoutKind, AnonymousAndBothAffinityModes) {
  Result<CheckoutOptions> anonymous = parse_checkout_kind("anonymous");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_TRUE(anonymous.value().affinity_key.empty());
  EXPECT_FALSE(anonymous.value().deadline.has_value());

  Result<CheckoutOptions> prefer = parse_checkout_kind("affinity:user-42");
  ASSERT_TRUE(prefer.ok());
  EXPECT_EQ(prefer.value().affinity_key, "user-42");
  EXPECT_EQ(prefer.value().affinity_mode, AffinityMode::prefer);

  Result<CheckoutOptions> strict = parse_checkout_kind("affinity-strict:a:b");
  ASSERT_TRUE(strict.ok());
  EXPECT_EQ(strict.value().affinity_key, "a:b");
  EXPECT_EQ(strict.value().affinity_mode, AffinityMode::strict);
}

TEST(ParseCheckoutKind, UnknownKindIsAClearError) {
  for (const std::string_view bad : {"", "anon", "affinity", "affinity:", "affinity-strict:", "sticky:k",
                                     "Anonymous", "affinity-prefer:k"}) {
    Result<CheckoutOptions> parsed = parse_checkout_kind(bad);
    ASSERT_FALSE(parsed.ok()) << "'" << bad << "' was accepted";
    EXPECT_EQ(parsed.error().code, ErrorCode::invalid_argument);
    EXPECT_TRUE(contains(parsed.error().message, fmt::format("'{}'", bad))) << parsed.error().message;
    EXPECT_TRUE(contains(parsed.error().message, "'anonymous', 'affinity:KEY' or 'affinity-strict:KEY'"))
        << parsed.error().message;
  }
}

// A parsed kind drives a real checkout: strict affinity from text.
TEST(ParseCheckoutKind, ParsedKindDrivesACheckout) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    PoolConfig config = base_config();
    config.size = {2, 2};
    config.min_ready = 2;
    auto pool = make_pool(world, config);
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->start().ok());
    Result<CheckoutOptions> kind = parse_checkout_kind("affinity-strict:session-1");
    ASSERT_TRUE(kind.ok());
    // Bind the key to the worker an anonymous checkout would not pick.
    Result<Lease> anonymous = pool->checkout();
    Result<Lease> first = pool->checkout(kind.value());
    ASSERT_TRUE(anonymous.ok() && first.ok());
    const WorkerRef bound = first.value().worker();
    ASSERT_NE(anonymous.value().worker(), bound);
    anonymous.value().release();
    first.value().release();
    for (int i = 0; i < 3; ++i) {
      Result<Lease> again = pool->checkout(kind.value());
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(again.value().worker(), bound);
    }
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

}  // namespace
}  // namespace seedpool
