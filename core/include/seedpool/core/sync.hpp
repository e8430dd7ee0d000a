#pragma once

// Primitives for code written as threads: mutexes (plain, timed,
// recursive), condition variables (over Mutex, and over any lock),
// atomics and an atomic flag, joinable tasks, a latch, a semaphore, a
// reader-writer lock, a barrier, call_once, and a promise with its future,
// with the names and shapes of the standard library's. A program written
// with the standard ones runs on any
// World once its types are changed (and each object is given its World and
// a name): the same code runs on real threads and, explored seed by seed,
// in simulation.
//
// Cost and scheduling points. In simulation each of these operations is one
// scheduling point: Mutex::lock and try_lock, ConditionVariable::wait*, every
// Atomic operation, Thread's constructor (a spawn) and join, and every
// operation of a Latch, a CountingSemaphore, a SharedMutex, a Barrier or a
// OnceFlag (each takes the object's own Mutex), and Atomic::notify_one and
// notify_all (which take the atomic's waiting Mutex). Mutex::unlock and
// notifying a ConditionVariable are not:
// like every plain instruction they run atomically as far as other tasks
// can tell. A task blocked on a held mutex, a condition, a join or anything
// built on them is not runnable until what it waits for happens, so waiting
// costs no steps.
//
// Misuse is a failure, never undefined behaviour: unlocking a mutex the
// caller does not hold, locking one it already holds, destroying a held
// mutex, destroying a joinable Thread, releasing a semaphore past its max(),
// unlocking a SharedMutex in a mode nobody holds it in, arriving at a
// Barrier more times than its phase waits for. In simulation the run fails with a
// message naming the task and the object; on a real World the assertion
// handler reports it and aborts. Where the standard library throws rather
// than leaving the behaviour undefined, so does this header: a join() or
// detach() of a Thread that is not joinable, and a task's join() of its own
// Thread, throw std::system_error with the standard library's codes; a
// misused Promise or Future throws std::future_error.
//
// TimedMutex, the recursive mutexes and ConditionVariableAny are built on
// Mutex and ConditionVariable: see each for its scheduling points.
//
// Every object here must not outlive its World.

#include <seedpool/core/assert.hpp>
#include <seedpool/core/time.hpp>
#include <seedpool/core/world.hpp>

#include <atomic>
// For std::chrono::duration only: timeouts given as the standard library's
// durations (wait_for(lock, 10ms)) convert to Duration. No clock is read here.
#include <chrono>
#include <concepts>
// For std::cv_status only, which ConditionVariable's timed waits return as
// the standard library's do.
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
// For std::future_error and std::future_status only, which Promise and
// Future use as the standard library's do.
#include <future>
#include <limits>
#include <memory>
// For std::unique_lock and std::lock_guard, which take any Lockable type;
// nothing in core uses the kernel-backed types declared beside them.
#include <mutex>
#include <optional>
#include <ratio>
#include <string>
#include <string_view>
// For std::system_error: Thread::join and detach throw it as the standard
// library's thread does.
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

namespace seedpool {

// A standard library duration as a Duration, truncated to whole nanoseconds
// and saturated at Duration's range (std::chrono::hours::max() is "never").
// Integral counts only: time in seedpool has no floating point.
template <class Rep, class Period>
constexpr Duration to_duration(std::chrono::duration<Rep, Period> d) {
  static_assert(std::is_integral_v<Rep>, "to_duration takes an integral std::chrono::duration");
  using Ratio = std::ratio_divide<Period, std::nano>;
  constexpr std::int64_t top = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t bottom = std::numeric_limits<std::int64_t>::min();
  const Rep raw = d.count();
  if (std::cmp_greater(raw, top)) {
    return Duration::max();
  }
  const auto count = static_cast<std::int64_t>(raw);
  // count * num / den without overflow: whole multiples of den, then the rest.
  std::int64_t whole = 0;
  std::int64_t rest = 0;
  if (__builtin_mul_overflow(count / Ratio::den, Ratio::num, &whole) ||
      __builtin_mul_overflow(count % Ratio::den, Ratio::num, &rest)) {
    return Duration::from_ns(count < 0 ? bottom : top);
  }
  return Duration::from_ns(Duration::saturating_add(whole, rest / Ratio::den));
}
constexpr Duration to_duration(Duration d) { return d; }

// What every timed wait below takes as a timeout: a Duration or a
// std::chrono duration, one overload for both.
template <class T>
concept Timeout = requires(T t) {
  { to_duration(t) } -> std::same_as<Duration>;
};

// The World's clock as a std::chrono clock, for deadlines written as time
// points: where code on threads computes `a clock's now() + 100ms` and waits
// until it, ported code computes `seedpool::world_now(world) + 100ms`. Its
// time points are Instants of the World (virtual time in simulation, the
// steady clock on a real World) counted in nanoseconds. It has no static
// now(), which would need a World: world_now(world) is its now.
struct WorldClock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::duration<rep, period>;
  using time_point = std::chrono::time_point<WorldClock, duration>;
  static constexpr bool is_steady = true;

  static constexpr time_point from_instant(Instant at) noexcept { return time_point(duration(at.ns())); }
};

inline WorldClock::time_point world_now(const World& world) { return WorldClock::from_instant(world.now()); }

// A time point as an Instant of `world`'s clock. A WorldClock time point is
// one already. A time point of any other clock (a host clock: the standard
// library's steady or system clock) becomes now() plus the time left on its
// clock at the call, as the standard library converts between clocks; that
// reads the host clock, which World::reading_host_clock allows on a real
// World and refuses in simulation (`operation` names the caller).
template <class Clock, class Dur>
Instant to_instant(World& world, const std::chrono::time_point<Clock, Dur>& at, std::string_view operation) {
  if constexpr (std::is_same_v<Clock, WorldClock>) {
    return Instant::from_ns(to_duration(std::chrono::ceil<std::chrono::nanoseconds>(at.time_since_epoch())).ns());
  } else {
    world.reading_host_clock(operation);
    const auto left = std::chrono::ceil<std::chrono::nanoseconds>(at - Clock::now());
    return world.now() + (left.count() > 0 ? to_duration(left) : Duration::zero());
  }
}

// A mutual-exclusion lock with the shape of the standard library's mutex
// (Lockable): std::lock_guard<Mutex>, std::unique_lock<Mutex>,
// std::scoped_lock and std::lock work with it. Not recursive.
//
// In simulation lock() and try_lock() are scheduling points taken before
// the mutex is tried, and the mutex records the task holding it. A task that
// finds it held blocks and is not offered to the strategy until the mutex is
// released; then every task blocked on it becomes runnable, the first of
// them the strategy runs takes it, and the others block again without
// spending a step. The deadlock report names lock-order cycles.
class Mutex {
 public:
  // `name` appears in failure messages and deadlock reports.
  Mutex(World& world, std::string name) : backend_(world.make_mutex(std::move(name))) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Blocks until the calling task holds the mutex. Requires that it does not
  // hold it already.
  void lock() { backend_->lock(); }

  // Takes the mutex if it is free and returns whether it did; never blocks.
  // Requires that the caller does not hold it already.
  bool try_lock() { return backend_->try_lock(); }

  // Requires the mutex held by the calling task. Not a scheduling point.
  void unlock() { backend_->unlock(); }

 private:
  friend class ConditionVariable;
  std::unique_ptr<MutexBackend> backend_;
};

// What a timed wait on a ConditionVariable ended by: the standard library's
// cv_status, so that `cv.wait_for(lock, 10ms) == std::cv_status::timeout`
// ports unchanged. CvStatus is its older name here.
using CvStatus = std::cv_status;

// A condition variable over Mutex, with the standard library's shape; a
// timeout is a Duration or a std::chrono duration, a deadline an Instant of
// the World's clock or a std::chrono time point (see to_instant: in
// simulation only a WorldClock one). Every wait may return spuriously, so
// wait in a loop or pass a predicate.
//
// notify_one wakes one waiter: on a real World the one the kernel picks; in
// simulation the one the strategy chooses among the waiters (a scheduling
// decision: random walk and PCT draw it, the systematic search explores it),
// or the one that began to wait first under SimConfig::notify_one_fifo.
// notify_all wakes them all. In simulation a wait wakes spuriously only
// under SimConfig::spurious_wakeups, where whether it does is another
// decision. A woken waiter reacquires the mutex before its wait
// returns; in simulation one woken while the mutex is held waits for the
// mutex without becoming runnable in between.
class ConditionVariable {
 public:
  // `name` appears in deadlock reports ("wait on condition 'NAME'").
  ConditionVariable(World& world, std::string name)
      : world_(&world), backend_(world.make_condition(std::move(name))) {}
  ConditionVariable(const ConditionVariable&) = delete;
  ConditionVariable& operator=(const ConditionVariable&) = delete;

  // Requires `lock` to own its mutex. Releases it, waits for a notification,
  // and holds it again on return.
  void wait(std::unique_lock<Mutex>& lock) { static_cast<void>(wait_until(lock, Instant::max())); }

  // Waits until `ready()` is true; returns with the lock held.
  template <class Predicate>
  void wait(std::unique_lock<Mutex>& lock, Predicate ready) {
    while (!ready()) {
      wait(lock);
    }
  }

  // As wait(), but gives up at `deadline` (Instant::max(): never).
  CvStatus wait_until(std::unique_lock<Mutex>& lock, Instant deadline) {
    SEEDPOOL_ASSERT_MSG(lock.owns_lock(), "ConditionVariable::wait needs a unique_lock that owns its mutex");
    return backend_->wait_until(*lock.mutex()->backend_, deadline) ? CvStatus::no_timeout : CvStatus::timeout;
  }

  // Waits until `ready()` or `deadline`; returns ready() as last evaluated.
  template <class Predicate>
  bool wait_until(std::unique_lock<Mutex>& lock, Instant deadline, Predicate ready) {
    while (!ready()) {
      if (wait_until(lock, deadline) == CvStatus::timeout) {
        return ready();
      }
    }
    return true;
  }

  // The same with a deadline `timeout` from now on the World's clock.
  // (A Duration or the standard library's durations: wait_for(lock, 10ms).)
  CvStatus wait_for(std::unique_lock<Mutex>& lock, Timeout auto timeout) {
    return wait_until(lock, world_->now() + to_duration(timeout));
  }
  template <class Predicate>
  bool wait_for(std::unique_lock<Mutex>& lock, Timeout auto timeout, Predicate ready) {
    return wait_until(lock, world_->now() + to_duration(timeout), std::move(ready));
  }
  // The same with the standard library's time points (see to_instant).
  template <class Clock, class Dur>
  CvStatus wait_until(std::unique_lock<Mutex>& lock, const std::chrono::time_point<Clock, Dur>& deadline) {
    return wait_until(lock, to_instant(*world_, deadline, "ConditionVariable::wait_until"));
  }
  template <class Clock, class Dur, class Predicate>
  bool wait_until(std::unique_lock<Mutex>& lock, const std::chrono::time_point<Clock, Dur>& deadline,
                  Predicate ready) {
    return wait_until(lock, to_instant(*world_, deadline, "ConditionVariable::wait_until"), std::move(ready));
  }

  // Not scheduling points; callable with or without the mutex held.
  void notify_one() { backend_->notify_one(); }
  void notify_all() { backend_->notify_all(); }

 private:
  World* world_;
  std::unique_ptr<ConditionBackend> backend_;
};

// A mutex with timed tries, with the shape of the standard library's
// timed_mutex (TimedLockable): std::unique_lock<TimedMutex>(m, 10ms) and
// std::unique_lock(m, deadline) work with it. Not recursive. try_lock_for
// and try_lock_until wait at most that long on the World's clock (virtual
// time in simulation) for the holder to unlock it.
//
// It is a Mutex and a ConditionVariable, named `name` both: each operation
// takes the Mutex, so lock, the tries and unlock are each one scheduling
// point in simulation, and a waiter is not runnable until an unlock (whose
// notify_one wakes the waiter the strategy chooses). A deadlock report
// names the wait "wait on condition 'NAME'", not a lock cycle. Locking it
// again while holding it, or unlocking it while another task (or nobody)
// holds it, fails the run.
class TimedMutex {
 public:
  TimedMutex(World& world, const std::string& name) : world_(&world), name_(name), mutex_(world, name), free_(world, name) {}
  TimedMutex(const TimedMutex&) = delete;
  TimedMutex& operator=(const TimedMutex&) = delete;

  void lock() { static_cast<void>(try_lock_until(Instant::max())); }

  bool try_lock() {
    std::lock_guard<Mutex> held(mutex_);
    require_not_holder("try_locks");
    return !locked_ && take();
  }

  // Waits until it takes the mutex, or gives up at `deadline` (Instant::max():
  // never) and returns false.
  bool try_lock_until(Instant deadline) {
    std::unique_lock<Mutex> held(mutex_);
    require_not_holder("locks");
    return free_.wait_until(held, deadline, [this] { return !locked_; }) && take();
  }
  bool try_lock_for(Timeout auto timeout) { return try_lock_until(world_->now() + to_duration(timeout)); }
  template <class Clock, class Dur>
  bool try_lock_until(const std::chrono::time_point<Clock, Dur>& deadline) {
    return try_lock_until(to_instant(*world_, deadline, "TimedMutex::try_lock_until"));
  }

  // Requires the calling task to hold it.
  void unlock() {
    std::lock_guard<Mutex> held(mutex_);
    if (!locked_ || holder_ != world_->current_task_id()) {
      const std::string why = "TimedMutex '" + name_ + "' unlocked by a task that does not hold it";
      SEEDPOOL_ASSERT_MSG(false, why.c_str());
    }
    locked_ = false;
    free_.notify_one();
  }

 private:
  void require_not_holder(const char* operation) const {
    if (locked_ && holder_ == world_->current_task_id()) {
      const std::string why = std::string("a task ") + operation + " TimedMutex '" + name_ + "', which it already holds";
      SEEDPOOL_ASSERT_MSG(false, why.c_str());
    }
  }
  bool take() {
    locked_ = true;
    holder_ = world_->current_task_id();
    return true;
  }

  World* world_;
  std::string name_;
  Mutex mutex_;
  ConditionVariable free_;
  bool locked_ = false;       // under mutex_
  std::uint64_t holder_ = 0;  // under mutex_, while locked_
};

// A mutex the task holding it may lock again, with the shape of the
// standard library's recursive_mutex (Base = Mutex) or
// recursive_timed_mutex (Base = TimedMutex, which adds the timed tries):
// each lock or successful try by its holder must be matched by an unlock,
// and the last unlock releases it. The holder is World::current_task_id().
// Taking it when free, or waiting for it, is Base's operation (one
// scheduling point in simulation); taking it again is one scheduling point
// as well (a World::yield), so that every lock is one. Unlocking it from a
// task that does not hold it fails the run.
template <class Base>
class BasicRecursiveMutex {
 public:
  BasicRecursiveMutex(World& world, const std::string& name) : world_(&world), name_(name), base_(world, name) {}
  BasicRecursiveMutex(const BasicRecursiveMutex&) = delete;
  BasicRecursiveMutex& operator=(const BasicRecursiveMutex&) = delete;

  void lock() {
    if (!again()) {
      base_.lock();
      taken();
    }
  }
  bool try_lock() { return again() || (base_.try_lock() && taken()); }
  bool try_lock_until(Instant deadline)
    requires std::is_same_v<Base, TimedMutex>
  {
    return again() || (base_.try_lock_until(deadline) && taken());
  }
  bool try_lock_for(Timeout auto timeout)
    requires std::is_same_v<Base, TimedMutex>
  {
    return try_lock_until(world_->now() + to_duration(timeout));
  }
  template <class Clock, class Dur>
    requires std::is_same_v<Base, TimedMutex>
  bool try_lock_until(const std::chrono::time_point<Clock, Dur>& deadline) {
    return try_lock_until(to_instant(*world_, deadline, "RecursiveTimedMutex::try_lock_until"));
  }

  // Requires the calling task to hold it.
  void unlock() {
    if (holder_.load(std::memory_order_relaxed) != mine() || depth_ == 0) {
      const std::string why = "recursive mutex '" + name_ + "' unlocked by a task that does not hold it";
      SEEDPOOL_ASSERT_MSG(false, why.c_str());
    }
    if (--depth_ == 0) {
      holder_.store(0, std::memory_order_relaxed);
      base_.unlock();
    }
  }

 private:
  // The caller's id, plus one so that 0 means nobody (a simulated World
  // says 0 outside tasks).
  std::uint64_t mine() const noexcept { return world_->current_task_id() + 1; }
  // Takes it again if the caller holds it. Only the holder writes holder_,
  // so a task reading its own id there holds it.
  bool again() {
    if (holder_.load(std::memory_order_relaxed) != mine()) {
      return false;
    }
    world_->yield();
    ++depth_;
    return true;
  }
  bool taken() {
    holder_.store(mine(), std::memory_order_relaxed);
    depth_ = 1;
    return true;
  }

  World* world_;
  std::string name_;
  Base base_;
  std::atomic<std::uint64_t> holder_{0};
  std::uint64_t depth_ = 0;  // the holder's locks not yet unlocked
};

using RecursiveMutex = BasicRecursiveMutex<Mutex>;
using RecursiveTimedMutex = BasicRecursiveMutex<TimedMutex>;

// A condition variable over any lock, with the shape of the standard
// library's condition_variable_any: a wait takes any BasicLockable `lock`
// (std::unique_lock<TimedMutex>, std::shared_lock<SharedMutex>, a
// RecursiveMutex locked once, ...), releases it while it waits, and takes
// it again before it returns, also when the wait throws.
//
// Built as the standard library builds it: a ConditionVariable and a Mutex
// of its own (both named `name`), which a wait takes before it releases
// `lock` and a notify takes before it notifies, so no notification is lost
// between the two. In simulation each notify is therefore a scheduling
// point, unlike ConditionVariable's, and a wait costs a step more; which
// waiter notify_one wakes, and spurious wakeups, are as for
// ConditionVariable.
class ConditionVariableAny {
 public:
  ConditionVariableAny(World& world, const std::string& name)
      : world_(&world), mutex_(std::make_shared<Mutex>(world, name)), condition_(world, name) {}
  ConditionVariableAny(const ConditionVariableAny&) = delete;
  ConditionVariableAny& operator=(const ConditionVariableAny&) = delete;

  template <class Lock>
  void wait(Lock& lock) {
    static_cast<void>(wait_until(lock, Instant::max()));
  }
  template <class Lock, class Predicate>
  void wait(Lock& lock, Predicate ready) {
    while (!ready()) {
      wait(lock);
    }
  }

  template <class Lock>
  std::cv_status wait_until(Lock& lock, Instant deadline) {
    // The own mutex is kept alive by the wait: a waiter may be the last to
    // use a condition another task destroys once notified.
    const std::shared_ptr<Mutex> own = mutex_;
    std::unique_lock<Mutex> first(*own);
    Relock<Lock> relock(lock);
    // Released before `lock` is taken again, so that a notifier (which
    // holds only the own mutex) never waits for `lock`.
    std::unique_lock<Mutex> held(std::move(first));
    return condition_.wait_until(held, deadline);
  }
  template <class Lock, class Predicate>
  bool wait_until(Lock& lock, Instant deadline, Predicate ready) {
    while (!ready()) {
      if (wait_until(lock, deadline) == std::cv_status::timeout) {
        return ready();
      }
    }
    return true;
  }
  template <class Lock>
  std::cv_status wait_for(Lock& lock, Timeout auto timeout) {
    return wait_until(lock, world_->now() + to_duration(timeout));
  }
  template <class Lock, class Predicate>
  bool wait_for(Lock& lock, Timeout auto timeout, Predicate ready) {
    return wait_until(lock, world_->now() + to_duration(timeout), std::move(ready));
  }
  template <class Lock, class Clock, class Dur>
  std::cv_status wait_until(Lock& lock, const std::chrono::time_point<Clock, Dur>& deadline) {
    return wait_until(lock, to_instant(*world_, deadline, "ConditionVariableAny::wait_until"));
  }
  template <class Lock, class Clock, class Dur, class Predicate>
  bool wait_until(Lock& lock, const std::chrono::time_point<Clock, Dur>& deadline, Predicate ready) {
    return wait_until(lock, to_instant(*world_, deadline, "ConditionVariableAny::wait_until"), std::move(ready));
  }

  // Each takes the own mutex: a scheduling point in simulation.
  void notify_one() {
    std::lock_guard<Mutex> held(*mutex_);
    condition_.notify_one();
  }
  void notify_all() {
    std::lock_guard<Mutex> held(*mutex_);
    condition_.notify_all();
  }

 private:
  // Releases `lock` now and takes it again at the end of the scope. When an
  // exception unwinds the wait, a failure to take it again is swallowed, as
  // the standard library's does, rather than thrown out of a destructor
  // during unwinding.
  template <class Lock>
  struct Relock {
    explicit Relock(Lock& l) : lock(l), unwinding(std::uncaught_exceptions()) { lock.unlock(); }
    ~Relock() noexcept(false) {
      if (std::uncaught_exceptions() == unwinding) {
        lock.lock();
        return;
      }
      try {
        lock.lock();
      } catch (...) {  // NOLINT(bugprone-empty-catch): already unwinding
      }
    }
    Relock(const Relock&) = delete;
    Relock& operator=(const Relock&) = delete;
    Lock& lock;
    int unwinding;
  };

  World* world_;
  std::shared_ptr<Mutex> mutex_;
  ConditionVariable condition_;
};

// An atomic value with the standard library's std::atomic operations, for
// the same types: any trivially copyable T (integers, bool, pointers,
// enums, small structs), with fetch_add/fetch_sub for integers, pointers and
// floating point, and the bitwise ones for integers.
//
// Every operation is sequentially consistent. The memory_order arguments of
// std::atomic are accepted, so that ported code compiles unchanged, and
// ignored: on a real World each operation uses memory_order_seq_cst, and the
// simulator explores interleavings of sequentially consistent operations,
// not the reorderings a weaker order allows (a bug that needs one is not
// found here). In simulation each operation is a scheduling point taken
// before it (World::atomic_point), so the interleavings of a read-modify-write
// split into a load and a store are explored, while a fetch_add happens at
// one point. compare_exchange_weak never fails spuriously. After each
// operation the World hears whether it changed the value
// (World::atomic_accessed): a simulated World parks a task that spins on
// values nobody changes until one changes, as a blocked task waits.
template <class T>
class Atomic {
  static_assert(std::is_trivially_copyable_v<T> && std::is_copy_constructible_v<T> &&
                    std::is_move_constructible_v<T> && std::is_copy_assignable_v<T> &&
                    std::is_move_assignable_v<T>,
                "Atomic<T> holds a trivially copyable type, as std::atomic<T> does");
  static constexpr bool integral = std::is_integral_v<T> && !std::is_same_v<T, bool>;
  static constexpr bool addable = integral || std::is_pointer_v<T> || std::is_floating_point_v<T>;
  static constexpr bool countable = integral || std::is_pointer_v<T>;
  using Difference = std::conditional_t<std::is_pointer_v<T>, std::ptrdiff_t, T>;
  static constexpr std::memory_order seq_cst = std::memory_order_seq_cst;

 public:
  static constexpr bool is_always_lock_free = std::atomic<T>::is_always_lock_free;

  explicit Atomic(World& world, T initial = T{}) noexcept : world_(&world), value_(initial) {}
  // Named: a deadlock in wait() names it ("wait on condition 'atomic NAME'").
  Atomic(World& world, T initial, std::string name) : world_(&world), name_(std::move(name)), value_(initial) {}
  Atomic(const Atomic&) = delete;
  Atomic& operator=(const Atomic&) = delete;
  ~Atomic() { delete waiting_.load(std::memory_order_acquire); }

  bool is_lock_free() const noexcept { return value_.is_lock_free(); }

  T load(std::memory_order /*order*/ = seq_cst) const {
    world_->atomic_point();
    return accessed(value_.load(), false);
  }
  void store(T desired, std::memory_order /*order*/ = seq_cst) { static_cast<void>(exchange(desired)); }
  T exchange(T desired, std::memory_order /*order*/ = seq_cst) {
    world_->atomic_point();
    const T old = value_.exchange(desired);
    return accessed(old, !same(old, desired));
  }
  // On failure, `expected` receives the value found.
  bool compare_exchange_strong(T& expected, T desired, std::memory_order /*order*/ = seq_cst) {
    world_->atomic_point();
    const T wanted = expected;
    const bool exchanged = value_.compare_exchange_strong(expected, desired);
    accessed(expected, exchanged && !same(wanted, desired));
    return exchanged;
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order /*success*/,
                               std::memory_order /*failure*/) {
    return compare_exchange_strong(expected, desired);
  }
  // The same as compare_exchange_strong: ported loops work unchanged.
  bool compare_exchange_weak(T& expected, T desired, std::memory_order /*order*/ = seq_cst) {
    return compare_exchange_strong(expected, desired);
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order /*success*/, std::memory_order /*failure*/) {
    return compare_exchange_strong(expected, desired);
  }

  T fetch_add(Difference delta, std::memory_order /*order*/ = seq_cst)
    requires addable
  {
    world_->atomic_point();
    return accessed(value_.fetch_add(delta), delta != Difference{});
  }
  T fetch_sub(Difference delta, std::memory_order /*order*/ = seq_cst)
    requires addable
  {
    world_->atomic_point();
    return accessed(value_.fetch_sub(delta), delta != Difference{});
  }
  T fetch_and(T mask, std::memory_order /*order*/ = seq_cst)
    requires integral
  {
    world_->atomic_point();
    const T old = value_.fetch_and(mask);
    return accessed(old, (old & mask) != old);
  }
  T fetch_or(T mask, std::memory_order /*order*/ = seq_cst)
    requires integral
  {
    world_->atomic_point();
    const T old = value_.fetch_or(mask);
    return accessed(old, (old | mask) != old);
  }
  T fetch_xor(T mask, std::memory_order /*order*/ = seq_cst)
    requires integral
  {
    world_->atomic_point();
    return accessed(value_.fetch_xor(mask), mask != T{});
  }

  // C++20's waiting: wait(old) blocks until the value differs from `old`
  // (compared bytewise, as std::atomic compares), checking again each time
  // a notify_one or notify_all wakes it, so a change that nobody notifies
  // leaves it waiting, as it would on threads. Waiting and notifying use a
  // Mutex and a ConditionVariable named "atomic NAME" ("atomic wait" for an
  // Atomic without a name), made at the first wait or notify: in simulation
  // a notify is then a scheduling point (it takes that mutex), and a waiter
  // never notified is a deadlock reported as waiting on that condition.
  void wait(T old, std::memory_order /*order*/ = seq_cst) const {
    Waiting& w = waiting();
    std::unique_lock<Mutex> held(w.mutex);
    while (same(load(), old)) {
      w.changed.wait(held);
    }
  }
  void notify_one() { notify(false); }
  void notify_all() { notify(true); }

  // The operators of std::atomic, each one operation (one scheduling point).
  operator T() const { return load(); }  // NOLINT(google-explicit-constructor): as std::atomic
  T operator=(T desired) {
    store(desired);
    return desired;
  }
  T operator++()
    requires countable
  {
    return fetch_add(1) + 1;
  }
  T operator++(int)
    requires countable
  {
    return fetch_add(1);
  }
  T operator--()
    requires countable
  {
    return fetch_sub(1) - 1;
  }
  T operator--(int)
    requires countable
  {
    return fetch_sub(1);
  }
  T operator+=(Difference delta)
    requires addable
  {
    return fetch_add(delta) + delta;
  }
  T operator-=(Difference delta)
    requires addable
  {
    return fetch_sub(delta) - delta;
  }
  T operator&=(T mask)
    requires integral
  {
    return fetch_and(mask) & mask;
  }
  T operator|=(T mask)
    requires integral
  {
    return fetch_or(mask) | mask;
  }
  T operator^=(T mask)
    requires integral
  {
    return fetch_xor(mask) ^ mask;
  }

 private:
  // Tells the World whether the operation changed the value (see
  // World::atomic_accessed) and passes `old` on.
  T accessed(T old, bool changed) const {
    world_->atomic_accessed(this, changed);
    return old;
  }
  static bool same(const T& a, const T& b) noexcept { return std::memcmp(&a, &b, sizeof(T)) == 0; }

  struct Waiting {
    Waiting(World& world, const std::string& name) : mutex(world, name), changed(world, name) {}
    Mutex mutex;
    ConditionVariable changed;
  };
  // Made at first use; of two threads making it at once, one's is kept.
  Waiting& waiting() const {
    Waiting* made = waiting_.load(std::memory_order_acquire);
    if (made == nullptr) {
      auto fresh = std::make_unique<Waiting>(*world_, name_.empty() ? "atomic wait" : "atomic " + name_);
      if (waiting_.compare_exchange_strong(made, fresh.get(), std::memory_order_acq_rel)) {
        made = fresh.release();
      }
    }
    return *made;
  }
  // Taking the mutex orders the notify after a waiter's check: one that
  // checked before the change is waiting by now, and is woken.
  void notify(bool all) {
    Waiting& w = waiting();
    { std::lock_guard<Mutex> held(w.mutex); }
    if (all) {
      w.changed.notify_all();
    } else {
      w.changed.notify_one();
    }
  }

  World* world_;
  std::string name_;  // empty: unnamed
  std::atomic<T> value_;
  mutable std::atomic<Waiting*> waiting_{nullptr};  // owned: deleted with the Atomic
};

// A flag with the standard library's atomic_flag shape, clear at
// construction (as C++20's atomic_flag is): test_and_set, clear, test, and
// C++20's wait and notify. An Atomic<bool>: the same scheduling points, and
// a spinlock spinning on test_and_set() is parked as any spin on an Atomic.
class AtomicFlag {
  static constexpr std::memory_order seq_cst = std::memory_order_seq_cst;

 public:
  explicit AtomicFlag(World& world) : flag_(world, false) {}
  AtomicFlag(World& world, std::string name) : flag_(world, false, std::move(name)) {}

  bool test_and_set(std::memory_order order = seq_cst) { return flag_.exchange(true, order); }
  void clear(std::memory_order order = seq_cst) { flag_.store(false, order); }
  bool test(std::memory_order order = seq_cst) const { return flag_.load(order); }
  void wait(bool old, std::memory_order order = seq_cst) const { flag_.wait(old, order); }
  void notify_one() { flag_.notify_one(); }
  void notify_all() { flag_.notify_all(); }

 private:
  Atomic<bool> flag_;
};

// A task's id, as the standard library's thread::id: see Thread::id.
class ThreadId {
 public:
  constexpr ThreadId() noexcept = default;
  constexpr explicit ThreadId(std::uint64_t value) noexcept : value_(value) {}
  constexpr std::uint64_t value() const noexcept { return value_; }
  friend constexpr bool operator==(ThreadId, ThreadId) noexcept = default;
  friend constexpr auto operator<=>(ThreadId, ThreadId) noexcept = default;
  template <class Stream>
  friend Stream& operator<<(Stream& out, ThreadId id) {
    out << id.value_;
    return out;
  }

 private:
  std::uint64_t value_ = 0;  // 0: no task
};

// What the standard library's this_thread offers, for the calling task of
// a World: get_id, yield, sleep_for and sleep_until, taking the World
// first. In simulation a sleep waits virtual time and a yield is a
// scheduling point.
namespace this_task {
inline ThreadId get_id(const World& world) noexcept { return ThreadId(world.current_task_id()); }
inline void yield(World& world) { world.yield(); }
void sleep_for(World& world, Timeout auto duration) { world.sleep_for(to_duration(duration)); }
inline void sleep_until(World& world, Instant deadline) { world.sleep_until(deadline); }
template <class Clock, class Dur>
void sleep_until(World& world, const std::chrono::time_point<Clock, Dur>& deadline) {
  world.sleep_until(to_instant(world, deadline, "this_task::sleep_until"));
}
}  // namespace this_task

// A task that can be joined, with the shape of the standard library's
// thread: constructing one starts the task (World::spawn_joinable), join()
// blocks until its body has returned, detach() lets it run on unwatched.
//
// Destroying (or assigning over) a Thread that is still joinable is a
// failure, as it is for the standard library's thread, which terminates the
// program: join() or detach() first. The one exception is a World that is stopping(): in a
// simulated run's teardown a task can be ended while it waits in join(),
// and its handle is then detached. join() or detach() on a Thread that is
// not joinable, and a task's join() of its own Thread, throw
// std::system_error with the standard library's codes, as its thread does.
class Thread {
 public:
  // The id of a task (see World::current_task_id), as the standard
  // library's thread::id: a default one is no task's, ids compare, hash
  // (std::hash<seedpool::ThreadId>) and print.
  using id = ThreadId;

  Thread() noexcept = default;
  // Starts `body` as a task named `name`.
  Thread(World& world, std::string name, std::function<void()> body)
      : world_(&world), name_(name), task_(world.spawn_joinable(std::move(name), std::move(body))) {}
  // Starts f(args...), as the standard library's thread does: `f` and
  // `args` are copied or moved into the task (decayed; std::ref passes a
  // reference), which calls f with them as rvalues. Move-only arguments work.
  template <class F, class... Args>
    requires(sizeof...(Args) > 0 && std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>)
  Thread(World& world, std::string name, F&& f, Args&&... args)
      : Thread(world, std::move(name),
               [bound = std::make_shared<std::tuple<std::decay_t<F>, std::decay_t<Args>...>>(
                    std::forward<F>(f), std::forward<Args>(args)...)] {
                 std::apply([](auto&& fn, auto&&... in) { std::invoke(std::move(fn), std::move(in)...); },
                            std::move(*bound));
               }) {}
  Thread(Thread&& other) noexcept = default;
  Thread& operator=(Thread&& other) noexcept {
    require_not_joinable();
    world_ = other.world_;
    name_ = std::move(other.name_);
    task_ = std::move(other.task_);
    return *this;
  }
  ~Thread() { require_not_joinable(); }

  bool joinable() const noexcept { return task_ != nullptr; }

  // The task's id while joinable(); a default id afterwards.
  id get_id() const noexcept { return task_ == nullptr ? id() : id(task_->task_id()); }

  // Blocks until the task's body has returned; not joinable afterwards. In
  // simulation the caller is not runnable until then. Throws
  // std::system_error: invalid_argument when not joinable() (joined or
  // detached already), resource_deadlock_would_occur when called by the
  // task itself.
  void join() {
    if (!joinable()) {
      throw std::system_error(std::make_error_code(std::errc::invalid_argument), "Thread::join");
    }
    if (const std::uint64_t task = task_->task_id(); task != 0 && task == world_->current_task_id()) {
      throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur), "Thread::join");
    }
    task_->join();
    task_.reset();
  }

  // Lets the task run on; it can no longer be joined. Throws
  // std::system_error (invalid_argument) when not joinable().
  void detach() {
    if (!joinable()) {
      throw std::system_error(std::make_error_code(std::errc::invalid_argument), "Thread::detach");
    }
    task_.reset();
  }

  const std::string& name() const noexcept { return name_; }

 private:
  void require_not_joinable() noexcept {
    if (task_ == nullptr) {
      return;
    }
    if (world_->stopping()) {
      task_.reset();
      return;
    }
    const std::string why = "Thread '" + name_ + "' destroyed while joinable: join() or detach() it first";
    SEEDPOOL_ASSERT_MSG(task_ == nullptr, why.c_str());
  }

  World* world_ = nullptr;
  std::string name_;
  std::unique_ptr<JoinableTask> task_;
};

// A single-use countdown with the standard library's latch shape: wait()
// blocks until count_down has brought the count from `expected` to zero.
// Each operation is one scheduling point in simulation (it takes the latch's
// mutex); a task in wait() is not runnable until the count reaches zero.
class Latch {
 public:
  // Requires expected >= 0. `name` names its mutex ("NAME") and its
  // condition ("NAME") in deadlock reports.
  Latch(World& world, const std::string& name, std::ptrdiff_t expected)
      : mutex_(world, name), zero_(world, name), count_(expected) {
    SEEDPOOL_ASSERT_MSG(expected >= 0, "Latch needs a count >= 0");
  }
  Latch(const Latch&) = delete;
  Latch& operator=(const Latch&) = delete;

  // Lowers the count by `n`. Requires 0 <= n <= the count.
  void count_down(std::ptrdiff_t n = 1) {
    std::lock_guard<Mutex> held(mutex_);
    lower(n);
  }

  // Whether the count has reached zero.
  bool try_wait() {
    std::lock_guard<Mutex> held(mutex_);
    return count_ == 0;
  }

  // Blocks until the count reaches zero.
  void wait() {
    std::unique_lock<Mutex> held(mutex_);
    zero_.wait(held, [this] { return count_ == 0; });
  }

  // count_down(n), then wait(), as one operation.
  void arrive_and_wait(std::ptrdiff_t n = 1) {
    std::unique_lock<Mutex> held(mutex_);
    lower(n);
    zero_.wait(held, [this] { return count_ == 0; });
  }

 private:
  void lower(std::ptrdiff_t n) {
    SEEDPOOL_ASSERT_MSG(n >= 0, "Latch::count_down by a negative amount");
    SEEDPOOL_ASSERT_MSG(n <= count_, "Latch::count_down below zero");
    count_ -= n;
    if (count_ == 0 && n > 0) {
      zero_.notify_all();
    }
  }

  Mutex mutex_;
  ConditionVariable zero_;
  std::ptrdiff_t count_;
};

// A counting semaphore with the standard library's counting_semaphore shape
// (BinarySemaphore is its binary_semaphore):
// acquire() waits until the count is above zero and lowers it, release(n)
// raises it by n. Each operation is one scheduling point in simulation (it
// takes the semaphore's mutex); a task in acquire() is not runnable until a
// release. Releasing past max() fails the run (undefined behaviour in the
// standard library); try_acquire never fails spuriously.
template <std::ptrdiff_t LeastMaxValue = std::numeric_limits<std::ptrdiff_t>::max()>
class CountingSemaphore {
  static_assert(LeastMaxValue >= 0, "CountingSemaphore needs a max() >= 0");

 public:
  static constexpr std::ptrdiff_t max() noexcept { return LeastMaxValue; }

  // Requires 0 <= desired <= max(). `name` names its mutex and its
  // condition in deadlock reports.
  CountingSemaphore(World& world, const std::string& name, std::ptrdiff_t desired)
      : world_(&world), mutex_(world, name), positive_(world, name), count_(desired) {
    SEEDPOOL_ASSERT_MSG(desired >= 0 && desired <= max(), "CountingSemaphore needs 0 <= desired <= max()");
  }
  CountingSemaphore(const CountingSemaphore&) = delete;
  CountingSemaphore& operator=(const CountingSemaphore&) = delete;

  // Raises the count by `update`. Requires 0 <= update <= max() - the count.
  void release(std::ptrdiff_t update = 1) {
    std::lock_guard<Mutex> held(mutex_);
    SEEDPOOL_ASSERT_MSG(update >= 0, "CountingSemaphore::release by a negative amount");
    SEEDPOOL_ASSERT_MSG(update <= max() - count_, "CountingSemaphore::release past max()");
    count_ += update;
    if (update == 1) {
      positive_.notify_one();
    } else if (update > 1) {
      positive_.notify_all();
    }
  }

  // Waits until the count is above zero, then lowers it by one.
  void acquire() {
    std::unique_lock<Mutex> held(mutex_);
    positive_.wait(held, [this] { return count_ > 0; });
    --count_;
  }

  // Lowers the count by one if it is above zero; never waits.
  bool try_acquire() {
    std::lock_guard<Mutex> held(mutex_);
    return take_one();
  }

  // As acquire(), but gives up at `deadline` of the World's clock.
  bool try_acquire_until(Instant deadline) {
    std::unique_lock<Mutex> held(mutex_);
    return positive_.wait_until(held, deadline, [this] { return count_ > 0; }) && take_one();
  }
  bool try_acquire_for(Timeout auto timeout) { return try_acquire_until(world_->now() + to_duration(timeout)); }
  // With a std::chrono time point (see to_instant).
  template <class Clock, class Dur>
  bool try_acquire_until(const std::chrono::time_point<Clock, Dur>& deadline) {
    return try_acquire_until(to_instant(*world_, deadline, "CountingSemaphore::try_acquire_until"));
  }

 private:
  bool take_one() {
    if (count_ == 0) {
      return false;
    }
    --count_;
    return true;
  }

  World* world_;
  Mutex mutex_;
  ConditionVariable positive_;
  std::ptrdiff_t count_;
};

using BinarySemaphore = CountingSemaphore<1>;

// A reader-writer lock with the standard library's shared_mutex shape:
// lock()/unlock() for one writer, lock_shared()/unlock_shared() for any
// number of readers; std::lock_guard, std::unique_lock and std::shared_lock
// work on it as they are. A writer waits until nobody holds it; a reader
// waits while a writer holds it or waits for it, so that a stream of readers
// cannot starve a writer. Each operation is one scheduling point in
// simulation, and a waiting task is not runnable until an unlock lets it in.
//
// Taking it again while holding it is undefined behaviour in the standard
// library. Here it waits forever — a writer for itself, or a reader behind a
// writer that waits for the reader, as on writer-preferring implementations
// — and the deadlock report names "NAME (writer)" or "NAME (readers)".
// Unlocking it in a mode nobody holds it in fails the run.
//
// It has the timed tries of the standard library's shared_timed_mutex as
// well (SharedTimedMutex is the same type): try_lock_for/until and
// try_lock_shared_for/until wait at most that long on the World's clock. A
// writer that gives up stops holding readers back.
class SharedMutex {
 public:
  SharedMutex(World& world, const std::string& name)
      : world_(&world), name_(name), mutex_(world, name), writer_turn_(world, name + " (writer)"),
        readers_turn_(world, name + " (readers)") {}
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void lock() {
    std::unique_lock<Mutex> held(mutex_);
    ++writers_waiting_;
    writer_turn_.wait(held, [this] { return !writer_ && readers_ == 0; });
    --writers_waiting_;
    writer_ = true;
  }

  bool try_lock() {
    std::lock_guard<Mutex> held(mutex_);
    if (writer_ || readers_ > 0) {
      return false;
    }
    writer_ = true;
    return true;
  }

  // As lock(), but gives up at `deadline` and returns false.
  bool try_lock_until(Instant deadline) {
    std::unique_lock<Mutex> held(mutex_);
    ++writers_waiting_;
    const bool free = writer_turn_.wait_until(held, deadline, [this] { return !writer_ && readers_ == 0; });
    --writers_waiting_;
    if (!free) {
      if (!writer_ && writers_waiting_ == 0) {
        readers_turn_.notify_all();  // the readers it held back
      }
      return false;
    }
    writer_ = true;
    return true;
  }
  bool try_lock_for(Timeout auto timeout) { return try_lock_until(world_->now() + to_duration(timeout)); }
  template <class Clock, class Dur>
  bool try_lock_until(const std::chrono::time_point<Clock, Dur>& deadline) {
    return try_lock_until(to_instant(*world_, deadline, "SharedMutex::try_lock_until"));
  }

  // Requires a writer to hold it.
  void unlock() {
    std::lock_guard<Mutex> held(mutex_);
    const std::string why = "SharedMutex '" + name_ + "' unlocked while no writer holds it";
    SEEDPOOL_ASSERT_MSG(writer_, why.c_str());
    writer_ = false;
    let_next_in();
  }

  void lock_shared() {
    std::unique_lock<Mutex> held(mutex_);
    readers_turn_.wait(held, [this] { return !writer_ && writers_waiting_ == 0; });
    ++readers_;
  }

  bool try_lock_shared() {
    std::lock_guard<Mutex> held(mutex_);
    if (writer_ || writers_waiting_ > 0) {
      return false;
    }
    ++readers_;
    return true;
  }

  // As lock_shared(), but gives up at `deadline` and returns false.
  bool try_lock_shared_until(Instant deadline) {
    std::unique_lock<Mutex> held(mutex_);
    if (!readers_turn_.wait_until(held, deadline, [this] { return !writer_ && writers_waiting_ == 0; })) {
      return false;
    }
    ++readers_;
    return true;
  }
  bool try_lock_shared_for(Timeout auto timeout) {
    return try_lock_shared_until(world_->now() + to_duration(timeout));
  }
  template <class Clock, class Dur>
  bool try_lock_shared_until(const std::chrono::time_point<Clock, Dur>& deadline) {
    return try_lock_shared_until(to_instant(*world_, deadline, "SharedMutex::try_lock_shared_until"));
  }

  // Requires a reader to hold it.
  void unlock_shared() {
    std::lock_guard<Mutex> held(mutex_);
    const std::string why = "SharedMutex '" + name_ + "' unlock_shared while no reader holds it";
    SEEDPOOL_ASSERT_MSG(readers_ > 0, why.c_str());
    --readers_;
    if (readers_ == 0) {
      let_next_in();
    }
  }

 private:
  // With the lock free: a waiting writer first, else every waiting reader.
  void let_next_in() {
    if (writers_waiting_ > 0) {
      writer_turn_.notify_one();
    } else {
      readers_turn_.notify_all();
    }
  }

  World* world_;
  std::string name_;
  Mutex mutex_;
  ConditionVariable writer_turn_;
  ConditionVariable readers_turn_;
  bool writer_ = false;
  std::ptrdiff_t readers_ = 0;
  std::ptrdiff_t writers_waiting_ = 0;
};

using SharedTimedMutex = SharedMutex;

// A flag for call_once, with the standard library's once_flag shape: of
// every call_once on the same flag, one runs its function; the others wait
// until it has returned, then return without running theirs. A function
// that throws lets a later call_once try again, as in the standard library.
class OnceFlag {
 public:
  // `name` names its mutex and its condition in deadlock reports.
  OnceFlag(World& world, const std::string& name) : mutex_(world, name), settled_(world, name) {}
  OnceFlag(const OnceFlag&) = delete;
  OnceFlag& operator=(const OnceFlag&) = delete;

 private:
  enum class State { idle, running, done };
  template <class F, class... Args>
  friend void call_once(OnceFlag& flag, F&& f, Args&&... args);

  // Whether the caller is to run the function: it waits while another runs
  // one, and claims the flag when none has completed.
  bool claim() {
    std::unique_lock<Mutex> held(mutex_);
    settled_.wait(held, [this] { return state_ != State::running; });
    if (state_ == State::done) {
      return false;
    }
    state_ = State::running;
    return true;
  }

  void settle(State to) {
    std::lock_guard<Mutex> held(mutex_);
    state_ = to;
    settled_.notify_all();
  }

  Mutex mutex_;
  ConditionVariable settled_;
  State state_ = State::idle;
};

// Runs f(args...) unless a call_once on `flag` has already run it to its
// end; waits while another runs. In simulation, taking the flag is a
// scheduling point, and so is settling it after the function.
template <class F, class... Args>
void call_once(OnceFlag& flag, F&& f, Args&&... args) {
  if (!flag.claim()) {
    return;
  }
  try {
    std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
  } catch (...) {
    flag.settle(OnceFlag::State::idle);
    throw;
  }
  flag.settle(OnceFlag::State::done);
}

namespace detail {
struct NoCompletion {
  void operator()() noexcept {}
};
}  // namespace detail

// A reusable barrier with the standard library's barrier shape: a
// phase ends when `expected` arrivals have come; then the completion
// function runs once, on the task that arrived last, before the phase's
// waiters are let go, and the next phase begins with the expected count.
// arrive_and_drop() arrives and lowers the expected count of the phases
// after. Each operation is one scheduling point in simulation; a task in
// wait() is not runnable until its phase ends.
template <class CompletionFunction = detail::NoCompletion>
class Barrier {
 public:
  // What arrive() returns, for wait(): the phase it arrived in.
  class ArrivalToken {
   public:
    ArrivalToken(ArrivalToken&&) noexcept = default;
    ArrivalToken& operator=(ArrivalToken&&) noexcept = default;

   private:
    friend class Barrier;
    explicit ArrivalToken(std::uint64_t phase) noexcept : phase_(phase) {}
    std::uint64_t phase_;
  };

  // Requires expected >= 0. `name` names its mutex and its condition in
  // deadlock reports.
  Barrier(World& world, const std::string& name, std::ptrdiff_t expected,
          CompletionFunction completion = CompletionFunction())
      : mutex_(world, name), phase_done_(world, name), expected_(expected), pending_(expected),
        completion_(std::move(completion)) {
    SEEDPOOL_ASSERT_MSG(expected >= 0, "Barrier needs an expected count >= 0");
  }
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  // Arrives `n` times in the current phase. Requires 0 < n <= the arrivals
  // the phase still waits for.
  [[nodiscard]] ArrivalToken arrive(std::ptrdiff_t n = 1) {
    std::lock_guard<Mutex> held(mutex_);
    const std::uint64_t phase = phase_;
    arrive_locked(n);
    return ArrivalToken(phase);
  }

  // Waits until the phase `token` arrived in has ended.
  void wait(ArrivalToken&& token) {
    std::unique_lock<Mutex> held(mutex_);
    phase_done_.wait(held, [this, phase = token.phase_] { return phase_ != phase; });
  }

  // arrive(), then wait(), as one operation.
  void arrive_and_wait() {
    std::unique_lock<Mutex> held(mutex_);
    const std::uint64_t phase = phase_;
    arrive_locked(1);
    phase_done_.wait(held, [this, phase] { return phase_ != phase; });
  }

  // Arrives once, and lowers the expected count of the next phases by one.
  void arrive_and_drop() {
    std::lock_guard<Mutex> held(mutex_);
    SEEDPOOL_ASSERT_MSG(expected_ > 0, "Barrier::arrive_and_drop with no arrival expected");
    --expected_;
    arrive_locked(1);
  }

 private:
  void arrive_locked(std::ptrdiff_t n) {
    SEEDPOOL_ASSERT_MSG(n > 0, "Barrier::arrive needs a count > 0");
    SEEDPOOL_ASSERT_MSG(n <= pending_, "Barrier::arrive more times than the phase waits for");
    pending_ -= n;
    if (pending_ == 0) {
      completion_();
      ++phase_;
      pending_ = expected_;
      phase_done_.notify_all();
    }
  }

  Mutex mutex_;
  ConditionVariable phase_done_;
  std::ptrdiff_t expected_;  // arrivals each phase waits for
  std::ptrdiff_t pending_;   // arrivals the current phase still waits for
  std::uint64_t phase_ = 0;
  CompletionFunction completion_;
};

// A value, or an exception, handed once from one task to another, with the
// standard library's promise and future shapes: Promise<T>::get_future()
// gives the one Future<T> that get() or wait() for what set_value or
// set_exception stores. T may be void; not a reference. Misuse throws the
// standard library's std::future_error, as there: a second get_future
// (future_already_retrieved), a second set (promise_already_satisfied), a
// moved-from Promise or an invalid Future (no_state). A Promise destroyed
// (or assigned over) before it is set stores broken_promise for its
// future. Each wait, get and set takes the shared state's Mutex: one
// scheduling point in simulation; a task in get() or wait() is not
// runnable until the value comes, and a future nobody sets is a deadlock
// naming the promise.
template <class T>
class Future;

namespace detail {
template <class T>
struct FutureState {
  static_assert(!std::is_reference_v<T>, "Promise<T&> is not supported: pass a pointer");
  using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

  FutureState(World& w, const std::string& name) : world(w), mutex(w, name), ready(w, name) {}

  void store(std::optional<Stored> v, std::exception_ptr e) {
    std::lock_guard<Mutex> held(mutex);
    if (set) {
      throw std::future_error(std::future_errc::promise_already_satisfied);
    }
    value = std::move(v);
    error = std::move(e);
    set = true;
    ready.notify_all();
  }

  World& world;
  Mutex mutex;
  ConditionVariable ready;
  std::optional<Stored> value;  // under mutex
  std::exception_ptr error;     // under mutex
  bool set = false;             // under mutex
  bool retrieved = false;       // get_future() was called: by the promise's holder only
};
}  // namespace detail

template <class T>
class Promise {
  using State = detail::FutureState<T>;

 public:
  // `name` names the state's mutex and condition in deadlock reports.
  Promise(World& world, const std::string& name) : state_(std::make_shared<State>(world, name)) {}
  Promise(Promise&&) noexcept = default;
  Promise& operator=(Promise&& other) noexcept {
    abandon();
    state_ = std::move(other.state_);
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  ~Promise() { abandon(); }

  Future<T> get_future() {
    State& s = state();
    if (s.retrieved) {
      throw std::future_error(std::future_errc::future_already_retrieved);
    }
    s.retrieved = true;
    return Future<T>(state_);
  }

  void set_value(const typename State::Stored& value)
    requires(!std::is_void_v<T>)
  {
    state().store(value, nullptr);
  }
  void set_value(typename State::Stored&& value)
    requires(!std::is_void_v<T>)
  {
    state().store(std::move(value), nullptr);
  }
  void set_value()
    requires std::is_void_v<T>
  {
    state().store(std::monostate{}, nullptr);
  }
  void set_exception(std::exception_ptr error) { state().store(std::nullopt, std::move(error)); }

 private:
  State& state() {
    if (state_ == nullptr) {
      throw std::future_error(std::future_errc::no_state);
    }
    return *state_;
  }
  // A promise given up unset leaves broken_promise for its future.
  void abandon() noexcept {
    if (state_ == nullptr) {
      return;
    }
    try {
      std::lock_guard<Mutex> held(state_->mutex);
      if (!state_->set) {
        state_->error = std::make_exception_ptr(std::future_error(std::future_errc::broken_promise));
        state_->set = true;
        state_->ready.notify_all();
      }
    } catch (...) {
      // Only a simulated run's teardown, which ends a task at a lock it
      // cannot take: the run is over, and nobody reads the state any more.
    }
    state_.reset();
  }

  std::shared_ptr<State> state_;
};

namespace detail {
// The task of an async() call. Held by the futures of its result only, so
// that the last of them to let go (get() of a Future, or the destruction of
// the last future) joins it, as the standard library's async future blocks
// until its task is done.
class AsyncTask {
 public:
  explicit AsyncTask(Thread task) : task_(std::move(task)) {}
  AsyncTask(const AsyncTask&) = delete;
  AsyncTask& operator=(const AsyncTask&) = delete;
  ~AsyncTask() {
    try {
      task_.join();
    } catch (...) {
      // Only a simulated run's teardown, which ends the joining task in its
      // join: the run is over, and the task is let go.
      if (task_.joinable()) {
        task_.detach();
      }
    }
  }

 private:
  Thread task_;
};

// What Future and SharedFuture share: the state, the waits, and the task of
// an async() call.
template <class T>
class FutureBase {
 protected:
  using State = FutureState<T>;

 public:
  bool valid() const noexcept { return state_ != nullptr; }

  void wait() const { static_cast<void>(wait_until(Instant::max())); }
  // ready or timeout (never deferred): at `deadline` of the World's clock,
  // or after `timeout` (a Duration or a std::chrono duration).
  std::future_status wait_until(Instant deadline) const {
    State& s = state();
    std::unique_lock<Mutex> held(s.mutex);
    return s.ready.wait_until(held, deadline, [&s] { return s.set; }) ? std::future_status::ready
                                                                     : std::future_status::timeout;
  }
  std::future_status wait_for(Timeout auto timeout) const {
    return wait_until(state().world.now() + to_duration(timeout));
  }
  // With a std::chrono time point (see to_instant).
  template <class Clock, class Dur>
  std::future_status wait_until(const std::chrono::time_point<Clock, Dur>& deadline) const {
    return wait_until(to_instant(state().world, deadline, "Future::wait_until"));
  }

 protected:
  FutureBase() noexcept = default;
  FutureBase(std::shared_ptr<State> state, std::shared_ptr<AsyncTask> task) noexcept
      : state_(std::move(state)), task_(std::move(task)) {}

  State& state() const {
    if (state_ == nullptr) {
      throw std::future_error(std::future_errc::no_state);
    }
    return *state_;
  }
  std::shared_ptr<State> state_;
  std::shared_ptr<AsyncTask> task_;  // an async() call's, else null
};
}  // namespace detail

template <class T>
class SharedFuture;

template <class T>
class Future : public detail::FutureBase<T> {
  using Base = detail::FutureBase<T>;
  using typename Base::State;

 public:
  Future() noexcept = default;
  Future(Future&&) noexcept = default;
  Future& operator=(Future&&) noexcept = default;
  Future(const Future&) = delete;
  Future& operator=(const Future&) = delete;

  // Waits for the value, then returns it (or throws the stored exception);
  // the future is no longer valid() afterwards. Of an async() call's future,
  // also joins its task.
  T get() {
    this->wait();
    const std::shared_ptr<State> s = std::move(this->state_);
    this->task_.reset();
    std::lock_guard<Mutex> held(s->mutex);
    if (s->error) {
      std::rethrow_exception(s->error);
    }
    if constexpr (!std::is_void_v<T>) {
      return std::move(*s->value);
    }
  }

  // A SharedFuture of the same state; this one is no longer valid().
  SharedFuture<T> share() noexcept { return SharedFuture<T>(std::move(*this)); }

 private:
  friend class Promise<T>;
  friend class SharedFuture<T>;
  template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
  friend Future<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>> async(World& world, std::string name,
                                                                                   F&& f, Args&&... args);
  explicit Future(std::shared_ptr<State> state) noexcept : Base(std::move(state), nullptr) {}
};

// The standard library's shared_future: copies share one state, each may
// wait, and get() returns the value by const reference (or throws the
// stored exception) as often as asked. Made by Future::share().
template <class T>
class SharedFuture : public detail::FutureBase<T> {
  using Base = detail::FutureBase<T>;

 public:
  SharedFuture() noexcept = default;
  SharedFuture(Future<T>&& future) noexcept  // NOLINT(google-explicit-constructor): as std::shared_future
      : Base(std::move(future.state_), std::move(future.task_)) {}

  std::conditional_t<std::is_void_v<T>, void, const typename Base::State::Stored&> get() const {
    this->wait();
    typename Base::State& s = this->state();
    std::lock_guard<Mutex> held(s.mutex);
    if (s.error) {
      std::rethrow_exception(s.error);
    }
    if constexpr (!std::is_void_v<T>) {
      return *s.value;  // set once, never changed again
    }
  }
};

// The standard library's async with launch::async: runs f(args...) (copied
// or moved in, as Thread takes them) as a task named `name`, and returns the
// Future of its result or of the exception it throws. Its task is joined
// when the last future of the result lets go of it, so a future destroyed
// unread waits for the task, as there. There is no deferred launch.
template <class F, class... Args>
  requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
Future<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>> async(World& world, std::string name, F&& f,
                                                                          Args&&... args) {
  using R = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;
  auto promise = std::make_shared<Promise<R>>(world, name);
  Future<R> future = promise->get_future();
  Thread task(
      world, name,
      [promise](auto&& fn, auto&&... in) {
        try {
          if constexpr (std::is_void_v<R>) {
            std::invoke(std::move(fn), std::move(in)...);
            promise->set_value();
          } else {
            promise->set_value(std::invoke(std::move(fn), std::move(in)...));
          }
        } catch (...) {
          promise->set_exception(std::current_exception());
        }
      },
      std::forward<F>(f), std::forward<Args>(args)...);
  future.task_ = std::make_shared<detail::AsyncTask>(std::move(task));
  return future;
}

}  // namespace seedpool

template <>
struct std::hash<seedpool::ThreadId> {
  std::size_t operator()(seedpool::ThreadId id) const noexcept { return std::hash<std::uint64_t>()(id.value()); }
};
