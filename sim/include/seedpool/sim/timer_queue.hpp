#pragma once

// The simulator's pending wake-ups: at most one timer per task, the deadline
// of the wait the task is blocked in. A task woken another way keeps its
// timer until it blocks again, which moves the timer (one sift, where a
// cancel and a new timer cost two), or finishes, which cancels it; most
// tasks block again with a deadline soon. So the queue may hold timers of
// runnable tasks, but never when time advances: that happens only while no
// task is runnable or running (SimWorld::make_runnable).
//
// An indexed 8-ary min-heap ordered by (deadline, arming order): the order
// in which timers fire depends only on those keys, never on the heap's
// layout. With eight children per node a timer climbs a third of the
// levels of a binary heap when armed, and a replacement descends a third as
// many when one is cancelled or fired, scanning children that lie side by
// side. The churn scenario ran measurably faster with 8 than with 2 or 4.

#include <seedpool/core/assert.hpp>
#include <seedpool/core/time.hpp>
#include <seedpool/sim/strategy.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace seedpool::sim {

class TimerQueue {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }

  bool armed(TaskId task) const noexcept { return task < position_.size() && position_[task] != none; }

  // Arms `task`'s timer for `at`. A timer still armed for `task` is moved,
  // and left as it is when `at` is already its deadline.
  void arm(TaskId task, Instant at) {
    if (task >= position_.size()) {
      position_.resize(static_cast<std::size_t>(task) + 1, none);
    }
    if (const std::size_t index = position_[task]; index != none) {
      if (heap_[index].at == at) {
        return;
      }
      const Entry entry{at, sequence_++, task};
      if (index > 0 && earlier(entry, heap_[(index - 1) / arity])) {
        sift_up(index, entry);
      } else {
        sift_down(index, entry);
      }
      return;
    }
    const Entry entry{at, sequence_++, task};
    heap_.emplace_back();
    sift_up(heap_.size() - 1, entry);
    SEEDPOOL_ASSERT(armed(task));
  }

  // Disarms `task`'s timer, if one is armed.
  void cancel(TaskId task) {
    if (!armed(task)) {
      return;
    }
    remove_at(position_[task]);
    SEEDPOOL_ASSERT(!armed(task));
  }

  // The earliest deadline. Requires !empty().
  Instant earliest() const {
    SEEDPOOL_ASSERT(!heap_.empty());
    return heap_.front().at;
  }

  // Removes the earliest timer (the first armed among equal deadlines) and
  // returns its task. Requires !empty().
  TaskId pop() {
    SEEDPOOL_ASSERT(!heap_.empty());
    const TaskId task = heap_.front().task;
    remove_at(0);
    return task;
  }

  // Disarms every timer.
  void clear() noexcept {
    for (const Entry& entry : heap_) {
      position_[entry.task] = none;
    }
    heap_.clear();
  }

 private:
  struct Entry {
    Instant at;
    std::uint64_t sequence;  // arming order: ties at one instant fire first-armed first
    TaskId task;
  };

  static constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
  static constexpr std::size_t arity = 8;

  static bool earlier(const Entry& a, const Entry& b) noexcept {
    return a.at != b.at ? a.at < b.at : a.sequence < b.sequence;
  }

  void place(std::size_t index, const Entry& entry) noexcept {
    heap_[index] = entry;
    position_[entry.task] = index;
  }

  // Moves `entry` from the free slot `index` towards the root to its place.
  // The entry travels in registers, never read back from a slot just
  // written: such reads stalled on the store (measured).
  void sift_up(std::size_t index, const Entry entry) noexcept {
    while (index > 0) {
      const std::size_t parent = (index - 1) / arity;
      if (!earlier(entry, heap_[parent])) {
        break;
      }
      place(index, heap_[parent]);
      index = parent;
    }
    place(index, entry);
  }

  // Moves `entry` from the free slot `index` towards the leaves to its place.
  void sift_down(std::size_t index, const Entry entry) noexcept {
    const std::size_t size = heap_.size();
    for (;;) {
      const std::size_t first = arity * index + 1;
      if (first >= size) {
        break;
      }
      std::size_t child = first;
      const std::size_t last = std::min(first + arity, size);
      for (std::size_t other = first + 1; other < last; ++other) {
        if (earlier(heap_[other], heap_[child])) {
          child = other;
        }
      }
      if (!earlier(heap_[child], entry)) {
        break;
      }
      place(index, heap_[child]);
      index = child;
    }
    place(index, entry);
  }

  void remove_at(std::size_t index) {
    SEEDPOOL_ASSERT(index < heap_.size());
    position_[heap_[index].task] = none;
    const Entry last = heap_.back();
    heap_.pop_back();
    if (index == heap_.size()) {
      return;
    }
    if (index > 0 && earlier(last, heap_[(index - 1) / arity])) {
      sift_up(index, last);
    } else {
      sift_down(index, last);
    }
  }

  std::vector<Entry> heap_;
  std::vector<std::size_t> position_;  // indexed by task: its entry in heap_, or none
  std::uint64_t sequence_ = 0;
};

}  // namespace seedpool::sim
