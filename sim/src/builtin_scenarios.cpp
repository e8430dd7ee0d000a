// The built-in scenarios: each a pool configuration, a caller workload and a
// fault profile aimed at one family of races.

#include <seedpool/core/channel.hpp>
#include <seedpool/sim/pool_scenario.hpp>

#include <fmt/format.h>

#include <memory>
#include <optional>

namespace seedpool::sim {
namespace {

// Timeouts short enough that a run covers many restarts in little virtual time.
PoolConfig base_config(std::size_t size) {
  PoolConfig c;
  c.name = "sim";
  c.command.program = "/opt/seedpool/sim-worker";
  c.size = {size, size};
  c.min_ready = 1;
  c.init_timeout = seconds(2);
  c.checkout_timeout = seconds(1);
  c.call_timeout = seconds(1);
  c.health_interval = seconds(1);
  c.health_timeout = milliseconds(200);
  c.restart_backoff_base = milliseconds(10);
  c.restart_backoff_max = seconds(1);
  c.ready_exit_window = milliseconds(100);
  c.breaker_failures = 5;
  c.breaker_window = seconds(10);
  c.breaker_cooldown = seconds(2);
  c.waiters_max = 256;
  c.shutdown_grace = seconds(2);
  c.terminate_grace = milliseconds(500);
  c.stderr_lines_kept = 20;
  return c;
}

FaultOptions profile(std::initializer_list<std::pair<FaultSite, std::uint32_t>> rates) {
  FaultOptions f;
  for (const auto& [site, ppm] : rates) {
    f.set(site, ppm);
  }
  return f;
}

// A function, not a namespace-scope constant: scenarios may be registered
// during another translation unit's static initialisation.
FaultOptions churn_faults() {
  using namespace pool_faults;
  return profile({
      {launch_failure, 5'000},  {slow_start, 20'000},    {init_error, 10'000},      {init_crash, 20'000},
      {init_hang, 5'000},       {init_garbage, 5'000},   {call_crash, 20'000},      {call_hang, 5'000},
      {call_garbage, 5'000},    {call_truncated, 5'000}, {call_wrong_id, 5'000},    {call_error, 20'000},
      {call_slow, 10'000},      {pings_ignored, 20'000}, {ignore_terminate, 50'000}, {slow_shutdown, 20'000},
      {caller_cancel, 50'000},  {caller_short_deadline, 50'000}, {caller_vanish, 20'000}, {external_kill, 300'000},
  });
}

void startup(ScenarioContext& ctx) {
  PoolConfig config = base_config(4);
  config.min_ready = 2;
  if (ctx.world.decide(4) == 0) {
    config.health_interval = Duration::zero();  // zero disables health checks
  }
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(config);
  // start() answers by its deadline, even with workers hanging in init: init
  // runs beside the pool loop, never inside it (checked by start-deadline).
  // Without a deadline of its own: start() defaults to init_timeout.
  const Status started = harness.start_pool(std::nullopt, true);
  increment(ctx.coverage, started ? "start:ok" : "start:failed");
  run_workload(harness, pool, Workload{.callers = 8, .leases_per_caller = 3});
  harness.finish(4);
}

void churn(ScenarioContext& ctx) {
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(base_config(8));
  (void)harness.start_pool();
  run_workload(harness, pool, Workload{.callers = 64, .leases_per_caller = 10, .calls_per_lease_max = 1, .external_kills = true});
  harness.finish(8);
}

// Bursts: a chaos task kills every live worker at once, now and then among
// single kills and failing starts. Healthy workers' slots must restart at
// once, each slot that keeps failing backs off on its own, and exits soon
// after ready count toward the breaker.
void burst(ScenarioContext& ctx) {
  PoolConfig config = base_config(8);
  config.size.min = 4;  // free slots beyond the ones owed a worker: a replacement must not move there
  config.restart_backoff_base = milliseconds(50);
  config.breaker_failures = 12;
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(config);
  (void)harness.start_pool();
  run_workload(harness, pool, Workload{.callers = 32, .leases_per_caller = 8, .calls_per_lease_max = 2,
                                   .think_time_max = milliseconds(60), .external_kills = true});
  harness.finish(std::nullopt);  // 4 to 8 ready, as demand left it
}

// A short queue: 32 callers on 4 workers reach waiters_max, so the storm
// also meets pool_saturated.
void cancel_storm(ScenarioContext& ctx) {
  PoolConfig config = base_config(4);
  config.waiters_max = 16;
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(config);
  (void)harness.start_pool();
  run_workload(harness, pool, Workload{.callers = 32, .leases_per_caller = 8, .checkout_timeout_min = milliseconds(1),
                                   .checkout_timeout_max = milliseconds(30), .external_kills = true});
  harness.finish(4);
}

void affinity(ScenarioContext& ctx) {
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(base_config(4));
  (void)harness.start_pool();
  const AffinityMode mode = ctx.world.decide(2) == 0 ? AffinityMode::prefer : AffinityMode::strict;
  run_workload(harness, pool, Workload{.callers = 16, .leases_per_caller = 6, .affinity_keys = 6,
                                   .affinity_mode = mode, .external_kills = true});
  harness.finish(4);
}

// The affinity workload through the pool's other doors: a quarter of the
// leases are Pool::execute() calls (which must check out as the caller
// asked, strict included), half the cancels are a new checkout assigned over
// the pending one (which must drop it), and the pool keeps fewer bindings
// than there are keys (affinity_keys_max: the oldest binding goes first; a
// strict waiter whose key's binding goes may take any idle worker at once).
void affinity_limits(ScenarioContext& ctx) {
  const AffinityMode mode = ctx.world.decide(2) == 0 ? AffinityMode::prefer : AffinityMode::strict;
  PoolConfig config = base_config(4);
  config.affinity_keys_max = 1 + ctx.world.decide(5);
  // A short queue: strict waiters for busy workers fill it while other
  // workers sit idle, and a checkout one of those can serve is never refused.
  config.waiters_max = 4;
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(config);
  (void)harness.start_pool();
  run_workload(harness, pool, Workload{.callers = 16, .leases_per_caller = 6, .affinity_keys = 6,
                                   .affinity_mode = mode, .external_kills = true, .execute_one_in = 4,
                                   .reassign_one_in = 2});
  harness.finish(4);
}

void recycle(ScenarioContext& ctx) {
  PoolConfig config = base_config(4);
  config.max_calls = 3;
  config.max_lifetime = milliseconds(500);
  config.max_lifetime_jitter = milliseconds(200);
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(config);
  (void)harness.start_pool();
  run_workload(harness, pool, Workload{.callers = 16, .leases_per_caller = 10});
  harness.finish(4);
}

// Lifetimes short against the load, so that they run out under leases (the
// worker is recycled at its checkin) as well as on idle workers, and no
// max_calls to recycle them first; a small frame_bytes_max, so that a
// caller's oversized call is refused on its own lease.
void lifetime(ScenarioContext& ctx) {
  PoolConfig config = base_config(4);
  config.max_lifetime = milliseconds(100);
  config.max_lifetime_jitter = milliseconds(40);
  config.frame_bytes_max = 64;
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(config);
  (void)harness.start_pool();
  run_workload(harness, pool, Workload{.callers = 8, .leases_per_caller = 10, .calls_per_lease_max = 3});
  harness.finish(4);
}

void health(ScenarioContext& ctx) {
  PoolConfig config = base_config(4);
  config.health_interval = milliseconds(100);
  config.health_timeout = milliseconds(50);
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(config);
  (void)harness.start_pool();
  run_workload(harness, pool, Workload{.callers = 8, .leases_per_caller = 5, .think_time_max = milliseconds(500)});
  harness.finish(4);
}

// The worker program is broken until a drawn instant 1 to 8 s away: every
// start crashes, after writing `traceback_lines` lines of traceback and then
// the line that explains the failure, which every error's tail must carry.
void broken_until_recovery(ScenarioContext& ctx, int traceback_lines) {
  const Instant recover_at = ctx.world.now() + ctx.faults.latency(seconds(1), seconds(8));
  ctx.host.set_behavior_for_launch([&ctx, recover_at, traceback_lines](std::uint64_t, const ProcessSpec&) {
    WorkerBehavior b;
    b.startup = ctx.faults.latency(milliseconds(1), milliseconds(50));
    if (ctx.world.now() < recover_at) {
      b.init = WorkerBehavior::Init::crash;
      for (int i = 0; i < traceback_lines; ++i) {
        b.stderr_before_crash.push_back(fmt::format("  File \"site-packages/mod{}.py\", line {}, in <module>", i, i));
      }
      b.stderr_before_crash.push_back("ImportError: No module named 'numpy'");
    }
    return b;
  });
}

// The breaker must open, fail checkouts fast, probe after its cooldown and
// close once the program works again. The traceback is longer than the ring
// (stderr_lines_kept 20): the tail must keep the newest lines.
void breaker(ScenarioContext& ctx) {
  broken_until_recovery(ctx, 30);
  PoolConfig config = base_config(4);
  if (ctx.world.decide(2) == 0) {
    // A cooldown shorter than the backoff a failing slot has reached: the
    // half-open probe must still wait for its slot's backoff.
    config.restart_backoff_base = milliseconds(500);
    config.restart_backoff_max = seconds(4);
    config.breaker_cooldown = milliseconds(300);
  }
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(config);
  harness.checker().expect_failure_stderr("ImportError: No module named 'numpy'");
  (void)harness.start_pool();
  // Callers during the outage must be answered quickly, never left to hang.
  run_workload(harness, pool, Workload{.callers = 8, .leases_per_caller = 4, .checkout_timeout_min = seconds(1),
                                   .checkout_timeout_max = seconds(3), .think_time_max = milliseconds(800)});
  harness.finish(4);
}

// A worker program that fails its first starts, slowly: with a backoff of
// seconds, five failures take longer than breaker_window, so the window
// must forget the oldest and the breaker must stay closed (or open only
// once five fall within it). Then the program works.
void breaker_window(ScenarioContext& ctx) {
  const std::uint64_t failing = 3 + ctx.world.decide(6);  // 3..8 failed starts
  ctx.host.set_behavior_for_launch([&ctx, failing](std::uint64_t launch, const ProcessSpec&) {
    WorkerBehavior b;
    b.startup = ctx.faults.latency(milliseconds(1), milliseconds(500));
    if (launch < failing) {
      b.init = WorkerBehavior::Init::crash;
      b.stderr_before_crash = {"RuntimeError: database not reachable yet"};
    }
    return b;
  });
  PoolConfig config = base_config(1);
  config.restart_backoff_base = seconds(2);
  config.restart_backoff_max = seconds(4);
  config.breaker_window = seconds(10);
  config.breaker_cooldown = seconds(5);
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(config);
  harness.checker().expect_failure_stderr("RuntimeError: database not reachable yet");
  (void)harness.start_pool();
  run_workload(harness, pool, Workload{.callers = 2, .leases_per_caller = 3, .checkout_timeout_min = seconds(2),
                                   .checkout_timeout_max = seconds(20), .think_time_max = seconds(3)});
  harness.finish(1);
}

// Shutdown under load; with `twice`, a second shutdown comes while the
// first one's grace may still run, its deadline before or after the first's.
void shutdown_under_load(ScenarioContext& ctx, bool twice) {
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(base_config(4));
  (void)harness.start_pool();
  auto stopped = std::make_shared<Channel<int>>(ctx.world, "shutdown-done", 3);
  const Duration after = ctx.faults.latency(milliseconds(1), milliseconds(300));
  const Duration grace = ctx.faults.latency(Duration::zero(), seconds(1));
  ctx.world.spawn("shutdown", [&ctx, &harness, stopped, after, grace] {
    ctx.world.sleep_for(after);
    harness.shutdown_pool(ctx.world.now() + grace);
    (void)stopped->send(1);
  });
  if (twice) {
    // Half of the second deadlines come before the first's, on average.
    const Duration again = after + ctx.faults.latency(Duration::zero(), grace);
    const Duration second_grace = ctx.faults.latency(Duration::zero(), grace);
    ctx.world.spawn("shutdown-again", [&ctx, &harness, stopped, again, second_grace] {
      ctx.world.sleep_for(again);
      harness.shutdown_pool(ctx.world.now() + second_grace);
      (void)stopped->send(1);
    });
  }
  // A dashboard reads the stats while the pool shuts down.
  const Duration read_at = after + ctx.faults.latency(Duration::zero(), seconds(2));
  ctx.world.spawn("stats-reader", [&ctx, &harness, &pool, read_at, stopped] {
    ctx.world.sleep_for(read_at);
    (void)harness.checker().stats_of(pool);
    (void)stopped->send(1);
  });
  run_workload(harness, pool, Workload{.callers = 16, .leases_per_caller = 6});
  for (int i = 0; i < (twice ? 3 : 2); ++i) {
    (void)stopped->receive();
  }
  ctx.faults.set_enabled(false);
  harness.checker().expect_counts_match(pool.stats());
}

void shutdown(ScenarioContext& ctx) { shutdown_under_load(ctx, false); }
void shutdown_twice(ScenarioContext& ctx) { shutdown_under_load(ctx, true); }

// Workers that flood stderr: before a crash, at init and with calls, bursts
// of up to three rings' worth of lines, up to three times longer than a line
// may be. Every error a caller or start() sees carries a tail that fits the
// ring (stderr-tail).
void stderr_flood(ScenarioContext& ctx) {
  PoolConfig config = base_config(4);
  config.stderr_lines_kept = 5;
  config.stderr_line_bytes_max = 64;
  const auto burst = [&ctx, &config](const char* what) {
    std::vector<std::string> lines(1 + ctx.world.decide(3 * config.stderr_lines_kept));
    for (std::size_t i = 0; i < lines.size(); ++i) {
      lines[i] = fmt::format("{} line {} ", what, i);
      lines[i].resize(lines[i].size() + ctx.world.decide(3 * config.stderr_line_bytes_max), '.');
    }
    return lines;
  };
  ctx.host.set_behavior_for_launch([&ctx, burst](std::uint64_t, const ProcessSpec&) {
    WorkerBehavior b = faulty_worker(ctx.faults);
    b.stderr_on_init = burst("init");
    b.stderr_before_crash = burst("crash");
    return b;
  });
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(config);
  (void)harness.start_pool();
  run_workload(harness, pool, Workload{.callers = 16, .leases_per_caller = 5, .external_kills = true});
  harness.finish(4);
}

// Workers that now and then answer a call with a stale duplicate of their
// previous reply (that call's request id and payload), as a worker does that
// flushed a buffered answer twice; others answer late, or write a pong
// nobody asked for before their reply. A stale reply must never reach a
// caller: it does not answer the call in flight; and a worker that wrote a
// frame nobody asked for is replaced at once.
void stale_reply(ScenarioContext& ctx) {
  PoolHarness harness(ctx);
  ctx.host.set_behavior_for_launch([&ctx, &harness](std::uint64_t, const ProcessSpec&) {
    WorkerBehavior b;
    b.startup = ctx.faults.latency(milliseconds(5), milliseconds(80));
    auto previous = std::make_shared<std::optional<Frame>>();
    b.on_call = [&ctx, &harness, previous](std::uint64_t, const Frame& call) {
      CallAction action;
      if (previous->has_value() && ctx.faults.fire(pool_faults::call_wrong_id)) {
        action.kind = CallAction::Kind::wrong_request_id;
        action.request_id = (*previous)->request_id;
        action.payload = (*previous)->payload;
      } else if (ctx.faults.fire(pool_faults::call_stray_pong)) {
        action.kind = CallAction::Kind::stray_pong;
        harness.checker().expect_protocol_break(call.payload);
      } else if (ctx.faults.fire(pool_faults::call_slow)) {
        action.latency = ctx.faults.latency(milliseconds(5), seconds(3));
      }
      *previous = call;
      return action;
    };
    return b;
  });
  Pool& pool = harness.make_pool(base_config(4));
  (void)harness.start_pool();
  run_workload(harness, pool, Workload{.callers = 16, .leases_per_caller = 6, .calls_per_lease_max = 3});
  harness.finish(4);
}

// A lazy pool through an outage: with no demand while checkouts fail fast,
// the half-open breaker must still probe.
void lazy_breaker(ScenarioContext& ctx) {
  broken_until_recovery(ctx, 0);
  PoolConfig config = base_config(4);
  config.init = InitMode::lazy;
  config.size = {0, 4};
  config.min_ready = 0;
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(config);
  harness.checker().expect_failure_stderr("ImportError: No module named 'numpy'");
  (void)harness.start_pool();
  run_workload(harness, pool, Workload{.callers = 8, .leases_per_caller = 4, .checkout_timeout_min = seconds(1),
                                   .checkout_timeout_max = seconds(3), .think_time_max = milliseconds(800)});
  harness.finish(std::nullopt);
}

void lazy(ScenarioContext& ctx) {
  PoolConfig config = base_config(4);
  config.init = InitMode::lazy;
  config.size = {ctx.world.decide(3), 4};  // size.min counts in eager mode only
  config.min_ready = 0;
  PoolHarness harness(ctx);
  Pool& pool = harness.make_pool(config);
  (void)harness.start_pool();
  run_workload(harness, pool, Workload{.callers = 32, .leases_per_caller = 4});
  harness.finish(std::nullopt);
}

}  // namespace

void register_builtin_scenarios(ScenarioRegistry& registry) {
  using namespace pool_faults;
  const std::size_t first = registry.all().size();
  const FaultOptions light =
      profile({{call_crash, 10'000}, {call_error, 20'000}, {slow_start, 20'000}, {caller_cancel, 20'000}});
  registry.add({"startup", "eager start of 4 workers (min_ready 2) with failing, hanging and slow workers",
                profile({{launch_failure, 100'000}, {slow_start, 100'000}, {init_error, 50'000}, {init_crash, 100'000},
                         {init_hang, 50'000}, {init_garbage, 30'000}}),
                startup});
  registry.add({"churn", "8 workers, 64 callers making 10 calls each (a lease per call), crashes and kills everywhere",
                churn_faults(), churn});
  registry.add({"burst", "4 to 8 workers killed all at once now and then, among single kills and failing starts",
                profile({{burst_kill, 60'000}, {external_kill, 40'000}, {init_crash, 40'000}, {init_error, 20'000},
                         {slow_start, 50'000}, {call_crash, 10'000}, {caller_cancel, 20'000}}),
                burst});
  registry.add({"cancel-storm", "32 callers with very short deadlines and cancels racing grants",
                profile({{caller_cancel, 400'000}, {caller_short_deadline, 300'000}, {call_slow, 20'000},
                         {call_crash, 10'000}, {external_kill, 100'000}}),
                cancel_storm});
  registry.add({"affinity", "affinity keys (prefer or strict, per seed) while workers crash and get killed",
                profile({{call_crash, 20'000}, {external_kill, 200'000}, {call_error, 20'000}, {caller_cancel, 30'000}}),
                affinity});
  registry.add({"affinity-limits",
                "affinity through execute(), checkouts assigned over pending ones, and (prefer) fewer bindings than keys",
                profile({{call_crash, 20'000}, {external_kill, 200'000}, {call_error, 20'000}, {caller_cancel, 100'000},
                         {call_slow, 20'000}}),
                affinity_limits});
  registry.add({"recycle", "recycling after max_calls and max_lifetime with jitter under load", light, recycle});
  registry.add({"lifetime", "lifetimes running out under leases and on idle workers; calls over frame_bytes_max",
                profile({{caller_oversized_call, 50'000}, {caller_vanish, 30'000}, {call_slow, 20'000},
                         {call_crash, 10'000}, {caller_cancel, 20'000}}),
                lifetime});
  registry.add({"health", "hung workers and ignored pings found by health checks",
                profile({{pings_ignored, 200'000}, {call_hang, 30'000}, {ignore_terminate, 100'000}}), health});
  registry.add({"breaker", "a worker program that fails every init until it recovers", profile({{caller_cancel, 20'000}}),
                breaker});
  registry.add({"breaker-window", "failed starts spread wider than breaker_window: the breaker counts only the window",
                profile({{caller_cancel, 20'000}}), breaker_window});
  registry.add({"shutdown", "shutdown under load, with workers that ignore SIGTERM or exit slowly",
                profile({{ignore_terminate, 300'000}, {slow_shutdown, 300'000}, {call_slow, 100'000},
                         {call_hang, 20'000}, {caller_vanish, 50'000}}),
                shutdown});
  registry.add({"shutdown-twice",
                "a second shutdown during the first one's grace: an earlier deadline ends the grace then, a later one "
                "changes nothing",
                profile({{ignore_terminate, 300'000}, {slow_shutdown, 300'000}, {call_slow, 300'000},
                         {call_hang, 50'000}, {caller_vanish, 50'000}}),
                shutdown_twice});
  registry.add({"stderr-flood", "workers that flood stderr before crashes, at init and in calls; error tails fit the ring",
                profile({{init_crash, 100'000}, {init_error, 50'000}, {init_hang, 20'000}, {call_crash, 100'000},
                         {call_hang, 20'000}, {call_error, 50'000}, {caller_short_deadline, 50'000},
                         {external_kill, 100'000}}),
                stderr_flood});
  registry.add({"lazy", "a lazy pool under concurrent demand never exceeds size.max", light, lazy});
  registry.add({"lazy-breaker", "a lazy pool through an outage: the half-open breaker probes with nobody waiting",
                profile({{caller_cancel, 20'000}}), lazy_breaker});
  registry.add({"stale-reply", "workers that resend an earlier reply or answer late; no caller gets another's reply",
                profile({{call_wrong_id, 30'000}, {call_stray_pong, 2'000}, {call_slow, 20'000},
                         {caller_cancel, 20'000}}),
                stale_reply});
  registry.mark_builtin(first);
}

}  // namespace seedpool::sim
