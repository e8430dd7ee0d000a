// Unit tests of the pool's pure building blocks: the circuit breaker's
// window, open, half-open and close; the bounded stderr ring; the latency
// histogram; the telemetry aggregator; and the Prometheus text format.

#include <seedpool/core/circuit_breaker.hpp>
#include <seedpool/core/stderr_ring.hpp>
#include <seedpool/core/telemetry.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace seedpool {
namespace {

Instant at_ms(std::int64_t ms) { return Instant::zero() + milliseconds(ms); }

// ---------------------------------------------------------------- CircuitBreaker

TEST(CircuitBreaker, OpensAfterEnoughFailuresWithinTheWindow) {
  CircuitBreaker breaker(3, milliseconds(100), seconds(1));
  EXPECT_EQ(breaker.state(), BreakerState::closed);
  EXPECT_FALSE(breaker.record_failure(at_ms(0)));
  EXPECT_FALSE(breaker.record_failure(at_ms(50)));
  EXPECT_EQ(breaker.failures(), 2u);
  EXPECT_EQ(breaker.half_open_at(), Instant::max());
  EXPECT_TRUE(breaker.record_failure(at_ms(99)));
  EXPECT_EQ(breaker.state(), BreakerState::open);
  EXPECT_EQ(breaker.half_open_at(), at_ms(99) + seconds(1));
  // Further failures while open change nothing.
  EXPECT_FALSE(breaker.record_failure(at_ms(120)));
  EXPECT_EQ(breaker.half_open_at(), at_ms(99) + seconds(1));
}

TEST(CircuitBreaker, FailuresOlderThanTheWindowAreForgotten) {
  CircuitBreaker breaker(3, milliseconds(100), seconds(1));
  EXPECT_FALSE(breaker.record_failure(at_ms(0)));
  EXPECT_FALSE(breaker.record_failure(at_ms(60)));
  // The first failure is exactly one window old at 100 ms: it no longer counts.
  EXPECT_FALSE(breaker.record_failure(at_ms(100)));
  EXPECT_EQ(breaker.state(), BreakerState::closed);
  EXPECT_EQ(breaker.failures(), 2u);
  EXPECT_TRUE(breaker.record_failure(at_ms(159)));
  EXPECT_EQ(breaker.state(), BreakerState::open);
}

// A success in between does not clear the window: failed starts within it
// still open the breaker (a crash loop that reaches ready each time).
TEST(CircuitBreaker, SuccessKeepsTheWindowsFailuresWhileClosed) {
  CircuitBreaker breaker(2, seconds(10), seconds(1));
  EXPECT_FALSE(breaker.record_failure(at_ms(0)));
  EXPECT_FALSE(breaker.record_success());
  EXPECT_EQ(breaker.failures(), 1u);
  EXPECT_TRUE(breaker.record_failure(at_ms(1)));
  EXPECT_EQ(breaker.state(), BreakerState::open);
}

TEST(CircuitBreaker, HalfOpensAfterTheCooldownThenClosesOnSuccess) {
  CircuitBreaker breaker(1, seconds(10), seconds(2));
  EXPECT_TRUE(breaker.record_failure(at_ms(0)));
  EXPECT_FALSE(breaker.poll(at_ms(1999)));
  EXPECT_EQ(breaker.state(), BreakerState::open);
  EXPECT_TRUE(breaker.poll(at_ms(2000)));
  EXPECT_EQ(breaker.state(), BreakerState::half_open);
  EXPECT_EQ(breaker.half_open_at(), Instant::max());
  EXPECT_FALSE(breaker.poll(at_ms(5000)));  // only open moves on poll
  EXPECT_TRUE(breaker.record_success());
  EXPECT_EQ(breaker.state(), BreakerState::closed);
  EXPECT_FALSE(breaker.record_success());
}

TEST(CircuitBreaker, FailedProbeReopensForAnotherCooldown) {
  CircuitBreaker breaker(3, seconds(10), seconds(2));
  for (int i = 0; i < 3; ++i) {
    (void)breaker.record_failure(at_ms(i));
  }
  ASSERT_TRUE(breaker.poll(at_ms(2002)));
  // One failure is enough in half-open, whatever failures_to_open says.
  EXPECT_TRUE(breaker.record_failure(at_ms(2500)));
  EXPECT_EQ(breaker.state(), BreakerState::open);
  EXPECT_EQ(breaker.half_open_at(), at_ms(4500));
  EXPECT_FALSE(breaker.poll(at_ms(4499)));
  EXPECT_TRUE(breaker.poll(at_ms(4500)));
}

TEST(CircuitBreaker, StateNames) {
  EXPECT_EQ(to_string(BreakerState::closed), "closed");
  EXPECT_EQ(to_string(BreakerState::open), "open");
  EXPECT_EQ(to_string(BreakerState::half_open), "half_open");
}

// ---------------------------------------------------------------- StderrRing

TEST(StderrRing, KeepsTheNewestLinesAndCountsTheDropped) {
  StderrRing ring(3, 100);
  EXPECT_EQ(ring.tail(), "");
  for (int i = 0; i < 5; ++i) {
    ring.push(fmt::format("line {}", i));
  }
  EXPECT_EQ(ring.size(), 3u);
  EXPECT_EQ(ring.dropped(), 2u);
  EXPECT_EQ(ring.tail(), "line 2\nline 3\nline 4");
  EXPECT_EQ(ring.tail(2), "line 3\nline 4");
  EXPECT_EQ(ring.tail(10), "line 2\nline 3\nline 4");
  EXPECT_EQ(ring.tail(0), "");
}

TEST(StderrRing, CutsLongLinesAndMarksTheCut) {
  StderrRing ring(2, 5);
  ring.push("12345");
  ring.push("1234567890");
  EXPECT_EQ(ring.tail(), "12345\n12345…[cut]");
  ring.push("");
  EXPECT_EQ(ring.tail(), "12345…[cut]\n");
}

// ---------------------------------------------------------------- Histogram

TEST(Histogram, BucketsAreCumulativeAndInclusiveOfTheirBound) {
  Histogram h;
  h.observe(microseconds(100));   // exactly the first bound
  h.observe(microseconds(101));   // the second bucket
  h.observe(milliseconds(3));     // <= 5 ms
  h.observe(seconds(120));        // beyond the last bound
  h.observe(nanoseconds(-5));     // clamped to zero
  EXPECT_EQ(h.count(), 5u);
  EXPECT_EQ(h.cumulative(0), 2u);
  EXPECT_EQ(h.cumulative(1), 3u);
  EXPECT_EQ(h.cumulative(4), 3u);  // <= 2.5 ms
  EXPECT_EQ(h.cumulative(5), 4u);  // <= 5 ms
  EXPECT_EQ(h.cumulative(Histogram::bounds_ns.size() - 1), 4u);
  EXPECT_EQ(h.sum_ns(), microseconds(201).ns() + milliseconds(3).ns() + seconds(120).ns());
}

TEST(Histogram, QuantileBoundsPointAtTheBucketHoldingTheRank) {
  Histogram h;
  for (int i = 0; i < 90; ++i) {
    h.observe(milliseconds(1));
  }
  for (int i = 0; i < 10; ++i) {
    h.observe(milliseconds(200));
  }
  EXPECT_EQ(h.quantile_bound(50), milliseconds(1));
  EXPECT_EQ(h.quantile_bound(90), milliseconds(1));
  EXPECT_EQ(h.quantile_bound(91), milliseconds(250));
  EXPECT_EQ(h.quantile_bound(99), milliseconds(250));
  Histogram slow;
  slow.observe(minutes(5));
  EXPECT_EQ(slow.quantile_bound(50), Duration::max());
}

TEST(Histogram, SumSaturatesInsteadOfOverflowing) {
  Histogram h;
  h.observe(Duration::max());
  h.observe(Duration::max());
  EXPECT_EQ(h.sum_ns(), Duration::max().ns());
  EXPECT_EQ(h.count(), 2u);
}

// ---------------------------------------------------------------- Aggregator and Prometheus

TelemetryEvent event(TelemetryKind kind, Duration duration = {}, std::optional<ErrorCode> error = {}) {
  TelemetryEvent e;
  e.kind = kind;
  e.duration = duration;
  e.error = error;
  return e;
}

TelemetryEvent state_change(WorkerState from, WorkerState to) {
  TelemetryEvent e = event(TelemetryKind::worker_state);
  e.worker = WorkerRef{0, 1};
  e.from = from;
  e.to = to;
  return e;
}

TEST(TelemetryAggregator, FoldsEveryKindOfEvent) {
  TelemetryAggregator aggregator("agg");
  aggregator.on_event(event(TelemetryKind::checkout, milliseconds(2)));
  aggregator.on_event(event(TelemetryKind::checkout, seconds(5), ErrorCode::timeout));
  aggregator.on_event(event(TelemetryKind::call, milliseconds(7)));
  aggregator.on_event(event(TelemetryKind::call, milliseconds(1), ErrorCode::worker_crashed));
  aggregator.on_event(event(TelemetryKind::worker_init, milliseconds(50)));
  aggregator.on_event(event(TelemetryKind::worker_exit));
  aggregator.on_event(event(TelemetryKind::worker_recycle));
  aggregator.on_event(event(TelemetryKind::health_failure));
  TelemetryEvent opened = event(TelemetryKind::breaker);
  opened.breaker = BreakerState::open;
  aggregator.on_event(opened);
  aggregator.on_event(state_change(WorkerState::dead, WorkerState::starting));
  aggregator.on_event(state_change(WorkerState::starting, WorkerState::initializing));
  aggregator.on_event(state_change(WorkerState::initializing, WorkerState::ready));

  const PoolStats& stats = aggregator.stats();
  EXPECT_EQ(stats.pool, "agg");
  EXPECT_EQ(stats.count(stats.checkouts, "ok"), 1u);
  EXPECT_EQ(stats.count(stats.checkouts, "timeout"), 1u);
  EXPECT_EQ(stats.count(stats.checkouts, "cancelled"), 0u);
  EXPECT_EQ(stats.total(stats.checkouts), 2u);
  EXPECT_EQ(stats.count(stats.calls, "worker_crashed"), 1u);
  EXPECT_EQ(stats.call_duration.sum_ns(), milliseconds(8).ns());
  EXPECT_EQ(stats.count(stats.inits, "ok"), 1u);
  EXPECT_EQ(stats.worker_exits, 1u);
  EXPECT_EQ(stats.recycles, 1u);
  EXPECT_EQ(stats.health_failures, 1u);
  EXPECT_EQ(stats.breaker, BreakerState::open);
  EXPECT_EQ(stats.breaker_transitions.at("open"), 1u);
  EXPECT_EQ(stats.workers_in(WorkerState::ready), 1);
  EXPECT_EQ(stats.workers_in(WorkerState::starting), 0);
  EXPECT_EQ(stats.workers_in(WorkerState::dead), 0);
}

// Every sample line of the exposition: "name{labels} value".
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() == '#') {
      continue;
    }
    const auto space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

TEST(Prometheus, ExposesTheDocumentedNamesWithTheirValues) {
  TelemetryAggregator aggregator("p");
  for (int i = 0; i < 3; ++i) {
    aggregator.on_event(event(TelemetryKind::call, milliseconds(20)));
  }
  aggregator.on_event(event(TelemetryKind::checkout, microseconds(300), ErrorCode::pool_saturated));
  aggregator.on_event(event(TelemetryKind::worker_exit));
  aggregator.on_event(state_change(WorkerState::dead, WorkerState::starting));
  const std::string text = aggregator.stats().to_prometheus();
  const auto values = samples(text);

  EXPECT_EQ(values.at(R"(seedpool_calls_total{pool="p",outcome="ok"})"), "3");
  EXPECT_EQ(values.at(R"(seedpool_call_duration_seconds_count{pool="p"})"), "3");
  EXPECT_EQ(values.at(R"(seedpool_call_duration_seconds_sum{pool="p"})"), "0.06");
  EXPECT_EQ(values.at(R"(seedpool_call_duration_seconds_bucket{pool="p",le="0.01"})"), "0");
  EXPECT_EQ(values.at(R"(seedpool_call_duration_seconds_bucket{pool="p",le="0.025"})"), "3");
  EXPECT_EQ(values.at(R"(seedpool_call_duration_seconds_bucket{pool="p",le="+Inf"})"), "3");
  EXPECT_EQ(values.at(R"(seedpool_checkouts_total{pool="p",outcome="pool_saturated"})"), "1");
  EXPECT_EQ(values.at(R"(seedpool_checkout_wait_seconds_sum{pool="p"})"), "0.0003");
  EXPECT_EQ(values.at(R"(seedpool_checkout_wait_seconds_bucket{pool="p",le="0.0001"})"), "0");
  EXPECT_EQ(values.at(R"(seedpool_checkout_wait_seconds_bucket{pool="p",le="60"})"), "1");
  EXPECT_EQ(values.at(R"(seedpool_worker_init_seconds_count{pool="p"})"), "0");
  EXPECT_EQ(values.at(R"(seedpool_worker_exits_total{pool="p"})"), "1");
  EXPECT_EQ(values.at(R"(seedpool_worker_recycles_total{pool="p"})"), "0");
  EXPECT_EQ(values.at(R"(seedpool_health_failures_total{pool="p"})"), "0");
  EXPECT_EQ(values.at(R"(seedpool_breaker_open{pool="p"})"), "0");
  EXPECT_EQ(values.at(R"(seedpool_workers{pool="p",state="starting"})"), "1");
  EXPECT_EQ(values.at(R"(seedpool_workers{pool="p",state="ready"})"), "0");

  // Every family is declared once, with its type, before its samples.
  const std::vector<std::pair<std::string, std::string>> families = {
      {"checkouts_total", "counter"},      {"checkout_wait_seconds", "histogram"},
      {"calls_total", "counter"},          {"call_duration_seconds", "histogram"},
      {"worker_inits_total", "counter"},   {"worker_init_seconds", "histogram"},
      {"worker_exits_total", "counter"},   {"worker_recycles_total", "counter"},
      {"health_failures_total", "counter"}, {"breaker_transitions_total", "counter"},
      {"breaker_open", "gauge"},           {"workers", "gauge"},
  };
  for (const auto& [name, type] : families) {
    const std::string declaration = fmt::format("# TYPE seedpool_{} {}\n", name, type);
    const auto first = text.find(declaration);
    EXPECT_NE(first, std::string::npos) << declaration;
    EXPECT_EQ(text.find(declaration, first + 1), std::string::npos) << declaration;
    EXPECT_NE(text.find(fmt::format("# HELP seedpool_{} ", name)), std::string::npos) << name;
  }
  EXPECT_EQ(text.back(), '\n');
}

TEST(Prometheus, HistogramBucketsNeverDecrease) {
  TelemetryAggregator aggregator("mono");
  for (std::int64_t ms = 0; ms < 70'000; ms += 997) {
    aggregator.on_event(event(TelemetryKind::worker_init, milliseconds(ms)));
  }
  const auto values = samples(aggregator.stats().to_prometheus());
  std::uint64_t previous = 0;
  for (const std::int64_t bound : Histogram::bounds_ns) {
    std::string le = fmt::format("{}.{:09}", bound / 1'000'000'000, bound % 1'000'000'000);
    while (le.back() == '0') {
      le.pop_back();
    }
    if (le.back() == '.') {
      le.pop_back();
    }
    const std::string key = fmt::format(R"(seedpool_worker_init_seconds_bucket{{pool="mono",le="{}"}})", le);
    ASSERT_TRUE(values.contains(key)) << key;
    const std::uint64_t count = std::stoull(values.at(key));
    EXPECT_GE(count, previous) << key;
    previous = count;
  }
  EXPECT_LE(previous, std::stoull(values.at(R"(seedpool_worker_init_seconds_count{pool="mono"})")));
}

TEST(TelemetryNames, OutcomeLabelsAndEnumNames) {
  EXPECT_EQ(outcome_label(std::nullopt), "ok");
  EXPECT_EQ(outcome_label(ErrorCode::pool_unavailable), "pool_unavailable");
  EXPECT_EQ(to_string(WorkerState::initializing), "initializing");
  EXPECT_EQ(to_string(TelemetryKind::health_failure), "health_failure");
  EXPECT_EQ((WorkerRef{2, 5}).to_string(), "w2.5");
}

// Tables indexed by outcome (the aggregator's, the simulator's checker's)
// have outcome_count slots: the numbering must reach every error code, and
// a code declared after io_error would fall outside them.
TEST(TelemetryNames, OutcomeNumbersCoverEveryErrorCodeOnce) {
  EXPECT_EQ(outcome_index(std::nullopt), 0U);
  EXPECT_EQ(outcome_at(0), std::nullopt);
  for (std::size_t i = 1; i < outcome_count; ++i) {
    const std::optional<ErrorCode> code = outcome_at(i);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(outcome_index(code), i);
    EXPECT_NE(outcome_label(code), "unknown") << i;
  }
  EXPECT_EQ(outcome_at(outcome_count - 1), ErrorCode::io_error);
  EXPECT_EQ(outcome_label(outcome_at(outcome_count)), "unknown");  // past the last code
}

}  // namespace
}  // namespace seedpool
