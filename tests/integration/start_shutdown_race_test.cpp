// start() and shutdown() called at the same time from two threads, as when a
// program's signal-handling thread asks for shutdown while its main thread is
// still starting the pool. Whatever the interleaving, once both have returned
// the pool must not be running: either start() failed with
// pool_shutting_down, or shutdown() stopped what start() started. A pool left
// running after shutdown() returned is never stopped by ~Pool either (it sees
// shut_down_), and ~RealWorld then waits forever for its task.
//
// The race window is a few instructions wide, so the test repeats the race
// for a bounded time; a correct pool passes every repetition.

#include "integration/integration_support.hpp"

#include <atomic>
#include <barrier>
#include <chrono>
#include <thread>

namespace seedpool::integration {
namespace {

using StartShutdownRace = PoolIntegrationTest;

// Repetitions stop at whichever bound comes first, or at the first violation.
constexpr int race_repetitions_max = 20'000;
constexpr auto race_duration = std::chrono::seconds(4);

// Two threads that, per round, wait for each other and then call start() and
// shutdown() on the same pool at once.
class Racers {
 public:
  Racers()
      : starter_([this] { loop([this] { started_ = pool_->start(); }); }),
        stopper_([this] { loop([this] { stopped_ = pool_->shutdown(); }); }) {}
  ~Racers() {
    done_.store(true);
    round_.arrive_and_wait();
    starter_.join();
    stopper_.join();
  }

  // Races start() against shutdown() on `pool`; returns both results.
  std::pair<Status, Status> race(Pool& pool) {
    pool_ = &pool;
    ready_.store(0);
    round_.arrive_and_wait();  // go
    round_.arrive_and_wait();  // both returned
    return {*started_, *stopped_};
  }

 private:
  template <class Call>
  void loop(Call call) {
    for (;;) {
      round_.arrive_and_wait();
      if (done_.load()) {
        return;
      }
      // Spin so that both calls begin as close together as possible.
      ready_.fetch_add(1);
      while (ready_.load() < 2) {
      }
      call();
      round_.arrive_and_wait();
    }
  }

  std::barrier<> round_{3};
  std::atomic<bool> done_{false};
  std::atomic<int> ready_{0};
  Pool* pool_ = nullptr;
  std::optional<Status> started_;
  std::optional<Status> stopped_;
  std::thread starter_;
  std::thread stopper_;
};

TEST_F(StartShutdownRace, ShutdownRacingStartNeverLeavesThePoolRunning) {
  // Lazy and idle: start() launches nothing, so a round costs two messages.
  PoolConfig c = config("start-shutdown-race", echo_command(), 0);
  c.size.max = 1;
  c.init = InitMode::lazy;

  Racers racers;
  int rounds = 0;
  int started = 0;
  std::string violation;
  const auto end = std::chrono::steady_clock::now() + race_duration;
  while (violation.empty() && rounds < race_repetitions_max && std::chrono::steady_clock::now() < end) {
    Result<std::unique_ptr<Pool>> created = Pool::create(world(), c);
    ASSERT_TRUE(created.ok()) << created.error().describe();
    std::unique_ptr<Pool> pool = std::move(created).value();
    const auto [start_status, shutdown_status] = racers.race(*pool);
    ++rounds;
    EXPECT_TRUE(shutdown_status.ok()) << shutdown_status.error().describe();
    if (!start_status.ok()) {
      EXPECT_EQ(start_status.error().code, ErrorCode::pool_shutting_down) << start_status.error().describe();
      continue;
    }
    ++started;
    // A deadline of now: a pool that still runs answers timeout at once; a
    // pool that shut down answers pool_shutting_down.
    Result<Lease> lease = pool->checkout(CheckoutOptions{world().now(), {}, AffinityMode::prefer});
    if (lease.ok() || lease.error().code != ErrorCode::pool_shutting_down) {
      violation = "round " + std::to_string(rounds) + ": start() and shutdown() both returned ok, yet the pool " +
                  "still runs: checkout answered " + (lease.ok() ? "with a lease" : lease.error().describe());
      // Stop it for real, or ~RealWorld would wait for its task forever.
      (void)pool->shutdown();
    }
  }
  EXPECT_TRUE(violation.empty()) << violation << " (" << started << " of " << rounds
                                 << " rounds had start() succeed)";
}

}  // namespace
}  // namespace seedpool::integration
