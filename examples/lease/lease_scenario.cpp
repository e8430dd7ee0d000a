// The lease's scenarios. Linked with seedpool::sim_main they make lease_sim,
// which has the whole simulation command line for them:
//
//   lease_sim run lease-unfenced --seeds 2000 --jobs 2 --swarm
//   lease_sim replay failures/lease-unfenced-7.json --log --trace t.json
//   lease_sim shrink failures/lease-unfenced-7.json
//
// Three clients take turns holding the lease; while they hold it they
// heartbeat (renew) and write to the storage it protects. Two named fault
// sites perturb them: a heartbeat lost on the network, and a pause of the
// client between its heartbeat and its write (a garbage-collection pause, a
// stopped VM) long enough for the lease to expire and go to another client.
// The invariant: the storage never accepts a write under a token older than
// one it has accepted — the old holder never writes over its successor.

#include "lease.hpp"

#include <seedpool/core/channel.hpp>
#include <seedpool/sim/scenario.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <memory>

namespace lease {
namespace {

using seedpool::milliseconds;
using seedpool::seconds;

constexpr seedpool::Duration ttl = milliseconds(100);
constexpr int clients = 3;
constexpr int rounds = 4;
constexpr int writes_per_round = 3;

void client(seedpool::sim::ScenarioContext& ctx, LeaseServer& server, Storage& storage, std::uint64_t& highest,
            int id) {
  seedpool::World& world = ctx.world;
  for (int round = 0; round < rounds; ++round) {
    const seedpool::Result<Grant> grant = server.acquire(world.now() + seconds(1));
    if (!grant) {
      continue;
    }
    const std::uint64_t token = grant.value().token;
    for (int w = 0; w < writes_per_round; ++w) {
      // The heartbeat, unless the network loses it: then the client does
      // not learn that its lease is running out.
      if (!SEEDPOOL_FAULT(ctx, "net.drop_heartbeat", 20'000) && !server.renew(token)) {
        break;  // the lease is gone: stop writing
      }
      seedpool::Duration work = ctx.faults.latency(milliseconds(1), milliseconds(30));
      if (SEEDPOOL_FAULT(ctx, "client.pause", 10'000)) {
        work = work + ttl * 2;  // paused past the lease's expiry
      }
      world.sleep_for(work);
      if (!storage.write(token, fmt::format("client {} round {} write {}", id, round, w))) {
        break;  // fenced off: a later holder has written
      }
      if (token < highest) {
        ctx.world.fail(SEEDPOOL_INVARIANT("fenced-order"),
                       fmt::format("client {} wrote under token {} after token {} had written", id, token, highest));
        return;
      }
      highest = token;
    }
    server.release(token);
    world.sleep_for(ctx.faults.latency(milliseconds(0), milliseconds(20)));
  }
}

void run_lease(seedpool::sim::ScenarioContext& ctx, bool fencing) {
  auto server = std::make_shared<LeaseServer>(ctx.world, ttl);
  auto storage = std::make_shared<Storage>(fencing);
  auto highest = std::make_shared<std::uint64_t>(0);
  auto done = std::make_shared<seedpool::Channel<int>>(ctx.world, "clients-done", clients);
  for (int id = 0; id < clients; ++id) {
    ctx.world.spawn(fmt::format("client {}", id), [&ctx, server, storage, highest, done, id] {
      client(ctx, *server, *storage, *highest, id);
      (void)done->send(int{id});
    });
  }
  const seedpool::Instant bound = ctx.world.now() + seconds(60);
  for (int finished = 0; finished < clients; ++finished) {
    if (!done->receive(bound)) {
      ctx.world.fail(SEEDPOOL_INVARIANT("clients-finish"), "a client was still running 60 s in");
      return;
    }
  }
}

}  // namespace
}  // namespace lease

SEEDPOOL_SCENARIO(lease_fenced, "lease", "three clients share a lease with heartbeats; the storage fences old tokens",
                  {}) {
  lease::run_lease(ctx, true);
}

SEEDPOOL_SCENARIO(lease_unfenced, "lease-unfenced",
                  "the same without fencing: a client paused past its lease writes over its successor", {}) {
  lease::run_lease(ctx, false);
}
