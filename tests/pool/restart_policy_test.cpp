// The restart policy on its own: each slot's backoff after its failures
// (doubling, capped, jittered, ended by a worker that served), exits soon
// after ready as failed starts, the breaker that failed starts open, its
// half-open probe, and what a checkout fails with meanwhile.

#include "pool/restart_policy.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace seedpool::detail {
namespace {

Instant at_ms(std::int64_t ms) { return Instant::zero() + milliseconds(ms); }

PoolConfig policy_config() {
  PoolConfig config;
  config.name = "policy";
  config.size.max = 3;
  config.restart_backoff_base = milliseconds(100);
  config.restart_backoff_max = milliseconds(1000);
  config.restart_backoff_jitter_percent = 0;
  config.breaker_failures = 3;
  config.breaker_window = seconds(10);
  config.breaker_cooldown = seconds(2);
  config.ready_exit_window = milliseconds(500);
  return config;
}

// A draw that records its bounds and answers `answer` (capped to the bound).
struct Draws {
  std::vector<std::uint64_t> bounds;
  std::uint64_t answer = 0;
  RandomBelow random_below() {
    return [this](std::uint64_t bound) {
      bounds.push_back(bound);
      return std::min(answer, bound - 1);
    };
  }
};

Error failure(std::string message) { return Error{ErrorCode::worker_crashed, std::move(message), "Traceback"}; }

TEST(Backoff, DoublesPerFailureUpToTheMaximum) {
  const PoolConfig config = policy_config();
  Draws draws;
  const RandomBelow random_below = draws.random_below();
  EXPECT_EQ(Backoff::delay(config, 1, random_below), milliseconds(100));
  EXPECT_EQ(Backoff::delay(config, 2, random_below), milliseconds(200));
  EXPECT_EQ(Backoff::delay(config, 4, random_below), milliseconds(800));
  EXPECT_EQ(Backoff::delay(config, 5, random_below), milliseconds(1000));
  EXPECT_EQ(Backoff::delay(config, 1000, random_below), milliseconds(1000));
  EXPECT_TRUE(draws.bounds.empty()) << "no jitter configured, so nothing is drawn";
}

// The jitter only ever shortens the delay, by at most its share.
TEST(Backoff, JitterTakesUpToItsShareOff) {
  PoolConfig config = policy_config();
  config.restart_backoff_jitter_percent = 20;
  Draws draws;
  draws.answer = 1'000'000'000;  // the largest draw the bound allows
  EXPECT_EQ(Backoff::delay(config, 1, draws.random_below()), milliseconds(80));
  ASSERT_EQ(draws.bounds.size(), 1u);
  EXPECT_EQ(draws.bounds.front(), static_cast<std::uint64_t>(milliseconds(20).ns()) + 1);
  draws.answer = 0;
  EXPECT_EQ(Backoff::delay(config, 1, draws.random_below()), milliseconds(100));
}

TEST(Backoff, AReadyWorkerEndsTheRun) {
  const PoolConfig config = policy_config();
  Draws draws;
  Backoff backoff(at_ms(0));
  EXPECT_EQ(backoff.next_start_at(), at_ms(0));
  backoff.failed(at_ms(10), config, draws.random_below());
  backoff.failed(at_ms(20), config, draws.random_below());
  EXPECT_EQ(backoff.failures(), 2u);
  EXPECT_EQ(backoff.next_start_at(), at_ms(220));
  backoff.reset();
  backoff.failed(at_ms(300), config, draws.random_below());
  EXPECT_EQ(backoff.next_start_at(), at_ms(400));
}

TEST(RestartPolicy, EachSlotBacksOffOnItsOwn) {
  const PoolConfig config = policy_config();
  Draws draws;
  RestartPolicy policy(config, draws.random_below(), at_ms(0));
  EXPECT_TRUE(policy.may_start(0, at_ms(0)));
  EXPECT_FALSE(policy.start_failed(1, at_ms(50), failure("first")));
  EXPECT_EQ(policy.next_start_after(at_ms(50)), at_ms(150));
  EXPECT_FALSE(policy.may_start(1, at_ms(149)));
  EXPECT_TRUE(policy.may_start(1, at_ms(150)));
  EXPECT_TRUE(policy.may_start(0, at_ms(50))) << "slot 0 did not fail";
  EXPECT_TRUE(policy.may_start(2, at_ms(50))) << "slot 2 did not fail";
  EXPECT_FALSE(policy.start_failed(1, at_ms(200), failure("second")));
  EXPECT_EQ(policy.failures(1), 2u);
  EXPECT_EQ(policy.next_start_after(at_ms(200)), at_ms(400));
  EXPECT_EQ(policy.next_start_after(at_ms(400)), Instant::max());
}

// A worker that served ready_exit_window or longer ends its slot's run of
// failures as it leaves, whether it exits or the pool stops it; its slot
// restarts at once. One that exits of itself sooner is a failed start.
TEST(RestartPolicy, AnExitAfterServingRestartsAtOnceAnEarlyOneIsAFailedStart) {
  const PoolConfig config = policy_config();
  Draws draws;
  RestartPolicy policy(config, draws.random_below(), at_ms(0));
  (void)policy.start_failed(0, at_ms(0), failure("init"));
  EXPECT_FALSE(policy.ready(0));
  EXPECT_FALSE(policy.exited(0, at_ms(100), at_ms(600), failure("killed")));
  EXPECT_EQ(policy.failures(0), 0u);
  EXPECT_TRUE(policy.may_start(0, at_ms(600)));

  EXPECT_FALSE(policy.exited(1, at_ms(700), at_ms(710), failure("worker w1.1 exited (exit code 1)")));
  EXPECT_EQ(policy.failures(1), 1u);
  EXPECT_FALSE(policy.may_start(1, at_ms(710)));
  ASSERT_FALSE(policy.recent_failures().empty());
  EXPECT_NE(policy.recent_failures().back().message.find("10 ms after ready"), std::string::npos)
      << policy.recent_failures().back().message;
  EXPECT_EQ(policy.recent_failures().back().stderr_tail, "Traceback");

  (void)policy.start_failed(2, at_ms(0), failure("init"));
  policy.stopped(2, at_ms(100), at_ms(599));
  EXPECT_EQ(policy.failures(2), 1u) << "stopped before it served: the run goes on";
  policy.stopped(2, at_ms(100), at_ms(600));
  EXPECT_EQ(policy.failures(2), 0u);
}

// Exits right after ready, again and again, open the breaker: a success in
// between does not clear its window.
TEST(RestartPolicy, ACrashLoopThroughReadyOpensTheBreaker) {
  const PoolConfig config = policy_config();
  Draws draws;
  RestartPolicy policy(config, draws.random_below(), at_ms(0));
  bool opened = false;
  for (int i = 0; i < 3; ++i) {
    const Instant ready = at_ms(1000 * i);
    EXPECT_FALSE(policy.ready(0));
    opened = policy.exited(0, ready, ready + milliseconds(10), failure("crash"));
  }
  EXPECT_TRUE(opened);
  EXPECT_EQ(policy.breaker(), BreakerState::open);
}

TEST(RestartPolicy, FailedStartsOpenTheBreakerThenOneProbeMayStart) {
  const PoolConfig config = policy_config();
  Draws draws;
  RestartPolicy policy(config, draws.random_below(), at_ms(0));
  EXPECT_FALSE(policy.start_failed(0, at_ms(0), failure("first")));
  EXPECT_FALSE(policy.start_failed(1, at_ms(100), failure("second")));
  EXPECT_TRUE(policy.start_failed(2, at_ms(300), failure("third")));
  EXPECT_EQ(policy.breaker(), BreakerState::open);
  EXPECT_EQ(policy.half_open_at(), at_ms(2300));
  EXPECT_FALSE(policy.may_start(0, at_ms(5000))) << "nothing starts while open";
  EXPECT_FALSE(policy.poll(at_ms(2299)));
  EXPECT_TRUE(policy.poll(at_ms(2300)));
  EXPECT_EQ(policy.breaker(), BreakerState::half_open);
  EXPECT_EQ(policy.half_open_at(), Instant::max());

  ASSERT_TRUE(policy.may_start(1, at_ms(2300)));
  policy.starting(1, at_ms(2300));
  EXPECT_FALSE(policy.may_start(0, at_ms(2300))) << "one probe at a time";
  EXPECT_TRUE(policy.ready(1));
  EXPECT_EQ(policy.breaker(), BreakerState::closed);
  EXPECT_TRUE(policy.may_start(0, at_ms(2300)));
  policy.starting(0, at_ms(2300));
  EXPECT_TRUE(policy.may_start(2, at_ms(2300))) << "closed: no limit on starts";
}

TEST(RestartPolicy, AFailedProbeOpensTheBreakerAgain) {
  const PoolConfig config = policy_config();
  Draws draws;
  RestartPolicy policy(config, draws.random_below(), at_ms(0));
  for (int i = 0; i < 3; ++i) {
    (void)policy.start_failed(0, at_ms(0), failure("boom"));
  }
  ASSERT_TRUE(policy.poll(at_ms(2000)));
  ASSERT_TRUE(policy.may_start(0, at_ms(2000)));
  policy.starting(0, at_ms(2000));
  EXPECT_TRUE(policy.start_failed(0, at_ms(2100), failure("probe")));
  EXPECT_EQ(policy.breaker(), BreakerState::open);
  EXPECT_EQ(policy.half_open_at(), at_ms(4100));
  ASSERT_TRUE(policy.poll(at_ms(4100)));
  // The backoff of slot 0's four failures in a row ended before the cooldown.
  EXPECT_EQ(policy.next_start_after(at_ms(2100)), at_ms(2100) + milliseconds(800));
  EXPECT_TRUE(policy.may_start(0, at_ms(4100)));
}

TEST(RestartPolicy, KeepsTheLatestFailuresForItsErrors) {
  const PoolConfig config = policy_config();
  Draws draws;
  RestartPolicy policy(config, draws.random_below(), at_ms(0));
  const Error none = policy.unavailable();
  EXPECT_EQ(none.code, ErrorCode::pool_unavailable);
  EXPECT_NE(none.message.find("last failure: none"), std::string::npos) << none.message;
  for (std::size_t i = 0; i < RestartPolicy::recent_failures_max + 4; ++i) {
    (void)policy.start_failed(0, at_ms(static_cast<std::int64_t>(i) * 20'000), failure("boom " + std::to_string(i)));
  }
  ASSERT_EQ(policy.recent_failures().size(), RestartPolicy::recent_failures_max);
  EXPECT_EQ(policy.recent_failures().front().message, "boom 4");
  EXPECT_EQ(policy.recent_failures().back().message, "boom 19");
  const Error error = policy.unavailable();
  EXPECT_NE(error.message.find("pool 'policy' is unavailable"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("last failure: boom 19"), std::string::npos) << error.message;
  EXPECT_EQ(error.stderr_tail, "Traceback");
}

// The error is made again whenever what it says changes: the breaker's
// state as well as the last failure.
TEST(RestartPolicy, TheUnavailableErrorFollowsTheBreakersState) {
  const PoolConfig config = policy_config();
  Draws draws;
  RestartPolicy policy(config, draws.random_below(), at_ms(0));
  for (std::uint32_t slot = 0; slot < 3; ++slot) {
    (void)policy.start_failed(slot, at_ms(10), failure("boom"));
  }
  ASSERT_EQ(policy.breaker(), BreakerState::open);
  const std::string open = fmt::format("the circuit breaker is {}", to_string(BreakerState::open));
  EXPECT_NE(policy.unavailable().message.find(open), std::string::npos) << policy.unavailable().message;
  ASSERT_TRUE(policy.poll(at_ms(10) + config.breaker_cooldown));
  ASSERT_EQ(policy.breaker(), BreakerState::half_open);
  const std::string half_open = fmt::format("the circuit breaker is {}", to_string(BreakerState::half_open));
  EXPECT_NE(policy.unavailable().message.find(half_open), std::string::npos) << policy.unavailable().message;
}

TEST(RestartPolicyDeath, ASlotBeyondSizeMaxIsAMistake) {
  const PoolConfig config = policy_config();
  Draws draws;
  RestartPolicy policy(config, draws.random_below(), at_ms(0));
  EXPECT_DEATH((void)policy.may_start(3, at_ms(0)), "a worker slot beyond size.max");
}

}  // namespace
}  // namespace seedpool::detail
