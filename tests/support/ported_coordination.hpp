#pragma once

// A program written against std::counting_semaphore, std::binary_semaphore,
// std::shared_mutex (with std::shared_lock), std::barrier and
// std::call_once, std::promise and std::future, ported by changing types:
// workers wait for a start
// signal, set up a shared setting once (call_once), enter a section at most
// `Slots` at a time, write their own cell of a table under the writer lock
// while readers check that no writer is inside, and meet at a barrier after
// each round, whose completion counts the rounds, and report their cell
// through a promise (the last one by an exception; a promise dropped
// unset breaks its future). Run on threads by
// tests/real/sync_test.cpp and seed by seed by
// tests/sim/sync_coordination_test.cpp; `slots_granted` above `Slots`
// plants the bug the semaphore is there to prevent.

#include <seedpool/core/assert.hpp>
#include <seedpool/core/sync.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace seedpool::test {

constexpr std::size_t coordination_workers = 3;
constexpr int coordination_rounds = 2;
constexpr std::ptrdiff_t coordination_slots = 2;

inline void run_ported_coordination(seedpool::World& world, std::ptrdiff_t slots_granted = coordination_slots) {
  using namespace std::chrono_literals;
  seedpool::CountingSemaphore<3> slots(world, "slots", slots_granted);
  seedpool::BinarySemaphore go(world, "go", 0);
  seedpool::SharedMutex table_lock(world, "table");
  seedpool::Atomic<int> in_section(world, 0);
  seedpool::Atomic<int> writers_in(world, 0);
  seedpool::Atomic<int> readers_in(world, 0);
  std::vector<int> table(coordination_workers, 0);  // under table_lock
  int rounds_done = 0;                              // by the barrier's completion only
  seedpool::Barrier round_end(world, "round", coordination_workers, [&rounds_done]() noexcept { ++rounds_done; });

  seedpool::OnceFlag setup_once(world, "setup");
  int setups = 0;
  int setting = 0;  // written once, by the setup
  std::vector<seedpool::Promise<int>> reports;
  std::vector<seedpool::Future<int>> reported;
  for (std::size_t id = 0; id < coordination_workers; ++id) {
    reports.emplace_back(world, "report " + std::to_string(id));
    reported.push_back(reports.back().get_future());
  }
  const auto work = [&](std::size_t id) {
    go.acquire();
    go.release();  // pass the start signal on
    seedpool::call_once(setup_once, [&](int value) {
      ++setups;
      world.yield();  // a setup that takes a while: the others wait for it
      setting = value;
    }, 42);
    SEEDPOOL_ASSERT_MSG(setting == 42, "call_once returned before the setup was done");
    for (int round = 0; round < coordination_rounds; ++round) {
      slots.acquire();
      SEEDPOOL_ASSERT_MSG(in_section.fetch_add(1) < coordination_slots, "more workers in the section than slots");
      {
        std::lock_guard<seedpool::SharedMutex> write(table_lock);
        SEEDPOOL_ASSERT_MSG(writers_in.fetch_add(1) == 0 && readers_in.load() == 0, "a writer was not alone");
        table[id] += 1;
        writers_in.fetch_sub(1);
      }
      in_section.fetch_sub(1);
      slots.release();
      {
        std::shared_lock<seedpool::SharedMutex> read(table_lock);
        readers_in.fetch_add(1);
        SEEDPOOL_ASSERT_MSG(writers_in.load() == 0, "a reader met a writer");
        SEEDPOOL_ASSERT(table[id] == round + 1);
        readers_in.fetch_sub(1);
      }
      round_end.arrive_and_wait();
      SEEDPOOL_ASSERT_MSG(rounds_done == round + 1, "the barrier let a worker go before its completion ran");
      std::shared_lock<seedpool::SharedMutex> read(table_lock);
      for (const int cell : table) {
        SEEDPOOL_ASSERT_MSG(cell >= round + 1, "the barrier let a worker go before every worker arrived");
      }
    }
    if (id + 1 == coordination_workers) {
      reports[id].set_exception(std::make_exception_ptr(std::runtime_error("the last worker reports by exception")));
    } else {
      reports[id].set_value(table[id]);
    }
  };
  std::vector<seedpool::Thread> threads;
  for (std::size_t id = 0; id < coordination_workers; ++id) {
    threads.emplace_back(world, "worker " + std::to_string(id), work, id);
  }
  go.release();
  for (std::size_t id = 0; id < coordination_workers; ++id) {
    if (id + 1 < coordination_workers) {
      SEEDPOOL_ASSERT_MSG(reported[id].get() == coordination_rounds, "a worker reported a wrong cell");
    } else {
      bool thrown = false;
      try {
        static_cast<void>(reported[id].get());
      } catch (const std::runtime_error&) {
        thrown = true;
      }
      SEEDPOOL_ASSERT_MSG(thrown, "the last worker's exception did not reach its future");
    }
    SEEDPOOL_ASSERT(!reported[id].valid());
  }
  for (seedpool::Thread& thread : threads) {
    thread.join();
  }
  seedpool::Future<void> orphan;
  {
    seedpool::Promise<void> dropped(world, "dropped");
    orphan = dropped.get_future();
  }
  bool broken = false;
  try {
    orphan.get();
  } catch (const std::future_error& error) {
    broken = error.code() == std::future_errc::broken_promise;
  }
  SEEDPOOL_ASSERT_MSG(broken, "a promise dropped unset did not break its future");
  SEEDPOOL_ASSERT(setups == 1);
  SEEDPOOL_ASSERT(rounds_done == coordination_rounds);
  SEEDPOOL_ASSERT((table == std::vector<int>(coordination_workers, coordination_rounds)));
  SEEDPOOL_ASSERT(go.try_acquire());          // the signal the last worker passed on
  SEEDPOOL_ASSERT(!go.try_acquire_for(1ms));  // and nothing else
}

}  // namespace seedpool::test
