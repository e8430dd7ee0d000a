// The leases the pool granted; see lease_table.hpp.

#include "lease_table.hpp"

#include <seedpool/core/assert.hpp>

#include <algorithm>

namespace seedpool::detail {

void LeaseTable::grant(std::uint64_t id, WorkerRef worker) {
  SEEDPOOL_ASSERT(worker.slot < live_.size() && worker.generation != 0);
  SEEDPOOL_ASSERT_MSG(live_[worker.slot].generation == 0, "a worker leased twice");
  SEEDPOOL_ASSERT_MSG(!contains(id), "a lease id granted twice");
  leases_.push_back(Lease{id, worker, std::nullopt});
  live_[worker.slot] = Live{worker.generation, id};
}

bool LeaseTable::contains(std::uint64_t id) const noexcept { return find(id) != leases_.end(); }

std::optional<WorkerRef> LeaseTable::live_worker(std::uint64_t id) const noexcept {
  const auto it = find(id);
  if (it == leases_.end() || it->lost) {
    return std::nullopt;
  }
  return it->worker;
}

std::optional<std::uint64_t> LeaseTable::live_lease_of(WorkerRef worker) const noexcept {
  if (worker.slot >= live_.size() || live_[worker.slot].generation != worker.generation) {
    return std::nullopt;
  }
  return live_[worker.slot].id;
}

const Error& LeaseTable::lose(WorkerRef worker, Error error) {
  const std::optional<std::uint64_t> id = live_lease_of(worker);
  SEEDPOOL_ASSERT_MSG(id.has_value(), "a lease lost that is not live");
  const auto it = find(*id);
  SEEDPOOL_ASSERT(it != leases_.end() && it->worker == worker && !it->lost);
  it->lost = std::move(error);
  live_[worker.slot] = Live{};
  return *it->lost;
}

std::optional<LeaseTable::Lease> LeaseTable::check_in(std::uint64_t id) {
  const auto it = find(id);
  if (it == leases_.end()) {
    return std::nullopt;
  }
  Lease lease = std::move(*it);
  if (!lease.lost) {
    SEEDPOOL_ASSERT(live_[lease.worker.slot].id == id);
    live_[lease.worker.slot] = Live{};
  }
  if (it + 1 != leases_.end()) {
    *it = std::move(leases_.back());
  }
  leases_.pop_back();
  SEEDPOOL_ASSERT(!contains(id));
  return lease;
}

std::vector<LeaseTable::Lease>::iterator LeaseTable::find(std::uint64_t id) noexcept {
  return std::find_if(leases_.begin(), leases_.end(), [id](const Lease& l) { return l.id == id; });
}

std::vector<LeaseTable::Lease>::const_iterator LeaseTable::find(std::uint64_t id) const noexcept {
  return std::find_if(leases_.begin(), leases_.end(), [id](const Lease& l) { return l.id == id; });
}

}  // namespace seedpool::detail
