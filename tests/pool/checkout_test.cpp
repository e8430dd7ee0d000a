// Checkout: grants and release, FIFO waiters, deadlines, cancellation and
// the grant that races it, saturation, affinity (prefer and strict), and
// execute.

#include "pool/pool_test_support.hpp"

#include <seedpool/core/codec.hpp>

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace seedpool {
namespace {

using namespace pooltest;

// A single-worker pool after start(); every test here starts from it.
std::unique_ptr<Pool> started_pool(World& world, PoolConfig config, PoolHooks hooks = {}) {
  std::unique_ptr<Pool> pool = make_pool(world, std::move(config), hooks);
  if (pool != nullptr) {
    const Status started = pool->start();
    EXPECT_TRUE(started.ok()) << started.error().describe();
  }
  return pool;
}

TEST(Checkout, GrantsAReadyWorkerAndReleaseChecksItBackIn) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    Result<Lease> first = pool->checkout();
    ASSERT_TRUE(first.ok()) << first.error().describe();
    EXPECT_TRUE(first.value().held());
    EXPECT_EQ(pool->stats().workers_in(WorkerState::busy), 1);

    // The only worker is leased: a second checkout waits out its deadline.
    const Instant asked = world.now();
    Result<Lease> second = pool->checkout({.deadline = in(world, milliseconds(50))});
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().code, ErrorCode::timeout);
    EXPECT_EQ(world.now() - asked, milliseconds(50));

    const WorkerRef worker = first.value().worker();
    first.value().release();
    first.value().release();  // idempotent
    EXPECT_FALSE(first.value().held());
    Result<std::string> on_released = first.value().call("x");
    ASSERT_FALSE(on_released.ok());
    EXPECT_EQ(on_released.error().code, ErrorCode::invalid_argument);

    Result<Lease> third = pool->checkout({.deadline = in(world, milliseconds(1))});
    ASSERT_TRUE(third.ok()) << third.error().describe();
    EXPECT_EQ(third.value().worker(), worker);
    third.value().release();
    const PoolStats stats = pool->stats();
    EXPECT_EQ(stats.workers_in(WorkerState::ready), 1);
    EXPECT_EQ(stats.workers_in(WorkerState::busy), 0);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(Checkout, BeforeStartIsAnInvalidArgument) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    auto pool = make_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    Result<Lease> lease = pool->checkout();
    ASSERT_FALSE(lease.ok());
    EXPECT_EQ(lease.error().code, ErrorCode::invalid_argument);
    EXPECT_EQ(host.launches(), 0u);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(Checkout, WaitersAreServedInArrivalOrder) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    Result<Lease> holder = pool->checkout();
    ASSERT_TRUE(holder.ok());
    std::vector<int> served;
    {
      TaskGroup callers(world);
      for (int i = 0; i < 4; ++i) {
        callers.spawn(fmt::format("caller-{}", i), [&, i] {
          world.sleep_for(milliseconds(1 + i));  // arrive in order i = 0, 1, 2, 3
          Result<Lease> lease = pool->checkout({.deadline = in(world, seconds(5))});
          ASSERT_TRUE(lease.ok()) << lease.error().describe();
          served.push_back(i);
          world.sleep_for(milliseconds(5));
        });
      }
      world.sleep_for(milliseconds(20));
      holder.value().release();
      callers.join();
    }
    EXPECT_EQ(served, (std::vector<int>{0, 1, 2, 3}));
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// The worker comes free at the very instant the waiter's deadline passes.
// However the pool task and the waiter interleave there, the waiter is
// answered with timeout, never with a worker, and the worker is not lost.
TEST(Checkout, WaiterWhoseDeadlinePassedIsNeverGranted) {
  sweep_strategies(60, [](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    Result<Lease> holder = pool->checkout();
    ASSERT_TRUE(holder.ok());
    const Instant deadline = in(world, milliseconds(50));
    std::optional<Result<Lease>> waited;
    {
      TaskGroup group(world);
      group.spawn("waiter", [&] { waited.emplace(pool->checkout({.deadline = deadline})); });
      group.spawn("releaser", [&] {
        world.sleep_until(deadline);
        holder.value().release();
      });
    }
    ASSERT_TRUE(waited.has_value());
    ASSERT_FALSE(waited->ok()) << "a waiter was granted a worker at or after its deadline";
    EXPECT_EQ(waited->error().code, ErrorCode::timeout);
    Result<Lease> after = pool->checkout({.deadline = in(world, milliseconds(10))});
    EXPECT_TRUE(after.ok()) << "the worker was lost: " << after.error().describe();
  });
}

// Cancel a waiter that is still queued: wait() reports cancelled, the pool
// drops the waiter, and the worker later goes to the next caller.
TEST(CheckoutCancel, QueuedWaiterIsNeverGrantedAfterCancel) {
  EventLog log;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, base_config(), {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    Result<Lease> holder = pool->checkout();
    ASSERT_TRUE(holder.ok());
    Result<PendingCheckout> pending = pool->begin_checkout({.deadline = in(world, seconds(5))});
    ASSERT_TRUE(pending.ok());
    std::optional<Result<Lease>> waited;
    {
      TaskGroup group(world);
      group.spawn("waiter", [&] { waited.emplace(pending.value().wait()); });
      world.sleep_for(milliseconds(10));
      pending.value().cancel();
      pending.value().cancel();  // idempotent
    }
    ASSERT_FALSE(waited->ok());
    EXPECT_EQ(waited->error().code, ErrorCode::cancelled);
    holder.value().release();
    Result<Lease> next = pool->checkout({.deadline = in(world, milliseconds(10))});
    EXPECT_TRUE(next.ok()) << next.error().describe();
    next.value().release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(log.count(TelemetryKind::checkout, ErrorCode::cancelled), 1u);
}

// The grant has already reached the caller's handle when the caller cancels,
// and only then calls wait(). Cancel came first, so wait() must report
// cancelled, and the grant must go back to the pool.
TEST(CheckoutCancel, GrantThatReachedTheHandleBeforeCancelGoesBackToThePool) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    Result<PendingCheckout> pending = pool->begin_checkout();
    ASSERT_TRUE(pending.ok());
    world.sleep_for(milliseconds(10));  // the pool has granted the idle worker by now
    EXPECT_EQ(pool->stats().workers_in(WorkerState::busy), 1);
    pending.value().cancel();
    Result<Lease> waited = pending.value().wait();
    ASSERT_FALSE(waited.ok()) << "a cancelled checkout was handed worker " << waited.value().worker().to_string();
    EXPECT_EQ(waited.error().code, ErrorCode::cancelled);
    world.sleep_for(milliseconds(1));
    const PoolStats stats = pool->stats();
    EXPECT_EQ(stats.workers_in(WorkerState::ready), 1);
    EXPECT_EQ(stats.workers_in(WorkerState::busy), 0);
    Result<Lease> next = pool->checkout({.deadline = in(world, milliseconds(10))});
    EXPECT_TRUE(next.ok()) << "the worker leaked: " << next.error().describe();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// A caller that cancels never has to call wait(): the grant that crossed its
// cancel still comes back to the pool.
TEST(CheckoutCancel, CancelWithoutWaitReturnsACrossingGrant) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    {
      Result<PendingCheckout> pending = pool->begin_checkout();
      ASSERT_TRUE(pending.ok());
      world.sleep_for(milliseconds(10));
      pending.value().cancel();
    }
    Result<Lease> next = pool->checkout({.deadline = in(world, milliseconds(100))});
    EXPECT_TRUE(next.ok()) << "the worker leaked: " << next.error().describe();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// A PendingCheckout dropped without wait() or cancel() is a cancel: its
// grant must not keep the worker busy forever.
TEST(CheckoutCancel, DroppedPendingCheckoutReturnsItsGrant) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    {
      Result<PendingCheckout> pending = pool->begin_checkout();
      ASSERT_TRUE(pending.ok());
      world.sleep_for(milliseconds(10));
    }
    Result<Lease> next = pool->checkout({.deadline = in(world, milliseconds(100))});
    EXPECT_TRUE(next.ok()) << "the worker leaked: " << next.error().describe();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// One task waits for a checkout: the handle moves and does not copy. Whoever
// else must cancel it holds a token, which copies.
static_assert(!std::is_copy_constructible_v<PendingCheckout> && !std::is_copy_assignable_v<PendingCheckout>);
static_assert(std::is_nothrow_move_constructible_v<PendingCheckout> && std::is_move_assignable_v<PendingCheckout>);
static_assert(std::is_copy_constructible_v<CheckoutCancelToken> && std::is_copy_assignable_v<CheckoutCancelToken>);

// A token cancels a queued checkout from another task: wait() reports
// cancelled, a second cancel from any copy is a no-op, and the worker goes to
// the next caller.
TEST(CheckoutCancel, ATokenCancelsFromAnotherTask) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    Result<Lease> holder = pool->checkout();
    ASSERT_TRUE(holder.ok());
    Result<PendingCheckout> pending = pool->begin_checkout({.deadline = in(world, seconds(5))});
    ASSERT_TRUE(pending.ok());
    const CheckoutCancelToken token = pending.value().cancel_token();
    EXPECT_EQ(token.id(), pending.value().id());
    std::optional<bool> first;
    std::optional<bool> second;
    std::optional<Result<Lease>> waited;
    {
      TaskGroup group(world);
      group.spawn("canceller", [&, copy = token] {
        world.sleep_for(milliseconds(10));
        first = copy.cancel();
        second = token.cancel();
      });
      waited.emplace(pending.value().wait());
    }
    EXPECT_EQ(first, true);
    EXPECT_EQ(second, false);
    ASSERT_FALSE(waited->ok());
    EXPECT_EQ(waited->error().code, ErrorCode::cancelled);
    EXPECT_FALSE(CheckoutCancelToken().cancel()) << "a default token cancels nothing";
    holder.value().release();
    Result<Lease> next = pool->checkout({.deadline = in(world, milliseconds(10))});
    EXPECT_TRUE(next.ok()) << next.error().describe();
    next.value().release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// A token used after wait() returned a lease changes nothing: the lease
// stays the caller's.
TEST(CheckoutCancel, ATokenAfterTheGrantIsANoOp) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    Result<PendingCheckout> pending = pool->begin_checkout();
    ASSERT_TRUE(pending.ok());
    const CheckoutCancelToken token = pending.value().cancel_token();
    Result<Lease> lease = pending.value().wait();
    ASSERT_TRUE(lease.ok()) << lease.error().describe();
    EXPECT_FALSE(token.cancel());
    world.sleep_for(milliseconds(1));
    EXPECT_EQ(pool->stats().workers_in(WorkerState::busy), 1);
    EXPECT_EQ(lease.value().call("still mine").value(), "still mine");
    lease.value().release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// Moving a checkout moves the one right to wait for it: the moved-from
// handle cancels nothing when dropped, and assigning over a live checkout
// drops (and so cancels) that one.
TEST(CheckoutCancel, AMovedCheckoutIsWaitedForByItsNewOwner) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    Result<PendingCheckout> first = pool->begin_checkout();
    ASSERT_TRUE(first.ok());
    const std::uint64_t id = first.value().id();
    std::optional<PendingCheckout> owner;
    owner.emplace(std::move(first.value()));
    EXPECT_EQ(owner->id(), id);
    first = Error{ErrorCode::cancelled, "dropped", {}};  // destroys the moved-from handle
    world.sleep_for(milliseconds(10));
    Result<Lease> lease = owner->wait();
    ASSERT_TRUE(lease.ok()) << "the moved-from handle cancelled the checkout: " << lease.error().describe();
    lease.value().release();

    Result<PendingCheckout> replaced = pool->begin_checkout();
    ASSERT_TRUE(replaced.ok());
    world.sleep_for(milliseconds(10));  // granted to `replaced` by now
    Result<PendingCheckout> next = pool->begin_checkout({.deadline = in(world, milliseconds(100))});
    ASSERT_TRUE(next.ok());
    replaced.value() = std::move(next.value());  // drops the granted checkout: its worker comes back
    Result<Lease> again = replaced.value().wait();
    EXPECT_TRUE(again.ok()) << "the dropped checkout's worker leaked: " << again.error().describe();
    again.value().release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// The race by construction: the holder releases the only worker at t, so the
// pool grants it to the waiter at t, and another task cancels the waiter at
// the same t. Every interleaving must end with the worker either held by a
// waiter whose wait() returned before the cancel, or back in the pool; never
// lost, never leased twice.
TEST(CheckoutCancel, CancelRacingTheGrantNeverLeaksOrDoubleLeasesTheWorker) {
  int granted = 0;
  int cancelled = 0;
  sweep_strategies(200, [&](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    Result<Lease> holder = pool->checkout();
    ASSERT_TRUE(holder.ok());
    Result<PendingCheckout> pending = pool->begin_checkout({.deadline = in(world, seconds(5))});
    ASSERT_TRUE(pending.ok());
    const Instant t = in(world, milliseconds(20));
    bool cancel_requested = false;
    bool granted_after_cancel = false;
    std::optional<Result<Lease>> waited;
    {
      TaskGroup group(world);
      group.spawn("waiter", [&] {
        waited.emplace(pending.value().wait());
        // No scheduling point between wait() returning and this read.
        granted_after_cancel = waited->ok() && cancel_requested;
      });
      group.spawn("releaser", [&] {
        world.sleep_until(t);
        holder.value().release();
      });
      group.spawn("canceller", [&] {
        world.sleep_until(t);
        world.yield();
        cancel_requested = true;
        pending.value().cancel();
      });
    }
    EXPECT_FALSE(granted_after_cancel) << "wait() returned a worker after cancel() was called";
    ASSERT_TRUE(waited.has_value());
    if (waited->ok()) {
      ++granted;
      waited->value().release();
    } else {
      ++cancelled;
      EXPECT_EQ(waited->error().code, ErrorCode::cancelled);
    }
    world.sleep_for(milliseconds(1));
    const PoolStats stats = pool->stats();
    EXPECT_EQ(stats.workers_in(WorkerState::ready), 1) << "the worker was not returned to the pool";
    EXPECT_EQ(stats.workers_in(WorkerState::busy), 0);
    Result<Lease> next = pool->checkout({.deadline = in(world, milliseconds(10))});
    EXPECT_TRUE(next.ok()) << next.error().describe();
  });
  // The sweep must have met both sides of the race, or it proved nothing.
  EXPECT_GT(granted, 0);
  EXPECT_GT(cancelled, 0);
}

TEST(Checkout, FullWaiterQueueFailsFastWithPoolSaturated) {
  EventLog log;
  const auto run = run_sim([&](sim::SimWorld& world, sim::SimProcessHost&) {
    PoolConfig config = base_config();
    config.waiters_max = 2;
    auto pool = started_pool(world, config, {.telemetry = &log});
    ASSERT_NE(pool, nullptr);
    Result<Lease> holder = pool->checkout();
    ASSERT_TRUE(holder.ok());
    int served = 0;
    {
      TaskGroup waiters(world);
      for (int i = 0; i < 2; ++i) {
        waiters.spawn(fmt::format("waiter-{}", i), [&] {
          Result<Lease> lease = pool->checkout({.deadline = in(world, seconds(5))});
          EXPECT_TRUE(lease.ok()) << lease.error().describe();
          served += lease.ok() ? 1 : 0;
        });
      }
      world.sleep_for(milliseconds(5));  // both are queued now
      const Instant asked = world.now();
      Result<Lease> third = pool->checkout({.deadline = in(world, seconds(5))});
      ASSERT_FALSE(third.ok());
      EXPECT_EQ(third.error().code, ErrorCode::pool_saturated);
      EXPECT_TRUE(contains(third.error().message, "waiters_max")) << third.error().message;
      EXPECT_EQ(world.now(), asked) << "saturation must fail fast, not wait";
      holder.value().release();
    }
    EXPECT_EQ(served, 2);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(log.count(TelemetryKind::checkout, ErrorCode::pool_saturated), 1u);
}

// mailbox_depth_max bounds the pool task's mailbox: a caller that must
// reach the pool task (the waiter queue is full) and finds the mailbox full
// waits for room until its deadline, then fails with a timeout that names
// the mailbox; one whose deadline is already due fails at once. Whether the
// pool task reads between the callers' sends is the schedule's choice: the
// seeds must include ones where it does not.
TEST(Checkout, AFullMailboxTurnsAwayWhatItCannotHoldAndSaysSo) {
  constexpr int callers = 40;
  constexpr int depth = 16;  // the smallest mailbox allowed
  int seeds_with_a_full_mailbox = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    int mailbox_full = 0;
    int answered_by_pool = 0;
    const auto run = run_sim(
        [&](sim::SimWorld& world, sim::SimProcessHost&) {
          PoolConfig config = base_config();
          config.waiters_max = 1;
          config.mailbox_depth_max = depth;
          auto pool = started_pool(world, config);
          ASSERT_NE(pool, nullptr);
          Result<Lease> holder = pool->checkout();
          ASSERT_TRUE(holder.ok());
          TaskGroup group(world);
          group.spawn("waiter", [&] { (void)pool->checkout({.deadline = in(world, seconds(1))}); });
          world.sleep_for(milliseconds(1));  // the waiter fills the queue
          const Instant due = world.now();
          for (int i = 0; i < callers; ++i) {
            group.spawn(fmt::format("caller-{}", i), [&] {
              Result<Lease> lease = pool->checkout({.deadline = due});
              ASSERT_FALSE(lease.ok());
              EXPECT_EQ(lease.error().code, ErrorCode::timeout) << lease.error().describe();
              EXPECT_EQ(world.now(), due) << "a due checkout fails at once";
              ++(contains(lease.error().message, "mailbox full") ? mailbox_full : answered_by_pool);
            });
          }
          world.sleep_for(milliseconds(10));
          holder.value().release();
          group.join();
          EXPECT_TRUE(pool->shutdown().ok());
        },
        seed);
    ASSERT_TRUE(run.ok()) << "seed " << seed << ": " << run.summary();
    EXPECT_EQ(mailbox_full + answered_by_pool, callers);
    EXPECT_GE(answered_by_pool, depth) << "the mailbox turned callers away before it held " << depth;
    seeds_with_a_full_mailbox += mailbox_full > 0 ? 1 : 0;
  }
  EXPECT_GT(seeds_with_a_full_mailbox, 0) << "no seed sent faster than the pool task read";
}

// A full queue of strict waiters, each waiting for its own busy worker,
// does not stop a caller that an idle worker can serve right now.
TEST(Checkout, SaturationRefusesOnlyCallersThatWouldHaveToWait) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    PoolConfig config = base_config();
    config.size = {2, 2};
    config.min_ready = 2;
    config.waiters_max = 1;
    auto pool = started_pool(world, config);
    ASSERT_NE(pool, nullptr);
    Result<Lease> keyed = pool->checkout({.affinity_key = "k"});
    ASSERT_TRUE(keyed.ok());
    TaskGroup group(world);
    group.spawn("strict-waiter", [&] {
      Result<Lease> strict = pool->checkout({.deadline = in(world, milliseconds(100)), .affinity_key = "k",
                                             .affinity_mode = AffinityMode::strict});
      EXPECT_TRUE(strict.ok()) << strict.error().describe();
    });
    world.sleep_for(milliseconds(1));  // the strict waiter fills the queue
    Result<Lease> anonymous = pool->checkout({.deadline = in(world, milliseconds(10))});
    ASSERT_TRUE(anonymous.ok()) << "an idle worker was refused: " << anonymous.error().describe();
    EXPECT_NE(anonymous.value().worker(), keyed.value().worker());
    // Now nothing is idle and the queue is full: refused, at once.
    Result<Lease> refused = pool->checkout({.deadline = in(world, milliseconds(10))});
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::pool_saturated);
    keyed.value().release();
    group.join();
    anonymous.value().release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

PoolConfig two_workers() {
  PoolConfig config = base_config("affinity");
  config.size = {2, 2};
  config.min_ready = 2;
  return config;
}

TEST(Affinity, PreferUsesTheKeysWorkerWhenIdleElseAnyWorker) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, two_workers());
    ASSERT_NE(pool, nullptr);
    // Bind "k" to the worker an anonymous checkout would not pick first.
    Result<Lease> anonymous = pool->checkout();
    Result<Lease> keyed = pool->checkout({.affinity_key = "k"});
    ASSERT_TRUE(anonymous.ok() && keyed.ok());
    const WorkerRef first_choice = anonymous.value().worker();
    const WorkerRef bound = keyed.value().worker();
    ASSERT_NE(first_choice, bound);
    anonymous.value().release();
    keyed.value().release();

    Result<Lease> again = pool->checkout({.affinity_key = "k"});
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again.value().worker(), bound);

    // The key's worker is busy: prefer takes the other one at once.
    const Instant asked = world.now();
    Result<Lease> other = pool->checkout({.affinity_key = "k", .affinity_mode = AffinityMode::prefer});
    ASSERT_TRUE(other.ok()) << other.error().describe();
    EXPECT_EQ(other.value().worker(), first_choice);
    EXPECT_EQ(world.now(), asked);
    again.value().release();
    other.value().release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(Affinity, StrictWaitsForTheKeysWorkerWithoutBlockingOthers) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, two_workers());
    ASSERT_NE(pool, nullptr);
    Result<Lease> keyed = pool->checkout({.affinity_key = "k", .affinity_mode = AffinityMode::strict});
    ASSERT_TRUE(keyed.ok());
    const WorkerRef bound = keyed.value().worker();
    const Instant released_at = in(world, milliseconds(100));

    std::optional<Result<Lease>> strict;
    Instant strict_granted_at;
    {
      TaskGroup group(world);
      group.spawn("strict", [&] {
        strict.emplace(pool->checkout({.deadline = in(world, seconds(1)), .affinity_key = "k",
                                       .affinity_mode = AffinityMode::strict}));
        strict_granted_at = world.now();
      });
      world.sleep_for(milliseconds(1));
      // Queued behind the strict waiter, an anonymous checkout still gets
      // the idle worker at once.
      const Instant asked = world.now();
      Result<Lease> anonymous = pool->checkout({.deadline = in(world, milliseconds(50))});
      ASSERT_TRUE(anonymous.ok()) << anonymous.error().describe();
      EXPECT_NE(anonymous.value().worker(), bound);
      EXPECT_EQ(world.now(), asked);
      anonymous.value().release();

      // The strict waiter ignores the idle worker until the key's is free.
      world.sleep_until(released_at);
      keyed.value().release();
    }
    ASSERT_TRUE(strict->ok()) << strict->error().describe();
    EXPECT_EQ(strict->value().worker(), bound);
    EXPECT_EQ(strict_granted_at, released_at);
    strict->value().release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(Affinity, StrictTimesOutWhileTheKeysWorkerStaysBusy) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, two_workers());
    ASSERT_NE(pool, nullptr);
    Result<Lease> keyed = pool->checkout({.affinity_key = "k"});
    ASSERT_TRUE(keyed.ok());
    Result<Lease> strict = pool->checkout(
        {.deadline = in(world, milliseconds(30)), .affinity_key = "k", .affinity_mode = AffinityMode::strict});
    ASSERT_FALSE(strict.ok());
    EXPECT_EQ(strict.error().code, ErrorCode::timeout);
    EXPECT_EQ(pool->stats().workers_in(WorkerState::ready), 1) << "the other worker stayed idle";
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// A key whose worker died has no worker to wait for: strict takes any.
TEST(Affinity, StrictKeyOfADeadWorkerFallsBackToAnyWorker) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    LaunchLog launches(world, host);
    auto pool = started_pool(world, two_workers());
    ASSERT_NE(pool, nullptr);
    Result<Lease> keyed = pool->checkout({.affinity_key = "k", .affinity_mode = AffinityMode::strict});
    ASSERT_TRUE(keyed.ok());
    const WorkerRef bound = keyed.value().worker();
    keyed.value().release();
    ASSERT_TRUE(host.kill(launches.pid_of("affinity", bound)));
    world.sleep_for(milliseconds(1));
    Result<Lease> strict = pool->checkout(
        {.deadline = in(world, milliseconds(5)), .affinity_key = "k", .affinity_mode = AffinityMode::strict});
    ASSERT_TRUE(strict.ok()) << strict.error().describe();
    EXPECT_NE(strict.value().worker(), bound);
    strict.value().release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(Execute, ChecksOutCallsAndReleases) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    for (int i = 0; i < 3; ++i) {
      Result<std::string> answer = pool->execute(fmt::format("payload-{}", i));
      ASSERT_TRUE(answer.ok()) << answer.error().describe();
      EXPECT_EQ(answer.value(), fmt::format("payload-{}", i));
    }
    EXPECT_EQ(pool->stats().workers_in(WorkerState::ready), 1);
    // One deadline for checkout and call together.
    Result<Lease> holder = pool->checkout();
    const Instant asked = world.now();
    Result<std::string> late = pool->execute("late", {.deadline = in(world, milliseconds(20))});
    ASSERT_FALSE(late.ok());
    EXPECT_EQ(late.error().code, ErrorCode::timeout);
    EXPECT_EQ(world.now() - asked, milliseconds(20));
    holder.value().release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(Lease, OneCallAtATimeAndWaitOnlyOnce) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    sim::WorkerBehavior behavior;
    behavior.reply_latency = milliseconds(10);
    host.set_behavior(behavior);
    auto pool = started_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    Result<Lease> lease = pool->checkout();
    ASSERT_TRUE(lease.ok());
    std::optional<Result<std::string>> first;
    {
      TaskGroup group(world);
      group.spawn("first-call", [&] { first.emplace(lease.value().call("first")); });
      world.sleep_for(milliseconds(1));
      Result<std::string> second = lease.value().call("second");
      ASSERT_FALSE(second.ok());
      EXPECT_EQ(second.error().code, ErrorCode::invalid_argument);
      EXPECT_TRUE(contains(second.error().message, "already in flight")) << second.error().message;
    }
    ASSERT_TRUE(first->ok()) << first->error().describe();
    EXPECT_EQ(first->value(), "first");
    EXPECT_EQ(lease.value().call("third").value(), "third");
    lease.value().release();

    Result<PendingCheckout> pending = pool->begin_checkout();
    ASSERT_TRUE(pending.ok());
    Result<Lease> waited = pending.value().wait();
    ASSERT_TRUE(waited.ok());
    pending.value().cancel();  // after wait() returned: a no-op
    EXPECT_EQ(waited.value().call("kept").value(), "kept");
    Result<Lease> again = pending.value().wait();
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, ErrorCode::invalid_argument);
    EXPECT_EQ(pool->stats().workers_in(WorkerState::busy), 1);
    waited.value().release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// A lease destroyed while an exception unwinds the caller's stack checks the
// worker back in.
TEST(Lease, DestroyedDuringUnwindingChecksTheWorkerIn) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    auto pool = started_pool(world, base_config());
    ASSERT_NE(pool, nullptr);
    bool caught = false;
    try {
      Result<Lease> lease = pool->checkout();
      ASSERT_TRUE(lease.ok());
      EXPECT_EQ(lease.value().call("before the throw").value(), "before the throw");
      throw std::runtime_error("caller failed");
    } catch (const std::runtime_error&) {
      caught = true;
    }
    EXPECT_TRUE(caught);
    Result<Lease> next = pool->checkout({.deadline = in(world, milliseconds(10))});
    EXPECT_TRUE(next.ok()) << next.error().describe();
    next.value().release();
    // Moving a lease moves the hold; the moved-from lease releases nothing.
    Result<Lease> moved_from = pool->checkout();
    ASSERT_TRUE(moved_from.ok());
    Lease moved = std::move(moved_from.value());
    EXPECT_TRUE(moved.held());
    EXPECT_EQ(moved.call("still mine").value(), "still mine");
    moved.release();
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

// A call whose frame would pass frame_bytes_max is refused by the pool,
// naming the limit, and never written: the worker keeps serving the same
// lease, and the refusal is counted as a call under its outcome.
TEST(Checkout, ACallOverFrameBytesMaxIsRefusedNotSent) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost& host) {
    PoolConfig config = base_config();
    config.frame_bytes_max = 100;
    auto pool = started_pool(world, config);
    ASSERT_NE(pool, nullptr);
    Result<Lease> lease = pool->checkout();
    ASSERT_TRUE(lease.ok()) << lease.error().describe();
    Result<std::string> big = lease.value().call(std::string(100 - kFrameHeaderBytes + 1, 'x'));
    ASSERT_FALSE(big.ok());
    EXPECT_EQ(big.error().code, ErrorCode::invalid_argument);
    EXPECT_NE(big.error().message.find("frame_bytes_max 100"), std::string::npos) << big.error().message;
    EXPECT_NE(big.error().message.find("101 bytes"), std::string::npos) << big.error().message;
    Result<std::string> fits = lease.value().call(std::string(100 - kFrameHeaderBytes, 'y'));
    EXPECT_TRUE(fits.ok()) << fits.error().describe();
    lease.value().release();
    Result<std::string> executed = pool->execute(std::string(200, 'z'));
    ASSERT_FALSE(executed.ok());
    EXPECT_EQ(executed.error().code, ErrorCode::invalid_argument);
    const PoolStats stats = pool->stats();
    EXPECT_EQ(stats.total(stats.calls), 3u);
    EXPECT_EQ(stats.count(stats.calls, "invalid_argument"), 2u);
    EXPECT_EQ(stats.count(stats.calls, "ok"), 1u);
    EXPECT_EQ(stats.worker_exits, 0u);
    EXPECT_EQ(host.launches(), 1u);
    EXPECT_TRUE(pool->shutdown().ok());
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

}  // namespace
}  // namespace seedpool
