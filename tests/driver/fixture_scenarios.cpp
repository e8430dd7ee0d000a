// A user's simulation binary, as seedpool::sim_main makes it: four small
// scenarios of its own, with named fault sites of their own, and no main(). tests/driver/driver_cli_test.sh drives
// it through every verb of the command line.

#include <seedpool/core/channel.hpp>
#include <seedpool/core/sync.hpp>
#include <seedpool/sim/scenario.hpp>

#include <fmt/format.h>

#include <csignal>
#include <cstdint>
#include <memory>
#include <mutex>

namespace {

// Two tellers take tickets from one counter with a read, a yield and a
// write: an interleaving between the read and the write hands one ticket
// out twice.
void take_tickets(seedpool::sim::ScenarioContext& ctx) {
  auto next = std::make_shared<std::uint64_t>(0);
  auto taken = std::make_shared<std::uint64_t>(0);
  auto done = std::make_shared<seedpool::Channel<int>>(ctx.world, "tellers-done", 2);
  for (int teller = 0; teller < 2; ++teller) {
    ctx.world.spawn(fmt::format("teller {}", teller), [&ctx, next, taken, done] {
      for (int i = 0; i < 3; ++i) {
        ctx.world.sleep_for(seedpool::microseconds(static_cast<std::int64_t>(ctx.world.decide(50))));
        if (SEEDPOOL_FAULT(ctx, "teller.nap", 100'000)) {
          ctx.world.sleep_for(seedpool::microseconds(100));
        }
        const std::uint64_t mine = *next;
        ctx.world.yield();
        *next = mine + 1;
        ++*taken;
      }
      (void)done->send(1);
    });
  }
  for (int i = 0; i < 2; ++i) {
    (void)done->receive();
  }
  if (*next != *taken) {
    ctx.world.fail(SEEDPOOL_INVARIANT("ticket-unique"), fmt::format("{} tickets taken, counter at {}", *taken, *next));
  }
}

}  // namespace

SEEDPOOL_SCENARIO(ticket_race, "ticket-race", "two tellers share a ticket counter without a lock", {}) {
  take_tickets(ctx);
}

// Takes its process down on one seed in about forty.
SEEDPOOL_SCENARIO(crash_on_a_seed, "crash-on-a-seed", "dereferences a null pointer on some seeds", {}) {
  ctx.world.sleep_for(seedpool::milliseconds(1));
  if (ctx.world.decide(40) == 7) {
    std::raise(SIGSEGV);
  }
}

// A consumer that waits on a condition with `if` where `while` belongs:
// only a spurious wakeup (seedpool-sim --spurious-wakeups) shows it.
SEEDPOOL_SCENARIO(if_not_while, "if-not-while", "a condition wait checked with if: wrong only on a spurious wakeup",
                  {}) {
  seedpool::Mutex mutex(ctx.world, "box");
  seedpool::ConditionVariable filled(ctx.world, "filled");
  bool full = false;
  seedpool::Thread producer(ctx.world, "producer", [&] {
    ctx.world.sleep_for(seedpool::milliseconds(1));
    const std::lock_guard<seedpool::Mutex> held(mutex);
    full = true;
    filled.notify_one();
  });
  {
    std::unique_lock<seedpool::Mutex> held(mutex);
    if (!full) {
      filled.wait(held);
    }
    if (!full) {
      ctx.world.fail(SEEDPOOL_INVARIANT("box-full"), "the consumer woke to an empty box");
    }
  }
  producer.join();
}

SEEDPOOL_SCENARIO(quiet_counter, "quiet-counter", "one task counts to ten: always passes", {}) {
  for (int i = 0; i < 10; ++i) {
    if (SEEDPOOL_FAULT(ctx, "counter.skip", 200'000)) {
      continue;
    }
    ctx.world.sleep_for(seedpool::milliseconds(static_cast<std::int64_t>(1 + ctx.world.decide(5))));
  }
}
