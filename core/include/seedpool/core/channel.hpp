#pragma once

// Channel<T>: a bounded multi-producer multi-consumer queue whose blocking
// goes through the World. In simulation every send and receive is a
// scheduling point, so the simulator explores the interleavings around it.

#include <seedpool/core/assert.hpp>
#include <seedpool/core/world.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

namespace detail {

// A FIFO queue of at most capacity_max items: a ring that grows by doubling
// up to that bound and never shrinks. Channels are made per request (every
// checkout and call has its own capacity-1 reply channel), and a std::deque
// allocated a map and a 512-byte block as it was constructed; this allocates
// one slot at the first push, and nothing after that once it has grown. A
// ring of capacity_max 1 keeps its one slot inline and never allocates.
template <class T>
class BoundedRing {
 public:
  // Requires capacity_max >= 1.
  explicit BoundedRing(std::size_t capacity_max) : capacity_max_(capacity_max) {
    SEEDPOOL_ASSERT(capacity_max_ >= 1);
  }

  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }

  // Requires size() < capacity_max.
  void push_back(T&& value) {
    SEEDPOOL_ASSERT(size_ < capacity_max_);
    if (capacity_max_ == 1) {
      SEEDPOOL_ASSERT(!single_.has_value());
      single_.emplace(std::move(value));
      ++size_;
      return;
    }
    if (size_ == slots_.size()) {
      grow();
    }
    std::size_t tail = head_ + size_;
    if (tail >= slots_.size()) {
      tail -= slots_.size();
    }
    SEEDPOOL_ASSERT(!slots_[tail].has_value());
    slots_[tail].emplace(std::move(value));
    ++size_;
  }

  // Moves the oldest item into `out` (which must be empty) and drops it
  // from the ring: one move of the item, where returning it by value took
  // one more on the way to its destination. Requires !empty().
  void pop_front_into(std::optional<T>& out) {
    SEEDPOOL_ASSERT(size_ > 0);
    SEEDPOOL_ASSERT(!out.has_value());
    std::optional<T>& slot = capacity_max_ == 1 ? single_ : slots_[head_];
    SEEDPOOL_ASSERT(slot.has_value());
    out.emplace(std::move(*slot));
    slot.reset();
    if (capacity_max_ != 1 && ++head_ == slots_.size()) {
      head_ = 0;
    }
    --size_;
  }

 private:
  void grow() {
    const std::size_t old_size = slots_.size();
    SEEDPOOL_ASSERT(old_size < capacity_max_);
    std::vector<std::optional<T>> bigger(std::min(capacity_max_, std::max<std::size_t>(1, 2 * old_size)));
    for (std::size_t i = 0; i < size_; ++i) {
      bigger[i] = std::move(slots_[(head_ + i) % old_size]);
    }
    slots_.swap(bigger);
    head_ = 0;
  }

  std::size_t capacity_max_;
  std::optional<T> single_;              // the one slot when capacity_max_ is 1; slots_ stays empty
  std::vector<std::optional<T>> slots_;  // the ring; its size is the current capacity
  std::size_t head_ = 0;                 // slot of the oldest item
  std::size_t size_ = 0;
};

// The text of a wait reason, "receive on 'NAME'", kept inside the object
// when it is short. Most channels are reply channels, made per request, and
// building the text on the heap the first time a receiver waited cost an
// allocation per request.
class WaitReason {
 public:
  bool empty() const noexcept { return size_ == 0; }

  // Requires empty().
  void assign(std::string_view verb, std::string_view name) {
    SEEDPOOL_ASSERT(empty());
    const std::size_t size = verb.size() + name.size() + 1;
    char* out = inline_.data();
    if (size > inline_.size()) {
      heap_.resize(size);
      out = heap_.data();
    }
    std::copy(verb.begin(), verb.end(), out);
    std::copy(name.begin(), name.end(), out + verb.size());
    out[size - 1] = '\'';
    size_ = size;
  }

  // Valid as long as the object, and unchanged once assigned.
  std::string_view view() const noexcept {
    return {size_ > inline_.size() ? heap_.data() : inline_.data(), size_};
  }

 private:
  static constexpr std::size_t inline_bytes_max = 40;
  std::array<char, inline_bytes_max> inline_;
  std::size_t size_ = 0;
  std::string heap_;  // the text when longer than inline_bytes_max
};

}  // namespace detail

// Lifetime: a channel must outlive every call on it, also a send whose item
// the receiver already has: send and receive wake the other side after
// releasing the lock, so a receiver that destroys the channel as soon as it
// has its item can pull it from under a sender still inside send. Share a
// channel that either side may drop (std::shared_ptr, as the pool's reply
// channels are), or join the senders before destroying it.
template <class T>
class Channel {
 public:
  // Requires capacity_max >= 1.
  Channel(World& world, std::string name, std::size_t capacity_max)
      : world_(world),
        name_(std::move(name)),
        capacity_max_(capacity_max),
        monitor_(world.make_monitor(name_)),
        items_(capacity_max) {
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
        const bool notified = monitor_->wait_until(deadline, wait_reason(send_reason_, "send on '"));
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
  //
  // Scheduling: a receive that finds an item (or the close) yields first, so
  // other tasks may act before it takes it. One that finds the channel empty
  // waits at once: its wait is the scheduling point. A yield there would only
  // add a step in which, whoever runs, the same orders of events stay
  // reachable: what another task does during it, it does as well while the
  // receiver waits, and the receiver wakes when an item arrives.
  Received<T> receive(Instant deadline = Instant::max()) {
    bool wake = false;
    Received<T> received{ChannelStatus::closed, std::nullopt};
    {
      MonitorLock lock(*monitor_);
      if (!items_.empty() || closed_) {
        monitor_->unlock();  // never held across a scheduling point
        world_.yield();
        monitor_->lock();
      }
      while (items_.empty() && !closed_) {
        ++receivers_waiting_;
        const bool notified = monitor_->wait_until(deadline, wait_reason(receive_reason_, "receive on '"));
        --receivers_waiting_;
        if (!notified && items_.empty() && !closed_) {
          return {ChannelStatus::timeout, std::nullopt};
        }
      }
      if (!items_.empty()) {
        received.status = ChannelStatus::ok;
        wake = pop_locked(received.value);
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
        received.status = ChannelStatus::ok;
        wake = pop_locked(received.value);
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

  bool pop_locked(std::optional<T>& out) {
    SEEDPOOL_ASSERT(!items_.empty());
    items_.pop_front_into(out);
    return senders_waiting_ > 0;
  }

  // The text a blocked task shows in deadlock reports, "send on 'NAME'" or
  // "receive on 'NAME'". Built at the first wait that needs it, as most
  // reply channels never block a sender, and kept: the monitor holds a view
  // of it for as long as the wait lasts.
  std::string_view wait_reason(detail::WaitReason& reason, std::string_view verb) {
    if (reason.empty()) {
      reason.assign(verb, name_);
    }
    return reason.view();
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
  detail::WaitReason send_reason_;     // see wait_reason; guarded by monitor_
  detail::WaitReason receive_reason_;  // see wait_reason; guarded by monitor_
  detail::BoundedRing<T> items_;
  std::size_t senders_waiting_ = 0;
  std::size_t receivers_waiting_ = 0;
  bool closed_ = false;
};

}  // namespace seedpool
