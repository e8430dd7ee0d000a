#pragma once

// SimWorld: the simulated World. Every task is a fiber on one OS thread; a
// task runs until a scheduling point (channel send or receive, sleep, spawn,
// yield, process I/O, an operation of <seedpool/core/sync.hpp>), then the
// strategy picks the next runnable task. Virtual time advances only when no
// task can run, straight to the earliest timer.
// Every nondeterministic choice comes from one decision stream, so a run is
// reproduced exactly from its seed or from its recorded decision list.

#include <seedpool/core/process.hpp>
#include <seedpool/core/world.hpp>
#include <seedpool/sim/decision.hpp>
#include <seedpool/sim/invariant.hpp>
#include <seedpool/sim/stack_pool.hpp>
#include <seedpool/sim/strategy.hpp>
#include <seedpool/sim/timer_queue.hpp>
#include <seedpool/sim/trace.hpp>

#include <boost/context/fiber.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seedpool::sim {

struct SimConfig {
  std::uint64_t seed = 1;
  // When set, the run replays this decision list instead of drawing from the seed.
  std::optional<std::vector<std::uint64_t>> decisions;
  StrategySpec strategy;
  std::uint64_t steps_max = 50'000'000;        // step budget per run
  Duration virtual_time_max = hours(24 * 30);  // virtual-time budget per run
  std::size_t decisions_max = std::size_t{1} << 26;
  std::size_t tasks_max = std::size_t{1} << 20;  // tasks spawned over a run, live or finished
  std::size_t stack_bytes = 64 * 1024;           // per task; only touched pages cost memory
  bool keep_trace_events = false;                // the hash is always kept
  std::size_t trace_events_max = std::size_t{1} << 22;
  // Scheduling points a task may pass during teardown before it is abandoned.
  std::uint64_t teardown_steps_max = 10'000;
  // Waits and sleeps with a deadline a task may reach during teardown; at the
  // next one the task is ended by unwinding its stack (see SimWorld::run). A
  // periodic loop that does not check World::stopping() gets there within a
  // few turns; a task shutting down in order seldom waits that often.
  std::uint64_t teardown_timed_waits_max = 16;
  // Spinning on atomics (see SimWorld::atomic_accessed). park_spinners
  // false runs every interleaving of atomic reads, as before parking
  // existed: a spin-wait then runs until the step budget under a strategy
  // that favours the spinner. spin_rounds_max: how many times in a row the
  // parked spinners may be run again, with nothing else runnable and no
  // timer pending, before the run fails as a livelock (a deadlock whose
  // message begins "livelock:"). Each time lets every spinner read its
  // atomics over again; a change to any atomic starts the count afresh.
  bool park_spinners = true;
  std::uint64_t spin_rounds_max = 1'000'000;
  // ConditionVariable (<seedpool/core/sync.hpp>). notify_one with several
  // waiters wakes the one the strategy chooses (Strategy::choose: random
  // walk and PCT draw it, the bounded strategies search it), as on threads
  // no order is promised; notify_one_fifo true always wakes the longest
  // waiter instead, with no decision. spurious_wakeups true makes every
  // condition wait with time left a choice of the strategy: to wait, or to
  // wake at once without a notification (after one scheduling point with
  // the mutex released), which the standard allows and which finds an
  // `if` where a `while` belongs. Off by default: each wait then costs a
  // decision, and a predicate loop an extra step per spurious turn.
  // Neither touches Monitor or Channel, which the pool is built on.
  bool notify_one_fifo = false;
  bool spurious_wakeups = false;
};

enum class Outcome {
  ok,               // every task finished
  deadlock,         // tasks blocked, nothing runnable, no timer pending
  step_budget,      // steps_max reached
  time_budget,      // virtual_time_max reached
  decision_budget,  // decisions_max reached
  task_budget,      // tasks_max reached
  task_exception,   // an exception escaped a task
  assertion,        // a SEEDPOOL_ASSERT failed inside a task
  invariant,        // SimWorld::fail was called (an invariant checker found a violation)
};

std::string_view to_string(Outcome outcome) noexcept;

struct RunResult {
  Outcome outcome = Outcome::ok;
  std::string message;  // empty when ok; otherwise what failed, where and when
  // The invariant a failure broke, when SimWorld::fail named one: the
  // failure's kind, carried as a field and never read back out of `message`.
  std::optional<Invariant> invariant;
  std::uint64_t steps = 0;
  Instant virtual_time;
  std::uint64_t trace_hash = 0;
  std::vector<std::uint64_t> decisions;  // replaying these reproduces the run
  std::vector<std::string> task_names;   // indexed by task id
  std::size_t tasks_abandoned = 0;       // never resumed nor unwound; see SimWorld::run
  std::size_t tasks_ended = 0;           // unwound at a timed wait during teardown; see SimWorld::run
  Trace trace{false, 0};

  bool ok() const noexcept { return outcome == Outcome::ok; }
  // One line: outcome, message, steps, virtual time and hash.
  std::string summary() const;
};

// Told just before virtual time moves on: every task has run as far as it
// can at `now`, so whatever is owed at `now` must be done by then. A checker
// of promptness watches here. It may call SimWorld::fail, and must not block,
// spawn or make decisions.
class TimeObserver {
 public:
  virtual ~TimeObserver() = default;
  virtual void before_time_advance(Instant now, Instant next) = 0;
};

class SimWorld;
using ProcessFactory = std::function<Result<std::unique_ptr<Process>>(SimWorld&, const ProcessSpec&)>;

class SimWorld final : public World {
 public:
  explicit SimWorld(SimConfig config);
  ~SimWorld() override;
  SimWorld(const SimWorld&) = delete;
  SimWorld& operator=(const SimWorld&) = delete;

  // Runs `body` as the task "main", and every task it spawns, until all have
  // finished or the run fails. Callable once per SimWorld.
  //
  // After the result is decided the run is torn down: stopping() turns
  // true, tasks never started are discarded, and suspended tasks are
  // resumed, newest first, with every wait failing at once (channels report
  // timeout) so they can return normally. Loops should check stopping()
  // (see World::stopping). Two backstops end a task that does not return:
  //  - At its wait or sleep with a deadline after teardown_timed_waits_max
  //    of them, a task is ended by an exception of an internal type thrown
  //    from the wait, which unwinds its stack (destructors run, and their
  //    waits fail at once without throwing again) and which the simulator
  //    catches where the task began. It derives from nothing a handler
  //    names, but a catch (...) that swallows it sees it again at the next
  //    such wait. Where it meets a noexcept function (a destructor that
  //    waits, say) the task is abandoned instead of the process terminated.
  //  - A task still running after teardown_steps_max scheduling points, or
  //    stopped by a failed assertion, is abandoned: never resumed again, so
  //    no code runs past a broken invariant.
  // When the SimWorld is destroyed the stack of each abandoned task goes
  // back to the stack pool without being unwound: the objects on it are
  // never destroyed, and what they own (heap memory, channels, processes) is
  // leaked, but the stack's memory is reused. Nothing may keep a pointer
  // into a task's stack past the SimWorld.
  RunResult run(std::function<void()> body);

  // World.
  Instant now() const override { return now_; }
  // True from the end of the run on: during teardown and after.
  bool stopping() const noexcept override { return tearing_down_; }
  void sleep_until(Instant deadline) override;
  void yield() override;
  // A task spins when it reads atomics it has read already, unchanged, twice
  // (a loop's third turn), with no progress anywhere in between and no lock
  // taken by the task itself: no atomic changed (a failed compare-exchange,
  // an exchange or fetch_or that writes the value already there count as
  // reads), no mutex or monitor was released, no task woke, started or
  // ended. (A single re-read is not enough: double-checked locking's
  // re-check and a seqlock reader's second look are straight-line code.) A
  // World::yield() in the loop does not hide it; a failed Mutex::try_lock
  // counts as a read of the mutex. Its next atomic access (or try_lock) parks
  // it: it is not offered to the strategy, as a blocked task is not, until an
  // atomic changes (any task's, any atomic: the loop's condition may read
  // several) or a mutex is released, time advances, or nothing else can run.
  // So a spin-wait (Peterson's lock, a spinlock, a flag or a try_lock polled
  // in a loop) costs no steps while its writer is runnable, and a strategy
  // that favours the spinner (PCT's highest priority, a search that does not
  // preempt it) lets the writer run instead of spinning until the step
  // budget; switching away from a parked task is not a preemption. When only
  // parked tasks are left and no timer is pending they run again (a bounded
  // spin may end), up to SimConfig::spin_rounds_max times, after which the
  // run fails as a livelock naming them. A loop that does anything else in
  // each turn (releases a lock, uses a channel, sleeps) is never parked.
  //
  // The price: a loop that reads an unchanged atomic a bounded number of
  // times with only local work between (for (i < n) sum += flag.load();) is
  // parked too, so the schedules in which it runs to its end, and what it
  // does next, before another runnable task's next atomic change or mutex
  // release are not explored. SimConfig::park_spinners = false explores them
  // (and runs spin-waits as written).
  void atomic_point() override;
  void atomic_accessed(const void* object, bool changed) override;
  void spawn(std::string name, std::function<void()> body) override;
  std::unique_ptr<Monitor> make_monitor(std::string name) override;
  std::uint64_t random_below(std::uint64_t bound) override;
  Result<std::unique_ptr<Process>> launch(const ProcessSpec& spec) override;

  // The simulated backends of <seedpool/core/sync.hpp>; see there and
  // sim_sync.cpp. Misusing them (unlocking a mutex the task does not hold,
  // locking one it holds, destroying a held mutex or an object a task waits
  // on, joining oneself) fails the run as a failed assertion does
  // (Outcome::assertion), naming the task and the object, and the task is
  // abandoned. During teardown a lock of a mutex another task holds, or a
  // join of a task not yet finished, ends the calling task by unwinding it
  // (see run()), for neither can fail nor wait then.
  std::unique_ptr<MutexBackend> make_mutex(std::string name) override;
  std::unique_ptr<ConditionBackend> make_condition(std::string name) override;
  std::unique_ptr<JoinableTask> spawn_joinable(std::string name, std::function<void()> body) override;
  // The running task's id plus one; 0 outside tasks.
  std::uint64_t current_task_id() const noexcept override;
  // Fails the run (as a misuse of a sync object, Outcome::assertion): a
  // host clock's time point cannot be a deadline in virtual time.
  void reading_host_clock(std::string_view operation) override;

  // Ends the run at once with the outcome it has (ok unless a failure came
  // first), as a program ends when main returns: the calling task stops
  // here, the scheduler tears down every unfinished task (see run()), and
  // this call returns during teardown, where stopping() is true. Recorded in
  // the trace as an exit event. Requires a task.
  void exit() override;

  // A decision in [0, bound) from the run's stream, recorded in the trace.
  // The same as random_below; named for fault injection sites.
  std::uint64_t decide(std::uint64_t bound) { return random_below(bound); }

  // Fails the run with Outcome::invariant. The run stops at the calling
  // task's next scheduling point, and every task is then torn down (see
  // run()). A task that returns before reaching one ends normally, its
  // frame gone before the tasks it spawned are torn down: a task whose frame
  // those tasks use should fail and then yield. Only the first failure is kept.
  // The message reads "[name] message" and the result carries `invariant`.
  void fail(Invariant invariant, std::string_view message);
  // The same for a failure that names no invariant: its kind is the
  // outcome's, "invariant".
  void fail(std::string message);

  // Records a labelled event in the trace (and its hash, which depends on
  // both); a log shows it as "note LABEL = VALUE".
  void note(std::string_view label, std::uint64_t value = 0);

  // Installs how launch() creates simulated processes. Without one, launch
  // fails with launch_failed.
  void set_process_factory(ProcessFactory factory) { process_factory_ = std::move(factory); }

  // Installs the one observer of time advances (nullptr: none). The
  // observer must outlive the run or be removed first.
  void set_time_observer(TimeObserver* observer) noexcept { time_observer_ = observer; }

  std::uint64_t steps() const noexcept { return steps_; }
  // The running task's name; empty outside tasks.
  std::string_view current_task_name() const noexcept;
  bool tearing_down() const noexcept { return tearing_down_; }
  const SimConfig& config() const noexcept { return config_; }

 private:
  struct Task;
  class WaiterList;
  class SimMonitor;
  friend class SimMonitor;
  class SimMutex;
  class SimCondition;
  class SimJoinable;

  void schedule_loop();
  void check_decision_budget();
  Task& take_next();
  bool advance_time();
  void switch_context(Task* from, boost::context::fiber& to);
  void file_suspended(boost::context::fiber&& suspended);
  void resume(Task& task);
  void switch_to_scheduler(Task& task);
  bool step_directly() const;
  bool advance_directly();
  void switch_away(Task& task);
  void make_runnable(Task& task, bool by_timeout);
  void block_current(std::uint64_t monitor_id, std::string_view reason, Instant deadline);
  void yield_point();
  void step_point(bool atomic);
  void park(Task& task);
  void unpark_all();
  // Something a spinning task may be waiting for happened: an atomic
  // changed, a mutex or monitor was released, a task woke, was spawned or
  // finished. Spin records start afresh, and so does the livelock count.
  void note_progress() noexcept {
    ++progress_;
    spin_rounds_ = 0;
  }
  std::string livelock_report() const;
  // A choice among `alternatives` made by the strategy (Strategy::choose),
  // recorded in the trace as a decision; 0 during teardown.
  std::uint64_t choose(std::uint64_t alternatives);
  void lock_point(SimMutex& mutex, Task& task);
  // block_current and make_runnable for the objects of sim_sync.cpp.
  void block_on(std::uint64_t object_id, std::string_view reason, Instant deadline);
  void wake(Task& task);
  void wait_instead(Task& task, std::uint64_t object_id, std::string_view reason);
  Task* spawn_task(std::string name, std::function<void()> body);
  void join_task(Task& target, std::uint64_t join_id, std::string_view reason);
  [[noreturn]] void misuse(std::string message);
  [[noreturn]] void end_in_teardown(Task& task);
  void abandon_suspended(Task& task);
  std::string lock_report() const;
  void teardown_point(Task& task, bool timed_wait);
  [[noreturn]] void abandon(Task& task);
  void reclaim_stack(Task& task) noexcept;
  void run_task_body(Task& task);
  void record_failure(Outcome outcome, std::string message, std::optional<Invariant> invariant = {});
  std::string deadlock_report() const;
  void teardown();
  static void on_assertion(const AssertionInfo& info);
  static void on_terminate();

  SimConfig config_;
  DecisionSource decisions_;
  std::unique_ptr<Strategy> strategy_;
  std::shared_ptr<StackPool> stacks_;
  Trace trace_;
  std::vector<std::unique_ptr<Task>> tasks_;
  std::vector<TaskId> runnable_;
  std::vector<TaskId> parked_;     // runnable tasks parked as spinning (atomic_accessed)
  std::uint64_t progress_ = 0;     // note_progress() calls so far
  std::uint64_t spin_rounds_ = 0;  // parked tasks run again with nothing else to run, in a row
  TimerQueue timers_;  // the deadlines of blocked tasks' waits
  std::uint64_t monitor_ids_ = 0;
  Task* current_ = nullptr;
  boost::context::fiber scheduler_;  // the scheduler's context while a task runs
  Task* switching_from_ = nullptr;   // the task that switched last; null: the scheduler
  Instant now_;
  std::uint64_t steps_ = 0;
  bool started_ = false;
  bool stop_ = false;
  bool tearing_down_ = false;
  Outcome outcome_ = Outcome::ok;
  std::string failure_;
  std::optional<Invariant> failed_invariant_;  // the invariant the kept failure named
  std::size_t abandoned_ = 0;
  std::size_t ended_ = 0;
  ProcessFactory process_factory_;
  TimeObserver* time_observer_ = nullptr;
};

// Runs `body` on a fresh SimWorld built from `config`.
RunResult simulate(const SimConfig& config, const std::function<void(SimWorld&)>& body);

}  // namespace seedpool::sim
