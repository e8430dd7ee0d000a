#include "lease.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace lease {

LeaseServer::LeaseServer(seedpool::World& world, seedpool::Duration ttl)
    : world_(world), ttl_(ttl), monitor_(world.make_monitor("lease")) {}

bool LeaseServer::held_locked() const { return !released_ && world_.now() < expires_; }

seedpool::Result<Grant> LeaseServer::acquire(seedpool::Instant deadline) {
  seedpool::MonitorLock lock(*monitor_);
  while (held_locked()) {
    if (world_.now() >= deadline) {
      return seedpool::Error{seedpool::ErrorCode::timeout, "the lease stayed held until the deadline", {}};
    }
    // Woken by a release, or at the holder's expiry or our deadline.
    (void)monitor_->wait_until(std::min(deadline, expires_), "lease held");
  }
  ++token_;
  released_ = false;
  expires_ = world_.now() + ttl_;
  return Grant{token_, expires_};
}

seedpool::Result<seedpool::Instant> LeaseServer::renew(std::uint64_t token) {
  seedpool::MonitorLock lock(*monitor_);
  if (token != token_ || !held_locked()) {
    return seedpool::Error{seedpool::ErrorCode::closed, fmt::format("lease {} is no longer held", token), {}};
  }
  expires_ = world_.now() + ttl_;
  return expires_;
}

void LeaseServer::release(std::uint64_t token) {
  seedpool::MonitorLock lock(*monitor_);
  if (token == token_ && !released_) {
    released_ = true;
    monitor_->notify_all();
  }
}

bool Storage::write(std::uint64_t token, std::string value) {
  if (fencing_ && token < highest_) {
    return false;
  }
  highest_ = std::max(highest_, token);
  log_.push_back(Write{token, std::move(value)});
  return true;
}

}  // namespace lease
