// The shelf on its own: callers take idle workers and hand released ones to
// the first waiter without the pool task, a release the caller cannot vouch
// for is left to the pool task, every step is reported once with who made it,
// a failure is the pool's answer only if it settles the checkout before its
// caller gives up, and while the breaker is not closed a checkout fails fast
// on the shelf unless an idle worker can take it (shelf.hpp states the rules).

#include "pool/pool_test_support.hpp"
#include "pool/shelf.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace seedpool::detail {
namespace {

using namespace pooltest;

// A process that takes every frame and never answers.
class SilentProcess final : public Process {
 public:
  explicit SilentProcess(World& world) : events_(world, "events", 4) {}
  std::int64_t pid() const override { return 7; }
  Status write_frame(Frame) override { return {}; }
  Channel<ProcessEvent>& events() override { return events_; }
  void signal(Signal) override {}
  void set_router(std::shared_ptr<FrameRouter>) override {}

 private:
  Channel<ProcessEvent> events_;
};

// A shelf with two lent workers and the events it reported.
struct Bench {
  explicit Bench(World& world, PoolConfig c = base_config()) : config(std::move(c)), shelf(world, config, hooks) {
    process = std::make_shared<SilentProcess>(world);
    for (const WorkerRef w : {w0, w1}) {
      lines.push_back(std::make_shared<CallLine>(world, w, process));
    }
    shelf.open_checkouts(true, std::nullopt);
  }

  void lend(std::size_t i) {
    Deliveries out;
    shelf.lend(i == 0 ? w0 : w1, lines[i], out);
    out.send();
  }

  Shelf::Taken checkout(World& world, std::uint64_t id) {
    Shelf::Attempt attempt{id, world.now() + seconds(1), world.now(), {}, AffinityMode::prefer};
    Deliveries out;
    Shelf::Taken taken = shelf.checkout(attempt, out);
    out.send();
    return taken;
  }

  Shelf::Released release(std::uint64_t lease) {
    Deliveries out;
    const Shelf::Released released = shelf.release(lease, out);
    out.send();
    return released;
  }

  const WorkerRef w0{0, 1};
  const WorkerRef w1{1, 1};
  PoolConfig config;
  EventLog log;
  PoolHooks hooks{&log, nullptr};
  Shelf shelf;
  std::shared_ptr<SilentProcess> process;
  std::vector<std::shared_ptr<CallLine>> lines;
};

std::vector<std::uint64_t> granted_checkouts(const EventLog& log, StepBy by) {
  std::vector<std::uint64_t> ids;
  for (const TelemetryEvent& e : log.of(TelemetryKind::checkout)) {
    if (!e.error && e.by == by) {
      ids.push_back(e.checkout);
    }
  }
  return ids;
}

TEST(Shelf, CheckoutsTakeIdleWorkersAndReleasesHandThemToWaitersInOrder) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    Bench b(world);
    b.lend(0);
    const Shelf::Taken first = b.checkout(world, 1);
    ASSERT_EQ(first.kind, Shelf::Taken::granted);
    EXPECT_EQ(first.grant->worker, b.w0);
    const Shelf::Taken second = b.checkout(world, 2);
    const Shelf::Taken third = b.checkout(world, 3);
    ASSERT_EQ(second.kind, Shelf::Taken::waiting);
    ASSERT_EQ(third.kind, Shelf::Taken::waiting);

    // The worker goes from lease to lease in the order the checkouts came.
    EXPECT_EQ(b.release(1), Shelf::Released::done);
    Received<CheckoutReply> to_second = second.box->channel.try_receive();
    ASSERT_TRUE(to_second && to_second.value->ok());
    EXPECT_EQ(to_second.value->value().worker, b.w0);
    EXPECT_EQ(third.box->channel.size(), 0u);
    EXPECT_EQ(b.release(2), Shelf::Released::done);
    EXPECT_EQ(third.box->channel.size(), 1u);
    EXPECT_EQ(b.release(3), Shelf::Released::done);
    EXPECT_EQ(b.checkout(world, 4).kind, Shelf::Taken::granted) << "the worker was back on the shelf";

    EXPECT_EQ(granted_checkouts(b.log, StepBy::checkout), (std::vector<std::uint64_t>{1, 4}));
    EXPECT_EQ(granted_checkouts(b.log, StepBy::release), (std::vector<std::uint64_t>{2, 3}));
    const PoolStats stats = b.shelf.stats();
    EXPECT_EQ(stats.count(stats.checkouts, "ok"), 4u);
    EXPECT_EQ(stats.workers_in(WorkerState::busy), 1);
    EXPECT_EQ(stats.workers_in(WorkerState::ready), -1) << "the shelf reports only ready <-> busy";
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(Shelf, AReleaseItCannotVouchForGoesToThePoolTaskWithTheLeaseKept) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    PoolConfig config = base_config();
    config.size = {2, 2};
    config.max_calls = 1;
    Bench b(world, config);
    b.lend(0);
    b.lend(1);
    // A reply still owed: the line is cut by the call's timeout.
    ASSERT_EQ(b.checkout(world, 1).kind, Shelf::Taken::granted);
    const Result<std::uint64_t> owed = b.lines[0]->begin(world.now());
    ASSERT_TRUE(owed.ok());
    EXPECT_FALSE(b.lines[0]->wait(owed.value(), world.now() + milliseconds(1)).reply.has_value());
    EXPECT_EQ(b.release(1), Shelf::Released::to_pool_task);
    const std::optional<Shelf::CheckedIn> in = b.shelf.check_in(1);
    ASSERT_TRUE(in.has_value());
    EXPECT_TRUE(in->was_lent);
    EXPECT_FALSE(b.shelf.check_in(1).has_value()) << "checked in once";

    // max_calls answered.
    ASSERT_EQ(b.checkout(world, 2).kind, Shelf::Taken::granted);
    const Result<std::uint64_t> call = b.lines[1]->begin(world.now());
    ASSERT_TRUE(call.ok());
    ASSERT_TRUE(b.lines[1]->answer(call.value(), CallReply(std::string("done")), true));
    ASSERT_TRUE(b.lines[1]->wait(call.value(), world.now() + seconds(1)).reply.has_value());
    EXPECT_EQ(b.release(2), Shelf::Released::to_pool_task);
    EXPECT_EQ(b.log.count(TelemetryKind::call), 0u) << "the call records are left to the pool task too";
    b.shelf.take_call_records(b.w1, *b.lines[1]);
    EXPECT_EQ(b.log.count(TelemetryKind::call), 1u);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(Shelf, AWorkerTakenBackWhileLeasedComesBackThroughThePoolTask) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    Bench b(world);
    b.lend(0);
    ASSERT_EQ(b.checkout(world, 1).kind, Shelf::Taken::granted);
    EXPECT_EQ(b.shelf.take_back(b.w0), Shelf::Held::leased);
    EXPECT_EQ(b.shelf.live_lease_of(b.w0), std::optional<std::uint64_t>(1));
    EXPECT_EQ(b.release(1), Shelf::Released::to_pool_task);
    const std::optional<Shelf::CheckedIn> in = b.shelf.check_in(1);
    ASSERT_TRUE(in.has_value());
    EXPECT_FALSE(in->was_lent);
    EXPECT_EQ(b.checkout(world, 2).kind, Shelf::Taken::waiting) << "nothing is on the shelf";
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(Shelf, AFailureSettlesTheCheckoutOrCountsWhatItsCallerSaw) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    Bench b(world);
    const Shelf::Taken answered = b.checkout(world, 1);
    const Shelf::Taken gave_up = b.checkout(world, 2);
    ASSERT_EQ(answered.kind, Shelf::Taken::waiting);
    ASSERT_EQ(gave_up.kind, Shelf::Taken::waiting);
    gave_up.box->phase = checkout_cancelled;  // its caller's cancel() settled it first
    Deliveries out;
    b.shelf.close({.kind = TelemetryKind::pool_shutdown, .at = world.now()},
                  Error{ErrorCode::pool_shutting_down, "shut down", {}}, out);
    out.send();
    EXPECT_EQ(answered.box->phase.load(), checkout_answered);
    Received<CheckoutReply> failure = answered.box->channel.try_receive();
    ASSERT_TRUE(failure && !failure.value->ok());
    EXPECT_EQ(failure.value->error().code, ErrorCode::pool_shutting_down);
    EXPECT_EQ(gave_up.box->channel.size(), 0u);
    EXPECT_EQ(b.log.count(TelemetryKind::checkout, ErrorCode::pool_shutting_down), 1u);
    EXPECT_EQ(b.log.count(TelemetryKind::checkout, ErrorCode::cancelled), 1u);
    EXPECT_EQ(b.checkout(world, 3).kind, Shelf::Taken::not_here) << "closed: the pool task refuses it";
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(Shelf, WhileTheBreakerIsNotClosedACheckoutFailsFastUnlessAnIdleWorkerCanTakeIt) {
  const auto run = run_sim([](sim::SimWorld& world, sim::SimProcessHost&) {
    Bench b(world);
    b.lend(0);
    ASSERT_EQ(b.checkout(world, 1).kind, Shelf::Taken::granted);
    ASSERT_EQ(b.checkout(world, 2).kind, Shelf::Taken::waiting);
    const Error open{ErrorCode::pool_unavailable, "the breaker is open", {}};
    Deliveries out;
    b.shelf.breaker_opened({.kind = TelemetryKind::breaker, .at = world.now(), .breaker = BreakerState::open},
                           open, out);
    out.send();
    EXPECT_EQ(b.log.count(TelemetryKind::checkout, ErrorCode::pool_unavailable), 1u) << "the waiter failed";

    // Refused on the caller's step, answered and counted at once.
    const Shelf::Taken refused = b.checkout(world, 3);
    ASSERT_EQ(refused.kind, Shelf::Taken::refused);
    EXPECT_EQ(refused.refusal->message, open.message);
    EXPECT_EQ(b.log.count(TelemetryKind::checkout_request), 3u);
    EXPECT_EQ(b.log.count(TelemetryKind::checkout, ErrorCode::pool_unavailable), 2u);

    // An idle worker still serves whoever can take it.
    EXPECT_EQ(b.release(1), Shelf::Released::done);
    EXPECT_EQ(b.checkout(world, 4).kind, Shelf::Taken::granted);

    // Half-open refuses with the pool task's new answer; closed refuses nobody.
    b.shelf.breaker_moved({.kind = TelemetryKind::breaker, .at = world.now(), .breaker = BreakerState::half_open},
                          Error{ErrorCode::pool_unavailable, "half-open", {}});
    EXPECT_EQ(b.checkout(world, 5).refusal->message, "half-open");
    b.shelf.breaker_moved({.kind = TelemetryKind::breaker, .at = world.now(), .breaker = BreakerState::closed},
                          std::nullopt);
    EXPECT_EQ(b.checkout(world, 6).kind, Shelf::Taken::not_here) << "closed to callers until the pool task opens it";
    EXPECT_EQ(b.log.count(TelemetryKind::checkout, ErrorCode::pool_unavailable), 3u);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

}  // namespace
}  // namespace seedpool::detail
