#pragma once

// Idioms of code written against the standard library's threads, ported by
// changing types (and giving each object its World and a name): memory
// orders on atomic operations, an atomic enum, a floating-point atomic sum,
// atomic bitwise operators, threads started with arguments (one move-only,
// one passed by std::ref), a timed wait given a std::chrono duration, a
// spin-wait on an atomic flag, C++20's atomic wait and notify, and a
// spinlock on an AtomicFlag.
// Run on threads by tests/real/sync_test.cpp and seed by seed by
// tests/sim/sync_test.cpp.

#include <seedpool/core/assert.hpp>
#include <seedpool/core/sync.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace seedpool::test {

enum class Phase { starting, running, stopped };

inline void run_ported_idioms(seedpool::World& world) {
  using namespace std::chrono_literals;
  seedpool::Mutex mutex(world, "results");
  seedpool::ConditionVariable changed(world, "results");
  seedpool::Atomic<Phase> phase(world, Phase::starting);
  seedpool::Atomic<unsigned> seen(world, 0U);
  seedpool::Atomic<double> total(world, 0.0);
  std::vector<int> results;
  int started = 0;
  seedpool::Atomic<bool> go(world, false);
  seedpool::Atomic<int> done(world, 0);
  seedpool::AtomicFlag spinlock(world);
  int guarded = 0;

  const auto work = [&](int id, std::unique_ptr<int> weight) {
    while (!go.load(std::memory_order_acquire)) {
    }
    Phase expected = Phase::starting;
    phase.compare_exchange_strong(expected, Phase::running, std::memory_order_acq_rel, std::memory_order_acquire);
    seen |= 1U << id;
    total.fetch_add(*weight * 0.5, std::memory_order_relaxed);
    while (spinlock.test_and_set(std::memory_order_acquire)) {
    }
    guarded += *weight;
    spinlock.clear(std::memory_order_release);
    std::lock_guard<seedpool::Mutex> lock(mutex);
    results.push_back(id * *weight);
    changed.notify_one();
    done.fetch_add(1, std::memory_order_release);
    done.notify_all();
  };
  seedpool::Thread first(world, "worker 0", work, 0, std::make_unique<int>(2));
  seedpool::Thread second(world, "worker 1", work, 1, std::make_unique<int>(4));
  seedpool::Thread counter(world, "counter", [](int& n) { ++n; }, std::ref(started));
  go.store(true, std::memory_order_release);
  for (int now = done.load(std::memory_order_acquire); now < 2; now = done.load(std::memory_order_acquire)) {
    done.wait(now, std::memory_order_acquire);
  }
  {
    std::unique_lock<seedpool::Mutex> lock(mutex);
    const bool both = changed.wait_for(lock, 10s, [&] { return results.size() == 2; });
    SEEDPOOL_ASSERT_MSG(both, "ported idioms: the workers did not report within the timeout");
  }
  first.join();
  second.join();
  counter.join();
  phase.store(Phase::stopped, std::memory_order_release);
  SEEDPOOL_ASSERT(phase.load(std::memory_order_acquire) == Phase::stopped);
  SEEDPOOL_ASSERT(seen.load(std::memory_order_relaxed) == 3U);
  SEEDPOOL_ASSERT(total.load() == 3.0);
  SEEDPOOL_ASSERT(started == 1);
  SEEDPOOL_ASSERT(guarded == 6 && !spinlock.test());
  std::sort(results.begin(), results.end());
  SEEDPOOL_ASSERT((results == std::vector<int>{0, 4}));
}

}  // namespace seedpool::test
