#include <seedpool/core/assert.hpp>
#include <seedpool/core/channel.hpp>
#include <seedpool/core/codec.hpp>
#include <seedpool/sim/pool_scenario.hpp>

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string_view>

namespace seedpool::sim {

Pool& PoolHarness::make_pool(PoolConfig config) {
  SEEDPOOL_ASSERT_MSG(pool_ == nullptr, "one pool per scenario run");
  checker_ = std::make_unique<PoolChecker>(ctx.world, config, ctx.timeline, ctx.coverage, &ctx.faults, ctx.model);
  auto created = Pool::create(ctx.world, std::move(config), PoolHooks{checker_.get(), checker_.get()});
  SEEDPOOL_ASSERT_MSG(created.ok(), "scenario pool config is invalid");
  pool_ = std::move(created).value();
  return *pool_;
}

PoolChecker& PoolHarness::checker() {
  SEEDPOOL_ASSERT(checker_ != nullptr);
  return *checker_;
}

Status PoolHarness::start_pool(std::optional<Instant> deadline, bool pool_default) {
  SEEDPOOL_ASSERT(pool_ != nullptr);
  const PoolConfig& config = pool_->config();
  const Instant until = deadline.value_or(ctx.world.now() + config.init_timeout);
  checker().start_requested(until, config.init == InitMode::eager ? config.min_ready : 0);
  // start()'s own default is init_timeout from now (pool.hpp): the same
  // instant.
  Status started = pool_default && !deadline ? pool_->start() : pool_->start(until);
  checker().start_returned(started);
  return started;
}

void PoolHarness::shutdown_pool(std::optional<Instant> deadline) {
  SEEDPOOL_ASSERT(pool_ != nullptr);
  // shutdown()'s own default is shutdown_grace from now (pool.hpp): the same
  // instant.
  checker().shutdown_requested(deadline.value_or(ctx.world.now() + pool_->config().shutdown_grace));
  checker().shutdown_returned(deadline ? pool_->shutdown(*deadline) : pool_->shutdown());
  // Whichever caller it was: shutdown() returns once every process is reaped.
  checker().expect_reaped(ctx.host);
}

void PoolHarness::finish(std::optional<std::size_t> ready, std::optional<Duration> bound) {
  SEEDPOOL_ASSERT(pool_ != nullptr);
  ctx.quiet();
  checker().expect_recovered(*pool_, ready, bound.value_or(PoolChecker::recovery_bound(pool_->config())));
  shutdown_pool();
  // After shutdown every event has been delivered: the final counts must agree.
  checker().expect_counts_match(pool_->stats());
}

namespace {

// A payload, "caller {} call {}" of two 32-bit numbers, is at most 33 bytes:
// it is formatted without a bound check into a buffer of this size.
constexpr std::size_t payload_bytes_max = 48;
using PayloadBuffer = std::array<char, payload_bytes_max>;

// The next payload of `caller`, formatted into `buffer`. Formats compiled
// in: one payload per call is among the hottest formatting of a sweep, and
// on the stack it costs no allocation until the call's own string.
std::string_view next_payload(PayloadBuffer& buffer, std::uint32_t caller, std::uint32_t& sequence) {
  const char* const end = fmt::format_to(buffer.data(), FMT_COMPILE("caller {} call {}"), caller, sequence++);
  return {buffer.data(), static_cast<std::size_t>(end - buffer.data())};
}

void one_lease(ScenarioContext& ctx, PoolChecker& checker, Lease& lease, std::uint32_t caller,
               std::uint32_t& sequence, std::size_t calls, Duration call_timeout) {
  for (std::size_t i = 0; i < calls; ++i) {
    PayloadBuffer buffer{};
    std::string_view payload = next_payload(buffer, caller, sequence);
    std::string oversized;
    if (ctx.faults.fire(pool_faults::caller_oversized_call, 0)) {
      // Its frame is 1 to 16 bytes over the limit: the pool must refuse it.
      const std::size_t limit = checker.config().frame_bytes_max;
      oversized.assign(limit - kFrameHeaderBytes + 1 + ctx.world.decide(16), 'x');
      payload = oversized;
    }
    if (ctx.timeline.enabled()) {
      ctx.timeline.begin(fmt::format("caller {}", caller), fmt::format("call on {}", lease.worker().to_string()),
                         ctx.world.now());
    }
    const Instant deadline = ctx.world.now() + call_timeout;
    const std::uint64_t call = checker.call_begun(lease.worker(), deadline);
    Result<std::string> answer = lease.call(std::string(payload), deadline);
    if (ctx.timeline.enabled()) {
      ctx.timeline.end(fmt::format("caller {}", caller), ctx.world.now());
    }
    checker.call_answered(call, caller, payload, answer);
    const bool lease_kept = answer.ok() || answer.error().code == ErrorCode::worker_error ||
                            answer.error().code == ErrorCode::invalid_argument;  // refused unsent
    if (!lease_kept) {
      return;  // the worker is gone; a new lease is needed
    }
  }
}

void caller_body(ScenarioContext& ctx, PoolChecker& checker, Pool& pool, const Workload& w, std::uint32_t caller) {
  const std::string lane = ctx.timeline.enabled() ? fmt::format("caller {}", caller) : std::string();
  std::uint32_t sequence = 0;
  for (std::size_t call = 0; call < w.leases_per_caller; ++call) {
    ctx.world.sleep_for(ctx.faults.latency(Duration::zero(), w.think_time_max));
    const Duration timeout = ctx.faults.fire(pool_faults::caller_short_deadline)
                                 ? ctx.faults.latency(Duration::zero(), milliseconds(2))
                                 : ctx.faults.latency(w.checkout_timeout_min, w.checkout_timeout_max);
    CheckoutOptions options;
    options.deadline = ctx.world.now() + timeout;
    if (w.affinity_keys > 0) {
      options.affinity_key = fmt::format("key-{}", ctx.world.decide(w.affinity_keys));
      options.affinity_mode = w.affinity_mode;
    }
    if (w.execute_one_in > 0 && ctx.world.decide(w.execute_one_in) == 0) {
      // checkout + call + release in one: the same checkout, with an hour
      // for the checkout and the call together.
      PayloadBuffer buffer{};
      const std::string_view payload = next_payload(buffer, caller, sequence);
      ctx.timeline.begin(lane, "execute", ctx.world.now());
      // Half with the caller's checkout deadline, half with an hour: one
      // deadline bounds the checkout and the call together, short or long.
      const Instant execute_deadline = ctx.world.decide(2) == 0 ? *options.deadline : ctx.world.now() + hours(1);
      const Result<std::string> answer =
          pool.execute(std::string(payload), ExecuteOptions{.deadline = execute_deadline,
                                                            .affinity_key = std::move(options.affinity_key),
                                                            .affinity_mode = options.affinity_mode});
      ctx.timeline.end(lane, ctx.world.now());
      checker.execute_answered(caller, payload, answer, execute_deadline);
      continue;
    }
    const Instant deadline = *options.deadline;
    ctx.timeline.begin(lane, "checkout", ctx.world.now());
    const CheckoutOptions again = options;
    Result<PendingCheckout> pending = pool.begin_checkout(std::move(options));
    std::uint64_t id = pending.ok() ? pending.value().id() : 0;
    const bool cancel = pending.ok() && ctx.faults.fire(pool_faults::caller_cancel);
    if (cancel && w.reassign_one_in > 0 && ctx.world.decide(w.reassign_one_in) == 0) {
      // The caller asks again and assigns the new checkout over the old
      // one, which drops (cancels) it.
      const CheckoutCancelToken old = pending.value().cancel_token();
      checker.cancel_requested(id);
      if (ctx.world.decide(2) == 0) {
        // Or it gives up without waiting: destroying the PendingCheckout
        // drops (cancels) it.
        pending = Error{ErrorCode::cancelled, "dropped by its caller", {}};
        increment(ctx.coverage, "caller:checkout_destroyed");
        checker.checkout_dropped(id, old);
        ctx.timeline.end(lane, ctx.world.now());
        continue;
      }
      Result<PendingCheckout> next = pool.begin_checkout(again);
      if (next.ok()) {
        const std::uint64_t next_id = next.value().id();
        pending.value() = std::move(next.value());
        increment(ctx.coverage, "caller:checkout_assigned_over");
        checker.checkout_dropped(id, old);
        id = next_id;
      } else {
        checker.cancel_returned(id, false);  // nothing was dropped
        checker.checkout_answered(0, next.error().code);
      }
    } else if (cancel) {
      const Duration after = ctx.faults.latency(Duration::zero(), milliseconds(5));
      // Now and then a worker dies at the cancel's instant: it may be the one
      // a grant crossing the cancel went to (the lease is lost under it).
      const bool kill = w.external_kills && ctx.faults.fire(pool_faults::external_kill);
      ctx.world.spawn(fmt::format(FMT_COMPILE("canceller {}"), caller),
                      [&ctx, &world = ctx.world, &checker, token = pending.value().cancel_token(), after, id, kill] {
                        world.sleep_for(after);
                        if (kill && ctx.faults.enabled()) {
                          const std::vector<std::int64_t> pids = ctx.host.alive_pids();
                          if (!pids.empty()) {
                            ctx.host.kill(pids[world.decide(pids.size())]);
                          }
                        }
                        checker.cancel_requested(id);
                        checker.cancel_returned(id, token.cancel());
                      });
    }
    Result<Lease> lease = pending.ok() ? pending.value().wait() : Result<Lease>(pending.error());
    ctx.timeline.end(lane, ctx.world.now());
    checker.checkout_answered(id, lease.ok() ? std::nullopt : std::optional<ErrorCode>(lease.error().code));
    if (!lease.ok()) {
      checker.checkout_failed(lease.error());
      continue;
    }
    const WorkerRef worker = lease.value().worker();
    checker.lease_acquired(caller, worker, deadline);
    const std::size_t calls = 1 + ctx.world.decide(w.calls_per_lease_max);
    one_lease(ctx, checker, lease.value(), caller, sequence, calls, w.call_timeout);
    if (ctx.faults.fire(pool_faults::caller_vanish)) {
      ctx.world.sleep_for(ctx.faults.latency(milliseconds(1), seconds(2)));
    }
    checker.lease_released(caller, worker);
    if (w.reassign_one_in > 0 && ctx.world.decide(w.reassign_one_in) == 0) {
      lease.value() = Lease();  // assigning over a held lease releases it
      increment(ctx.coverage, "caller:lease_assigned_over");
    } else {
      lease.value().release();
    }
  }
}

void chaos_body(ScenarioContext& ctx, const std::shared_ptr<bool>& running) {
  while (*running && ctx.faults.enabled()) {
    ctx.world.sleep_for(ctx.faults.latency(milliseconds(1), milliseconds(200)));
    const std::vector<std::int64_t> pids = ctx.host.alive_pids();
    if (!pids.empty() && ctx.faults.fire(pool_faults::external_kill)) {
      ctx.host.kill(pids[ctx.world.decide(pids.size())]);
    }
    if (!pids.empty() && ctx.faults.fire(pool_faults::burst_kill)) {
      increment(ctx.coverage, "burst:every worker killed");
      for (const std::int64_t pid : pids) {
        ctx.host.kill(pid);
      }
    }
  }
}

}  // namespace

void run_workload(PoolHarness& harness, Pool& pool, const Workload& workload, Duration bound) {
  ScenarioContext& ctx = harness.ctx;
  PoolChecker& checker = harness.checker();
  checker.set_callers_complete(true);
  if (workload.affinity_keys > 0) {
    checker.expect_affinity_mode(workload.affinity_mode);
  }
  auto done = std::make_shared<Channel<std::uint32_t>>(ctx.world, "callers-done", workload.callers + 1);
  auto running = std::make_shared<bool>(true);
  if (workload.external_kills) {
    ctx.world.spawn("chaos", [&ctx, running, done] {
      chaos_body(ctx, running);
      (void)done->send(0);
    });
  }
  for (std::uint32_t i = 1; i <= workload.callers; ++i) {
    ctx.world.spawn(fmt::format(FMT_COMPILE("caller {}"), i), [&ctx, &checker, &pool, &workload, i, done] {
      caller_body(ctx, checker, pool, workload, i);
      (void)done->send(std::uint32_t{i});
    });
  }
  const Instant until = ctx.world.now() + bound;
  std::size_t finished = 0;
  bool chaos_done = !workload.external_kills;
  while (finished < workload.callers || !chaos_done) {
    if (finished == workload.callers) {
      *running = false;  // the chaos task stops with the callers
    }
    Received<std::uint32_t> one = done->receive(until);
    if (!one) {
      break;
    }
    if (*one.value == 0) {
      chaos_done = true;
    } else {
      ++finished;
    }
  }
  *running = false;
  checker.workload_finished(workload.callers, finished, bound);
}

}  // namespace seedpool::sim
