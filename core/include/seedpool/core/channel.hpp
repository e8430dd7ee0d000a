#pragma once

// Channel<T>: a bounded multi-producer multi-consumer queue whose blocking
// goes through the World. In simulation every send and receive is a
// scheduling point, so the simulator explores the interleavings around it.

#include <seedpool/core/assert.hpp>
#include <seedpool/core/world.hpp>

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace seedpool {

enum class ChannelStatus {
  ok,
  closed,   // the channel was closed (and, for receive, is drained)
  timeout,  // the deadline passed first
  full,     // try_send found no room
  empty,    // try_receive found nothing
};

std::string_view to_string(ChannelStatus status) noexcept;

template <class T>
struct Received {
  ChannelStatus status = ChannelStatus::empty;
  std::optional<T> value;  // set exactly when status == ok

  explicit operator bool() const noexcept { return status == ChannelStatus::ok; }
};

template <class T>
class Channel {
 public:
  // Requires capacity_max >= 1.
  Channel(World& world, std::string name, std::size_t capacity_max)
      : world_(world),
        name_(std::move(name)),
        capacity_max_(capacity_max),
        monitor_(world.make_monitor(name_)),
        send_reason_("send on '" + name_ + "'"),
        receive_reason_("receive on '" + name_ + "'") {
    SEEDPOOL_ASSERT(capacity_max_ >= 1);
  }

  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Appends `value`, waiting for room until `deadline`. Returns ok, closed or
  // timeout. `value` is moved from only when the result is ok, so a caller can
  // recover an item that could not be delivered.
  ChannelStatus send(T&& value, Instant deadline = Instant::max()) {
    world_.yield();
    bool wake = false;
    {
      MonitorLock lock(*monitor_);
      while (!closed_ && items_.size() >= capacity_max_) {
        ++senders_waiting_;
        const bool notified = monitor_->wait_until(deadline, send_reason_);
        --senders_waiting_;
        if (!notified && !closed_ && items_.size() >= capacity_max_) {
          return ChannelStatus::timeout;
        }
      }
      if (closed_) {
        return ChannelStatus::closed;
      }
      wake = push_locked(std::move(value));
    }
    wake_if(wake);
    return ChannelStatus::ok;
  }

  // Appends `value` if there is room now. Returns ok, closed or full; `value`
  // is moved from only on ok.
  ChannelStatus try_send(T&& value) {
    world_.yield();
    bool wake = false;
    {
      MonitorLock lock(*monitor_);
      if (closed_) {
        return ChannelStatus::closed;
      }
      if (items_.size() >= capacity_max_) {
        return ChannelStatus::full;
      }
      wake = push_locked(std::move(value));
    }
    wake_if(wake);
    return ChannelStatus::ok;
  }

  // Takes the oldest item, waiting until `deadline`. Items sent before close()
  // are still delivered; after that, receive returns closed.
  Received<T> receive(Instant deadline = Instant::max()) {
    world_.yield();
    bool wake = false;
    Received<T> received{ChannelStatus::closed, std::nullopt};
    {
      MonitorLock lock(*monitor_);
      while (items_.empty() && !closed_) {
        ++receivers_waiting_;
        const bool notified = monitor_->wait_until(deadline, receive_reason_);
        --receivers_waiting_;
        if (!notified && items_.empty() && !closed_) {
          return {ChannelStatus::timeout, std::nullopt};
        }
      }
      if (!items_.empty()) {
        received = {ChannelStatus::ok, pop_locked(wake)};
      }
    }
    wake_if(wake);
    return received;
  }

  // Takes the oldest item if there is one now. Returns ok, empty or closed.
  Received<T> try_receive() {
    world_.yield();
    bool wake = false;
    Received<T> received{ChannelStatus::empty, std::nullopt};
    {
      MonitorLock lock(*monitor_);
      if (!items_.empty()) {
        received = {ChannelStatus::ok, pop_locked(wake)};
      } else if (closed_) {
        received.status = ChannelStatus::closed;
      }
    }
    wake_if(wake);
    return received;
  }

  // Refuses further sends and wakes every waiting sender and receiver.
  // Idempotent.
  void close() {
    MonitorLock lock(*monitor_);
    if (closed_) {
      return;
    }
    closed_ = true;
    monitor_->notify_all();
  }

  bool closed() const {
    MonitorLock lock(*monitor_);
    return closed_;
  }

  std::size_t size() const {
    MonitorLock lock(*monitor_);
    return items_.size();
  }

  std::size_t capacity_max() const noexcept { return capacity_max_; }
  const std::string& name() const noexcept { return name_; }

 private:
  // Both return whether a waiter on the other side should be woken; the
  // caller wakes it after releasing the lock, so the woken thread does not
  // run into a lock still held (a real World's thread would wake only to
  // block again).
  bool push_locked(T&& value) {
    SEEDPOOL_ASSERT(items_.size() < capacity_max_);
    items_.push_back(std::move(value));
    return receivers_waiting_ > 0;
  }

  T pop_locked(bool& wake) {
    SEEDPOOL_ASSERT(!items_.empty());
    T value = std::move(items_.front());
    items_.pop_front();
    wake = senders_waiting_ > 0;
    return value;
  }

  void wake_if(bool wake) {
    if (wake) {
      monitor_->notify_all();
    }
  }

  World& world_;
  const std::string name_;
  const std::size_t capacity_max_;
  std::unique_ptr<Monitor> monitor_;
  const std::string send_reason_;
  const std::string receive_reason_;
  std::deque<T> items_;
  std::size_t senders_waiting_ = 0;
  std::size_t receivers_waiting_ = 0;
  bool closed_ = false;
};

}  // namespace seedpool
