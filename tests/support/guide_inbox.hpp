#pragma once

// The ported program of docs/guide.md ("Code written as threads"), as it
// stands there: run on threads by tests/real/sync_test.cpp and seed by seed
// by tests/sim/sync_test.cpp.

#include <seedpool/core/assert.hpp>
#include <seedpool/core/sync.hpp>

#include <mutex>
#include <vector>

namespace seedpool::test {

struct Inbox {
  explicit Inbox(seedpool::World& world) : mutex(world, "inbox"), ready(world, "ready") {}
  seedpool::Mutex mutex;
  seedpool::ConditionVariable ready;
  std::vector<int> items;
  bool closed = false;
};

inline void run_inbox(seedpool::World& world) {
  Inbox inbox(world);
  seedpool::Atomic<int> handled(world, 0);
  seedpool::Thread consumer(world, "consumer", [&] {
    std::unique_lock<seedpool::Mutex> lock(inbox.mutex);
    for (;;) {
      inbox.ready.wait(lock, [&] { return !inbox.items.empty() || inbox.closed; });
      if (inbox.items.empty()) return;
      inbox.items.pop_back();
      handled.fetch_add(1);
    }
  });
  for (int i = 0; i < 3; ++i) {
    std::lock_guard<seedpool::Mutex> lock(inbox.mutex);
    inbox.items.push_back(i);
    inbox.ready.notify_one();
  }
  {
    std::lock_guard<seedpool::Mutex> lock(inbox.mutex);
    inbox.closed = true;
  }
  inbox.ready.notify_one();
  consumer.join();
  SEEDPOOL_ASSERT(handled.load() == 3);
}

}  // namespace seedpool::test
