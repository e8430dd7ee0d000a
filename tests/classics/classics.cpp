#include "classics.hpp"

#include <seedpool/core/assert.hpp>
#include <seedpool/core/sync.hpp>

#include <fmt/format.h>

#include <memory>
#include <mutex>
#include <vector>

namespace seedpool::classics {
namespace {

// Starts `count` threads running `body(i)` and joins them all.
void run_threads(World& world, const std::string& name, int count, const std::function<void(int)>& body) {
  std::vector<Thread> threads;
  threads.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    threads.emplace_back(world, fmt::format("{} {}", name, i), [&body, i] { body(i); });
  }
  for (Thread& t : threads) {
    t.join();
  }
}

// Two depositors and a withdrawer update one balance; the buggy variant
// reads and writes it in two steps without the lock, losing an update.
void account(World& world, bool fixed) {
  Mutex lock(world, "account");
  Atomic<int> balance(world, 100);
  const auto change = [&](int delta) {
    if (fixed) {
      std::lock_guard<Mutex> held(lock);
      balance.store(balance.load() + delta);
    } else {
      const int read = balance.load();
      balance.store(read + delta);
    }
  };
  run_threads(world, "teller", 3, [&](int i) { change(i == 2 ? -50 : 20); });
  SEEDPOOL_ASSERT_MSG(balance.load() == 90, "account: an update was lost");
}

// Two threads take two locks in opposite orders: a deadlock when each holds
// its first. Fixed: one order.
void deadlock01(World& world, bool fixed) {
  Mutex a(world, "a");
  Mutex b(world, "b");
  int counter = 0;
  Thread one(world, "one", [&] {
    std::lock_guard<Mutex> first(a);
    std::lock_guard<Mutex> second(b);
    ++counter;
  });
  Thread two(world, "two", [&] {
    Mutex& x = fixed ? a : b;
    Mutex& y = fixed ? b : a;
    std::lock_guard<Mutex> first(x);
    std::lock_guard<Mutex> second(y);
    ++counter;
  });
  one.join();
  two.join();
  SEEDPOOL_ASSERT(counter == 2);
}

// Two writers add 1 and 2 under a lock while a checker asserts the sum is
// below 3: wrong once both writers ran before it. Fixed: the checker's
// bound allows it.
void lazy01(World& world, bool fixed) {
  Mutex lock(world, "data");
  int data = 0;
  Thread one(world, "add1", [&] {
    std::lock_guard<Mutex> held(lock);
    data += 1;
  });
  Thread two(world, "add2", [&] {
    std::lock_guard<Mutex> held(lock);
    data += 2;
  });
  Thread check(world, "check", [&] {
    std::lock_guard<Mutex> held(lock);
    SEEDPOOL_ASSERT_MSG(data < (fixed ? 4 : 3), "lazy01: both writers ran first");
  });
  one.join();
  two.join();
  check.join();
}

// N setters write a = 1 then b = -1; a checker reads both and requires them
// consistent: a checker between a setter's two stores sees a = 1, b = 0.
// Fixed: the setters and the checker use a lock.
void reorder(World& world, bool fixed, int setters) {
  Mutex lock(world, "ab");
  Atomic<int> a(world, 0);
  Atomic<int> b(world, 0);
  run_threads(world, "thread", setters + 1, [&](int i) {
    std::unique_lock<Mutex> held(lock, std::defer_lock);
    if (fixed) {
      held.lock();
    }
    if (i < setters) {
      a.store(1);
      b.store(-1);
      return;
    }
    const int x = a.load();
    const int y = b.load();
    SEEDPOOL_ASSERT_MSG((x == 0 && y == 0) || (x == 1 && y == -1), "reorder: the checker saw half a write");
  });
}

// N threads publish data1 under one lock and data2 = data1 + 1 under a
// second; a reader that takes the first lock, then the second, sees data1
// set and data2 not yet. Fixed: both stages under one lock.
void twostage(World& world, bool fixed, int writers) {
  Mutex m1(world, "m1");
  Mutex m2(world, "m2");
  int data1 = 0;
  int data2 = 0;
  run_threads(world, "thread", writers + 1, [&](int i) {
    if (i < writers) {
      std::unique_lock<Mutex> first(m1);
      data1 = 1;
      if (!fixed) {
        first.unlock();
      }
      std::lock_guard<Mutex> second(m2);
      data2 = data1 + 1;
      return;
    }
    std::unique_lock<Mutex> first(m1);
    if (data1 == 0) {
      return;
    }
    const int seen = data1;
    if (!fixed) {
      first.unlock();
    }
    std::lock_guard<Mutex> second(m2);
    SEEDPOOL_ASSERT_MSG(data2 == seen + 1, "twostage: the second stage was not done");
  });
}

// A writer and a reader protect one value with different locks. Fixed: the
// same lock.
void wronglock(World& world, bool fixed) {
  Mutex one(world, "one");
  Mutex two(world, "two");
  Atomic<int> data(world, 0);
  run_threads(world, "thread", 3, [&](int i) {
    if (i < 2) {
      std::lock_guard<Mutex> held(one);
      data.store(data.load() + 1);
      return;
    }
    std::lock_guard<Mutex> held(fixed ? one : two);
    const int before = data.load();
    const int after = data.load();
    SEEDPOOL_ASSERT_MSG(before == after, "wronglock: the value changed under the reader's lock");
  });
}

// Three nodes pass a token around a ring: each waits for its turn, counts
// its pass and hands the turn on; main waits for the token to come round and
// checks every node passed. The buggy node hands the turn on before it
// counts its pass, so main can see the token back with a pass missing.
void token_ring(World& world, bool fixed) {
  constexpr int nodes = 3;
  Mutex lock(world, "ring");
  ConditionVariable moved(world, "ring");
  int turn = 0;
  Atomic<int> passes(world, 0);
  const auto hand_on = [&](int next) {
    std::lock_guard<Mutex> held(lock);
    turn = next;
    moved.notify_all();
  };
  std::vector<Thread> ring;
  for (int i = 0; i < nodes; ++i) {
    ring.emplace_back(world, fmt::format("node {}", i), [&, i] {
      {
        std::unique_lock<Mutex> held(lock);
        moved.wait(held, [&] { return turn == i; });
      }
      if (fixed) {
        passes.fetch_add(1);
        hand_on(i + 1);
      } else {
        hand_on(i + 1);
        passes.fetch_add(1);
      }
    });
  }
  {
    std::unique_lock<Mutex> held(lock);
    moved.wait(held, [&] { return turn == nodes; });
  }
  SEEDPOOL_ASSERT_MSG(passes.load() == nodes, "token_ring: the token came back before every pass was counted");
  for (Thread& t : ring) {
    t.join();
  }
}

// A bounded buffer of 2 slots, one producer and one consumer, counting
// items with a plain read-modify-write. Fixed: fetch_add / fetch_sub.
void circular_buffer(World& world, bool fixed) {
  constexpr int items = 4;
  Atomic<int> count(world, 0);
  Mutex lock(world, "slots");
  ConditionVariable changed(world, "slots");
  int produced = 0;
  int consumed = 0;
  const auto add = [&](int delta) {
    if (fixed) {
      count.fetch_add(delta);
    } else {
      const int read = count.load();
      count.store(read + delta);
    }
  };
  Thread producer(world, "producer", [&] {
    for (int i = 0; i < items; ++i) {
      {
        std::unique_lock<Mutex> held(lock);
        changed.wait(held, [&] { return produced - consumed < 2; });
        ++produced;
        changed.notify_all();
      }
      add(1);
    }
  });
  Thread consumer(world, "consumer", [&] {
    for (int i = 0; i < items; ++i) {
      {
        std::unique_lock<Mutex> held(lock);
        changed.wait(held, [&] { return produced > consumed; });
        ++consumed;
        changed.notify_all();
      }
      add(-1);
    }
  });
  producer.join();
  consumer.join();
  SEEDPOOL_ASSERT_MSG(count.load() == 0, "circular_buffer: the item count drifted");
}

// A driver's stop routine against an I/O request (after the model of a
// Windows bluetooth driver that checkers of the KISS line used): a request
// checks the stopping flag, then counts itself in; the stopper raises the
// flag, counts its own reference out, waits for the count to reach zero and
// marks the device stopped. The buggy request checks and counts in two
// steps, so the stopper can finish between them and the request then runs
// on a stopped device. Fixed: the check and the count under one lock.
void bluetooth_driver(World& world, bool fixed) {
  Mutex lock(world, "device");
  ConditionVariable idle(world, "device");
  Atomic<bool> stopping(world, false);
  Atomic<bool> stopped(world, false);
  int pending = 1;  // the stopper's own reference; under `lock`
  const auto count_in = [&] {
    std::unique_lock<Mutex> held(lock, std::defer_lock);
    if (fixed) {
      held.lock();
    }
    if (stopping.load()) {
      return false;
    }
    if (!fixed) {
      held.lock();
    }
    ++pending;
    return true;
  };
  const auto count_out = [&] {
    std::lock_guard<Mutex> held(lock);
    if (--pending == 0) {
      idle.notify_all();
    }
  };
  Thread request(world, "request", [&] {
    if (count_in()) {
      SEEDPOOL_ASSERT_MSG(!stopped.load(), "bluetooth_driver: a request ran on a stopped device");
      count_out();
    }
  });
  Thread stopper(world, "stopper", [&] {
    stopping.store(true);
    count_out();
    std::unique_lock<Mutex> held(lock);
    idle.wait(held, [&] { return pending == 0; });
    stopped.store(true);
  });
  request.join();
  stopper.join();
}

// A consumer waits for a flag that a producer sets under a lock and
// notifies. The buggy consumer tests the flag before it takes the lock, so
// the notification can fall between its test and its wait and is lost: the
// consumer sleeps for ever, and the run ends in a deadlock. Fixed: the test
// under the lock, as the predicate of the wait.
void lost_wakeup(World& world, bool fixed) {
  Mutex lock(world, "flag");
  ConditionVariable set(world, "flag");
  Atomic<bool> ready(world, false);
  Thread consumer(world, "consumer", [&] {
    if (fixed) {
      std::unique_lock<Mutex> held(lock);
      set.wait(held, [&] { return ready.load(); });
    } else if (!ready.load()) {
      std::unique_lock<Mutex> held(lock);
      set.wait(held);
    }
  });
  Thread producer(world, "producer", [&] {
    std::lock_guard<Mutex> held(lock);
    ready.store(true);
    set.notify_one();
  });
  consumer.join();
  producer.join();
}

// Peterson's lock for two threads, which spin on atomics while the other
// is inside. The buggy variant writes `turn` before its own flag: a thread
// preempted between the two lets the other in, and then enters too.
void peterson(World& world, bool fixed) {
  Atomic<bool> flag0(world, false);
  Atomic<bool> flag1(world, false);
  Atomic<int> turn(world, 0);
  int inside = 0;
  run_threads(world, "peterson", 2, [&](int me) {
    Atomic<bool>& mine = me == 0 ? flag0 : flag1;
    const Atomic<bool>& other = me == 0 ? flag1 : flag0;
    for (int round = 0; round < 2; ++round) {
      if (fixed) {
        mine.store(true);
        turn.store(1 - me);
      } else {
        turn.store(1 - me);
        mine.store(true);
      }
      while (other.load() && turn.load() == 1 - me) {
      }
      ++inside;
      world.yield();
      SEEDPOOL_ASSERT_MSG(inside == 1, "peterson: both threads in the critical section");
      --inside;
      mine.store(false);
    }
  });
}

// A spinlock. The buggy variant tests the flag and sets it in two steps,
// so both threads can find it clear; the fixed one spins on exchange(true),
// which writes the value already there while the lock is held.
void spinlock(World& world, bool fixed) {
  Atomic<bool> locked(world, false);
  int inside = 0;
  run_threads(world, "spinner", 2, [&](int) {
    for (int round = 0; round < 2; ++round) {
      if (fixed) {
        while (locked.exchange(true)) {
        }
      } else {
        while (locked.load()) {
        }
        locked.store(true);
      }
      ++inside;
      world.yield();
      SEEDPOOL_ASSERT_MSG(inside == 1, "spinlock: two threads hold it");
      --inside;
      locked.store(false);
    }
  });
}

}  // namespace

const std::vector<Classic>& all() {
  static const std::vector<Classic> suite = {
      {"account", "an update of the balance is lost", "account: an update was lost", 3, 2, 1, account},
      {"deadlock01", "two locks taken in opposite orders", "lock cycle:", 2, 2, 1, deadlock01},
      {"lazy01", "a check runs after both writers", "lazy01: both writers ran first", 3, 1, 0, lazy01},
      {"reorder_3", "a checker reads between a setter's two stores", "reorder: the checker saw half a write", 4, 2,
       1, [](World& w, bool fixed) { reorder(w, fixed, 3); }},
      {"reorder_10", "the same with ten setters", "reorder: the checker saw half a write", 11, 2, 1,
       [](World& w, bool fixed) { reorder(w, fixed, 10); }, "delay:2"},
      {"twostage_20", "a reader between two stages", "twostage: the second stage was not done", 21, 2, 1,
       [](World& w, bool fixed) { twostage(w, fixed, 20); }, "delay:2"},
      {"twostage_100", "the same with a hundred writers", "twostage: the second stage was not done", 101, 2, 1,
       [](World& w, bool fixed) { twostage(w, fixed, 100); }, "delay:2"},
      {"wronglock", "two locks for one value", "wronglock: the value changed under the reader's lock", 3, 2, 1,
       wronglock},
      {"token_ring", "the token is handed on before the pass is counted",
       "token_ring: the token came back before every pass was counted", 3, 2, 1, token_ring},
      {"circular_buffer", "an item count updated without atomicity", "circular_buffer: the item count drifted", 2, 2,
       1, circular_buffer},
      {"bluetooth_driver", "the device stops between a request's check and its count",
       "bluetooth_driver: a request ran on a stopped device", 2, 2, 1, bluetooth_driver},
      {"lost_wakeup", "a notification between the consumer's test and its wait", "deadlock:", 2, 2, 1,
       lost_wakeup},
      {"peterson", "turn written before the thread's own flag", "peterson: both threads in the critical section",
       2, 3, 2, peterson},
      {"spinlock", "the lock's flag tested and set in two steps", "spinlock: two threads hold it", 2, 3, 2,
       spinlock},
  };
  return suite;
}

}  // namespace seedpool::classics
