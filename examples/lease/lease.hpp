#pragma once

// A lease with fencing tokens, written against seedpool::World only: one
// holder at a time, for a time-to-live it extends by heartbeats (renew).
// Each grant carries a token one higher than the last; the storage the lease
// protects accepts a write only under a token no lower than any it has
// accepted, so a holder that lost its lease without knowing it — paused past
// its expiry, its heartbeat lost — cannot overwrite its successor's work.
//
// The storage's fencing can be switched off: the planted bug the example's
// sweeps find (a client paused between its heartbeat and its write writes
// after its lease went to another).

#include <seedpool/core/result.hpp>
#include <seedpool/core/time.hpp>
#include <seedpool/core/world.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lease {

struct Grant {
  std::uint64_t token = 0;
  seedpool::Instant expires;
};

class LeaseServer {
 public:
  LeaseServer(seedpool::World& world, seedpool::Duration ttl);

  // Waits until the lease is free (never granted, released, or expired) and
  // grants it to the caller under a new token; a timeout error at `deadline`.
  seedpool::Result<Grant> acquire(seedpool::Instant deadline);
  // Extends the lease held under `token` to now + ttl. An error when that
  // lease is no longer held (released, expired, or granted again since).
  seedpool::Result<seedpool::Instant> renew(std::uint64_t token);
  // Gives the lease back; nothing when `token` no longer holds it.
  void release(std::uint64_t token);

 private:
  bool held_locked() const;

  seedpool::World& world_;
  seedpool::Duration ttl_;
  std::unique_ptr<seedpool::Monitor> monitor_;
  std::uint64_t token_ = 0;  // the latest grant's
  bool released_ = true;
  seedpool::Instant expires_;
};

// The resource the lease protects: an append-only log of writes.
class Storage {
 public:
  explicit Storage(bool fencing) : fencing_(fencing) {}

  struct Write {
    std::uint64_t token = 0;
    std::string value;
  };

  // Appends `value` written under `token`; refused (false) with fencing on
  // when a later token has written already.
  bool write(std::uint64_t token, std::string value);
  const std::vector<Write>& log() const noexcept { return log_; }

 private:
  bool fencing_;
  std::uint64_t highest_ = 0;
  std::vector<Write> log_;
};

}  // namespace lease
