#pragma once

// The leases the pool granted and has not had checked in yet, lost ones
// included: a lease whose worker failed or was stopped under it stays until
// its holder checks in, so that a late checkin finds it and does nothing.
// The table is the one record of which worker a lease is on: a worker holds
// at most one live (not lost) lease, and losing the lease ends that link.
//
// A handful of entries, about one per busy worker: searched by id in order,
// never iterated for anything else, so their order is free (a removal swaps in
// the last entry); a map cost an allocation and a free per lease. Which lease
// a worker holds is asked far more often than that, so the table also keeps,
// per slot, the live lease of the slot's worker (a slot has at most one
// serving worker, and a worker that stops serving loses its lease first).

#include "shared.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace seedpool::detail {

class LeaseTable {
 public:
  // A table for workers in `slots` slots (size.max).
  explicit LeaseTable(std::size_t slots) : live_(slots) {}

  struct Lease {
    std::uint64_t id = 0;  // the checkout's id
    WorkerRef worker;
    std::optional<Error> lost;  // set when the worker died or was stopped under the lease
  };

  // Records lease `id` on `worker`. Requires a new id and a worker without a
  // live lease.
  void grant(std::uint64_t id, WorkerRef worker);

  // Whether lease `id` is held, lost or not.
  bool contains(std::uint64_t id) const noexcept;
  // The worker of lease `id` while the lease is live; nullopt once it is
  // lost or checked in.
  std::optional<WorkerRef> live_worker(std::uint64_t id) const noexcept;
  // The live lease on `worker`, if any.
  std::optional<std::uint64_t> live_lease_of(WorkerRef worker) const noexcept;

  // Marks the live lease on `worker` lost with `error`, which the lease
  // keeps. Returns the error. Requires a live lease on `worker`.
  const Error& lose(WorkerRef worker, Error error);

  // Removes lease `id` and returns it; nullopt when no such lease is held.
  std::optional<Lease> check_in(std::uint64_t id);

  std::size_t size() const noexcept { return leases_.size(); }

 private:
  // The live lease of one slot's worker; generation 0 when none (a worker's
  // generation starts at 1).
  struct Live {
    std::uint64_t generation = 0;
    std::uint64_t id = 0;
  };

  std::vector<Lease>::iterator find(std::uint64_t id) noexcept;
  std::vector<Lease>::const_iterator find(std::uint64_t id) const noexcept;

  std::vector<Lease> leases_;
  std::vector<Live> live_;  // by slot
};

}  // namespace seedpool::detail
