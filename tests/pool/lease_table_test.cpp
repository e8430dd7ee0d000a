// The lease table on its own: a lease is live until its worker fails under
// it or it is checked in; a lost lease stays until its holder checks in; a
// worker holds at most one live lease.

#include "pool/lease_table.hpp"

#include <gtest/gtest.h>

namespace seedpool::detail {
namespace {

constexpr WorkerRef w1{0, 1};
constexpr WorkerRef w2{1, 1};

Error crashed(std::string message) { return Error{ErrorCode::worker_crashed, std::move(message), {}}; }

TEST(LeaseTable, AGrantedLeaseIsLiveUntilCheckedIn) {
  LeaseTable leases(8);
  leases.grant(7, w1);
  leases.grant(8, w2);
  EXPECT_EQ(leases.size(), 2u);
  EXPECT_TRUE(leases.contains(7));
  EXPECT_EQ(leases.live_worker(7), w1);
  EXPECT_EQ(leases.live_lease_of(w2), 8u);
  const std::optional<LeaseTable::Lease> returned = leases.check_in(7);
  ASSERT_TRUE(returned.has_value());
  EXPECT_EQ(returned->worker, w1);
  EXPECT_FALSE(returned->lost.has_value());
  EXPECT_FALSE(leases.contains(7));
  EXPECT_FALSE(leases.live_lease_of(w1).has_value());
  EXPECT_FALSE(leases.check_in(7).has_value());  // a second checkin finds nothing
  EXPECT_EQ(leases.live_worker(8), w2);
  EXPECT_EQ(leases.size(), 1u);
}

// A lost lease is no longer the worker's, so the worker may be stopped or
// exit without it; the holder's checkin still finds it, with the error.
TEST(LeaseTable, ALostLeaseStaysUntilItsHolderChecksIn) {
  LeaseTable leases(8);
  leases.grant(7, w1);
  const Error& kept = leases.lose(w1, crashed("worker w0.1 exited"));
  EXPECT_EQ(kept.message, "worker w0.1 exited");
  EXPECT_TRUE(leases.contains(7));
  EXPECT_FALSE(leases.live_worker(7).has_value());
  EXPECT_FALSE(leases.live_lease_of(w1).has_value());
  const std::optional<LeaseTable::Lease> returned = leases.check_in(7);
  ASSERT_TRUE(returned.has_value());
  ASSERT_TRUE(returned->lost.has_value());
  EXPECT_EQ(returned->lost->code, ErrorCode::worker_crashed);
  EXPECT_EQ(leases.size(), 0u);
}

// The same slot's next generation is another worker: its lease is its own.
TEST(LeaseTable, LeasesAreFoundByIdWhateverTheOrderOfCheckins) {
  LeaseTable leases(8);
  for (std::uint64_t id = 1; id <= 5; ++id) {
    leases.grant(id, WorkerRef{static_cast<std::uint32_t>(id), 1});
  }
  ASSERT_TRUE(leases.check_in(2).has_value());
  ASSERT_TRUE(leases.check_in(1).has_value());
  for (std::uint64_t id = 3; id <= 5; ++id) {
    EXPECT_EQ(leases.live_worker(id), (WorkerRef{static_cast<std::uint32_t>(id), 1})) << id;
  }
  leases.grant(6, WorkerRef{1, 2});
  EXPECT_EQ(leases.live_lease_of(WorkerRef{1, 2}), 6u);
  EXPECT_FALSE(leases.live_lease_of(WorkerRef{1, 1}).has_value());
}

TEST(LeaseTableDeath, AWorkerIsNeverLeasedTwice) {
  LeaseTable leases(8);
  leases.grant(7, w1);
  EXPECT_DEATH(leases.grant(8, w1), "a worker leased twice");
  EXPECT_DEATH(leases.grant(7, w2), "a lease id granted twice");
  EXPECT_DEATH((void)leases.lose(w2, crashed("no lease")), "a lease lost that is not live");
}

}  // namespace
}  // namespace seedpool::detail
