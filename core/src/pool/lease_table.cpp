// The leases the pool granted; see lease_table.hpp.

#include "lease_table.hpp"

#include <seedpool/core/assert.hpp>

#include <algorithm>

namespace seedpool::detail {

void LeaseTable::grant(std::uint64_t id, WorkerRef worker) {
  SEEDPOOL_ASSERT_MSG(!contains(id), "a lease id granted twice");
  SEEDPOOL_ASSERT_MSG(!live_lease_of(worker), "a worker leased twice");
  leases_.push_back(Lease{id, worker, std::nullopt});
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
  const auto it = std::find_if(leases_.begin(), leases_.end(),
                               [worker](const Lease& l) { return l.worker == worker && !l.lost; });
  return it == leases_.end() ? std::nullopt : std::optional<std::uint64_t>(it->id);
}

const Error& LeaseTable::lose(WorkerRef worker, Error error) {
  const auto it = find_live(worker);
  SEEDPOOL_ASSERT_MSG(it != leases_.end(), "a lease lost that is not live");
  it->lost = std::move(error);
  return *it->lost;
}

std::optional<LeaseTable::Lease> LeaseTable::check_in(std::uint64_t id) {
  const auto it = find(id);
  if (it == leases_.end()) {
    return std::nullopt;
  }
  Lease lease = std::move(*it);
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

std::vector<LeaseTable::Lease>::iterator LeaseTable::find_live(WorkerRef worker) noexcept {
  return std::find_if(leases_.begin(), leases_.end(),
                      [worker](const Lease& l) { return l.worker == worker && !l.lost; });
}

}  // namespace seedpool::detail
