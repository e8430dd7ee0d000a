#include <seedpool/core/assert.hpp>
#include <seedpool/sim/sim_world.hpp>

#include "sim_sync.hpp"
#include "sim_task.hpp"

#include <boost/context/fiber.hpp>
#include <cxxabi.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

// The functions on the path of every context switch are inlined into their
// callers: each extra frame between two switches costs a mispredicted return
// when the other side resumes (measured: about 6 ns per level and side).
#define SEEDPOOL_SWITCH_PATH [[gnu::always_inline]] inline

namespace seedpool::sim {
namespace {

// The wait reason of a task parked as spinning (SimWorld::park).
constexpr std::string_view spin_reason = "spin on atomics nobody changes";
// The distinct atomics a task's spin record keeps: a loop reading more
// without reading one again is not taken for a spin.
constexpr std::size_t spin_reads_max = 64;
// Unchanged re-reads, with no progress in between, that make a spin. Two,
// not one: code that checks an atomic twice on its way (a seqlock reader's
// sequence before and after the data, a flag tested again after other
// atomics) is not a loop, and parking it would cut its schedules; a spin
// loop reaches two re-reads in its third turn.
constexpr std::uint32_t spin_rereads_to_park = 2;

namespace ctx = boost::context;

// The SimWorld whose run() is executing on this thread; assertion failures
// inside its tasks are routed to it.
thread_local SimWorld* active_world = nullptr;

// The terminate handler in place before SimWorld installed its own (see
// SimWorld::on_terminate); written once, before the first run.
std::terminate_handler terminate_handler_before = nullptr;

// Makes `handler` the process's terminate handler the first time it is
// called. It stays in place: set_terminate is not per thread, and an
// exception captures the handler current when it is thrown.
void install_terminate_handler_once(std::terminate_handler handler) {
  static std::once_flag once;
  std::call_once(once, [handler] { terminate_handler_before = std::set_terminate(handler); });
}

// Thrown from a task's wait during teardown to end the task (see
// SimWorld::run). A type of its own that derives from nothing: no handler
// but a catch-all one can catch it, and run_task_body is the one meant to.
struct TaskEnd {};

// Whether the exception being handled is a TaskEnd.
bool handling_task_end() noexcept {
  const std::exception_ptr current = std::current_exception();
  if (!current) {
    return false;
  }
  try {
    std::rethrow_exception(current);
  } catch (const TaskEnd&) {
    return true;
  } catch (...) {
    return false;
  }
}

// Ends a fiber handle's ownership without destroying the fiber, whose
// destructor would resume it to unwind its stack: the handle is moved into
// storage that is never destroyed.
void forget(ctx::fiber&& fiber) noexcept {
  alignas(ctx::fiber) std::byte storage[sizeof(ctx::fiber)];
  ::new (static_cast<void*>(storage)) ctx::fiber(std::move(fiber));
}

DecisionSource make_decisions(const SimConfig& config) {
  if (config.decisions.has_value()) {
    return DecisionSource::replay(*config.decisions, config.decisions_max);
  }
  return DecisionSource::seeded(config.seed, config.decisions_max);
}

// Memory of destroyed SimMonitors, kept by this thread for its next ones.
// A run makes a monitor for every channel, and so for every checkout's and
// call's reply channel; reusing their blocks skips the allocator's malloc
// and free (often its slow path: many replies are freed in a burst) for
// each. At most spares_max blocks are kept.
class MonitorSpares {
 public:
  MonitorSpares() { blocks_.reserve(spares_max); }
  ~MonitorSpares() {
    for (void* block : blocks_) {
      ::operator delete(block);
    }
  }
  MonitorSpares(const MonitorSpares&) = delete;
  MonitorSpares& operator=(const MonitorSpares&) = delete;

  void* take(std::size_t bytes) {
    if (bytes != block_bytes_ || blocks_.empty()) {
      return ::operator new(bytes);
    }
    void* block = blocks_.back();
    blocks_.pop_back();
    return block;
  }

  void give(void* block, std::size_t bytes) noexcept {
    if (block_bytes_ == 0) {
      block_bytes_ = bytes;  // every SimMonitor has the same size
    }
    if (bytes != block_bytes_ || blocks_.size() >= spares_max) {
      ::operator delete(block);
      return;
    }
    blocks_.push_back(block);  // never reallocates: capacity is spares_max
  }

 private:
  static constexpr std::size_t spares_max = 256;
  std::size_t block_bytes_ = 0;
  std::vector<void*> blocks_;
};

MonitorSpares& monitor_spares() {
  thread_local MonitorSpares spares;
  return spares;
}

}  // namespace

// A monitor in simulation: the lock is a flag (one thread, and no scheduling
// point inside a critical section except wait), and waiting blocks the task
// in the scheduler with an optional timer. The waiters form a WaiterList, in
// the order they began to wait: most monitors belong to one-shot reply
// channels.
class SimWorld::SimMonitor final : public Monitor {
 public:
  SimMonitor(SimWorld& world, std::string name, std::uint64_t id)
      : world_(world), name_(std::move(name)), id_(id) {}

  ~SimMonitor() override { SEEDPOOL_ASSERT_MSG(waiters_.empty() || world_.tearing_down_, name_.c_str()); }

  static void* operator new(std::size_t bytes) { return monitor_spares().take(bytes); }
  static void operator delete(void* block, std::size_t bytes) noexcept { monitor_spares().give(block, bytes); }

  void lock() override {
    SEEDPOOL_ASSERT_MSG(!locked_ || world_.tearing_down_, "monitor locked twice");
    locked_ = true;
  }
  void unlock() override {
    locked_ = false;
    world_.note_progress();  // what the monitor guards may have changed
  }

  bool wait_until(Instant deadline, std::string_view reason) override {
    Task* task = world_.current_;
    if (task == nullptr || world_.tearing_down_) {
      if (task != nullptr) {
        world_.teardown_point(*task, !deadline.is_max());
      }
      return false;
    }
    SEEDPOOL_ASSERT(locked_);
    if (deadline <= world_.now_) {
      return false;
    }
    locked_ = false;
    waiters_.push_back(*task);
    world_.block_current(id_, reason, deadline);
    locked_ = true;
    if (task->waiter_linked) {
      waiters_.remove(*task);  // woken by its deadline (or torn down), not by notify_all
    }
    return !task->woke_by_timeout;
  }

  // Wakes every waiter still blocked, in the order they began to wait; one
  // already woken by its deadline just leaves the list.
  void notify_all() override {
    Task* task = waiters_.take_all();
    while (task != nullptr) {
      Task* const next = WaiterList::take_next(*task);
      if (task->state == TaskState::blocked) {
        world_.make_runnable(*task, false);
      }
      task = next;
    }
  }

 private:
  SimWorld& world_;
  std::string name_;
  std::uint64_t id_;
  bool locked_ = false;
  WaiterList waiters_;
};

std::string_view to_string(Outcome outcome) noexcept {
  switch (outcome) {
    case Outcome::ok: return "ok";
    case Outcome::deadlock: return "deadlock";
    case Outcome::step_budget: return "step_budget";
    case Outcome::time_budget: return "time_budget";
    case Outcome::decision_budget: return "decision_budget";
    case Outcome::task_budget: return "task_budget";
    case Outcome::task_exception: return "task_exception";
    case Outcome::assertion: return "assertion";
    case Outcome::invariant: return "invariant";
  }
  return "unknown";
}

std::string RunResult::summary() const {
  std::string line = fmt::format("{} after {} steps at virtual {} (trace {:016x})", to_string(outcome), steps,
                                 format_instant(virtual_time), trace_hash);
  if (!message.empty()) {
    line += ": " + message;
  }
  return line;
}

SimWorld::SimWorld(SimConfig config)
    : config_(std::move(config)),
      decisions_(make_decisions(config_)),
      strategy_(make_strategy(config_.strategy)),
      stacks_(StackPool::for_this_thread(config_.stack_bytes)),
      trace_(config_.keep_trace_events, config_.trace_events_max) {
  SEEDPOOL_ASSERT(config_.steps_max >= 1);
  SEEDPOOL_ASSERT(config_.tasks_max >= 1);
}

SimWorld::~SimWorld() {
  tearing_down_ = true;
  for (auto& task : tasks_) {
    if (task->state == TaskState::abandoned) {
      reclaim_stack(*task);
    }
  }
}

// Gives an abandoned task's stack back to the pool without unwinding it:
// destroying the fiber would run code of a task that stopped inside a failed
// assertion or a runaway loop. The fiber's record, which Boost.Context keeps
// at the top of the stack, is dropped with the handle; it holds only
// trivially destructible members (see spawn), so dropping it frees nothing.
// The stack's own objects are never destroyed (see run).
void SimWorld::reclaim_stack(Task& task) noexcept {
  SEEDPOOL_ASSERT(task.state == TaskState::abandoned);
  SEEDPOOL_ASSERT(task.fiber);
  forget(std::move(task.fiber));
  stacks_->reclaim(task.stack);
}

RunResult SimWorld::run(std::function<void()> body) {
  SEEDPOOL_ASSERT_MSG(!started_, "SimWorld::run is callable once");
  started_ = true;
  SimWorld* const previous_world = std::exchange(active_world, this);
  const AssertionHandler previous_handler = set_assertion_handler(&SimWorld::on_assertion);
  install_terminate_handler_once(&SimWorld::on_terminate);

  strategy_->on_run_start(decisions_);
  spawn("main", std::move(body));
  schedule_loop();

  RunResult result;
  result.outcome = outcome_;
  result.message = failure_;
  result.invariant = failed_invariant_;
  result.steps = steps_;
  result.virtual_time = now_;
  result.trace_hash = trace_.hash();
  result.decisions = decisions_.recorded();  // a copy of exactly their size; the buffer is reused
  for (const auto& task : tasks_) {
    result.task_names.push_back(task->name);
  }
  // The result is decided: what teardown does is not part of the run.
  result.trace = std::exchange(trace_, Trace(false, 0));
  teardown();
  result.tasks_abandoned = abandoned_;
  result.tasks_ended = ended_;

  set_assertion_handler(previous_handler);
  active_world = previous_world;
  return result;
}

// Tasks pass control straight to one another while they can (see
// step_directly); the loop runs whenever a step needs more than a pick: to
// advance time, to end the run, or after a task finished.
void SimWorld::schedule_loop() {
  while (!stop_) {
    if (runnable_.empty()) {
      if (!advance_time()) {
        return;
      }
      continue;
    }
    if (steps_ >= config_.steps_max) {
      record_failure(Outcome::step_budget, fmt::format("step budget of {} steps exhausted", config_.steps_max));
      return;
    }
    resume(take_next());
    check_decision_budget();
  }
}

void SimWorld::check_decision_budget() {
  if (decisions_.overflowed()) {
    record_failure(Outcome::decision_budget,
                   fmt::format("decision budget of {} decisions exhausted", config_.decisions_max));
  }
}

// One step: the strategy picks a runnable task, which leaves the run queue.
SEEDPOOL_SWITCH_PATH SimWorld::Task& SimWorld::take_next() {
  // Most steps find one task runnable (a task yielding with nothing else
  // to run). A random walk picks it without a decision (a bound of 1
  // records none), so it is not asked; PCT may change a priority at any
  // step, so it always is.
  const bool sole_pick = runnable_.size() == 1 && config_.strategy.kind == StrategySpec::Kind::random_walk;
  const std::size_t index = sole_pick ? 0 : strategy_->pick(runnable_, steps_, decisions_);
  SEEDPOOL_ASSERT(index < runnable_.size());
  const TaskId id = runnable_[index];
  runnable_[index] = runnable_.back();
  runnable_.pop_back();
  ++steps_;
  trace_.record(steps_, now_, id, EventKind::schedule, 0);
  return *tasks_[id];
}

// Moves the clock to the earliest pending timer and wakes every task due
// then. Returns false when the run is over: all tasks done, a deadlock, or
// the virtual-time budget.
bool SimWorld::advance_time() {
  if (!parked_.empty()) {
    // Only spinners are left to run. With a timer pending, time moves on
    // to it, as it would were they blocked, and they run again with the
    // tasks it wakes (a spin may wait for a time). Otherwise they run again
    // by themselves (a bounded spin ends), up to spin_rounds_max times.
    if (timers_.empty()) {
      if (spin_rounds_ >= config_.spin_rounds_max) {
        record_failure(Outcome::deadlock, livelock_report());
        return false;
      }
      ++spin_rounds_;
      unpark_all();
      return true;
    }
    unpark_all();
  }
  if (timers_.empty()) {
    const bool all_done = std::all_of(tasks_.begin(), tasks_.end(), [](const auto& t) {
      return t->state == TaskState::done;
    });
    if (!all_done) {
      record_failure(Outcome::deadlock, deadlock_report());
    }
    return false;
  }
  const Instant at = timers_.earliest();
  if (at > Instant::zero() + config_.virtual_time_max) {
    record_failure(Outcome::time_budget,
                   fmt::format("virtual-time budget of {} exhausted; next timer at {}",
                               format_instant(Instant::zero() + config_.virtual_time_max), format_instant(at)));
    return false;
  }
  SEEDPOOL_ASSERT(at >= now_);
  if (time_observer_ != nullptr && at > now_ && !stop_) {
    time_observer_->before_time_advance(now_, at);
  }
  now_ = at;
  trace_.record(steps_, now_, 0, EventKind::advance, static_cast<std::uint64_t>(now_.ns()));
  while (!timers_.empty() && timers_.earliest() == now_) {
    make_runnable(*tasks_[timers_.pop()], true);
  }
  return true;
}

std::string SimWorld::livelock_report() const {
  std::string list;
  for (const TaskId id : parked_) {
    list += fmt::format("\n  task '{}' (#{}) spins", tasks_[id]->name, id);
  }
  for (const auto& task : tasks_) {
    if (task->state == TaskState::blocked) {
      list += fmt::format("\n  task '{}' (#{}) waits: {}", task->name, task->id, task->wait_reason);
    }
  }
  return fmt::format("livelock: {} task(s) spin on atomics that no task changes, nothing else runnable and no "
                     "timer pending, {} times in a row (spin_rounds_max){}{}",
                     parked_.size(), spin_rounds_, list, lock_report());
}

std::string SimWorld::deadlock_report() const {
  constexpr std::size_t listed_max = 32;
  std::size_t blocked = 0;
  std::string list;
  for (const auto& task : tasks_) {
    if (task->state != TaskState::blocked) {
      continue;
    }
    if (++blocked <= listed_max) {
      list += fmt::format("\n  task '{}' (#{}) waits: {}", task->name, task->id, task->wait_reason);
    }
  }
  if (blocked > listed_max) {
    list += fmt::format("\n  ... and {} more", blocked - listed_max);
  }
  list += lock_report();
  // Blocked tasks that outlive the run's body (task #0) are the common case
  // of a thread never joined: say so, as the list alone does not.
  const bool body_returned = !tasks_.empty() && tasks_.front()->state == TaskState::done;
  return fmt::format("deadlock: {} task(s) blocked, none runnable, no timer pending{}{}", blocked,
                     body_returned ? " (the run's body, task 'main', has returned: these tasks outlived it)" : "",
                     list);
}

// Every context switch goes through switch_context: the context switched
// away from (a task, or the scheduler when `from` is null) is handed to the
// one resumed, which files it where it belongs: in the task, or in
// scheduler_. A task may thus be resumed by the scheduler or by another task.
SEEDPOOL_SWITCH_PATH void SimWorld::switch_context(Task* from, ctx::fiber& to) {
  switching_from_ = from;
  file_suspended(std::move(to).resume());
}

// Back in a context: whoever switched to it has just suspended.
SEEDPOOL_SWITCH_PATH void SimWorld::file_suspended(ctx::fiber&& suspended) {
  (switching_from_ == nullptr ? scheduler_ : switching_from_->fiber) = std::move(suspended);
}

// From the scheduler: runs `task` until control comes back to the scheduler,
// possibly after other tasks ran in between.
SEEDPOOL_SWITCH_PATH void SimWorld::resume(Task& task) {
  SEEDPOOL_ASSERT(current_ == nullptr);
  SEEDPOOL_ASSERT(task.state == TaskState::runnable || tearing_down_);
  current_ = &task;
  task.state = TaskState::running;
  switch_context(nullptr, task.fiber);
  SEEDPOOL_ASSERT(switching_from_ != nullptr && switching_from_ == current_);
  SEEDPOOL_ASSERT(current_->state != TaskState::running);
  current_ = nullptr;
}

SEEDPOOL_SWITCH_PATH void SimWorld::switch_to_scheduler(Task& task) {
  SEEDPOOL_ASSERT(current_ == &task);
  switch_context(&task, scheduler_);
}

// Whether the running task may take the scheduler's next step itself: the
// step would be a plain pick, with nothing for the scheduler to do first
// (end the run, record a budget failure, advance time).
SEEDPOOL_SWITCH_PATH bool SimWorld::step_directly() const {
  return !stop_ && !tearing_down_ && !decisions_.overflowed() && !runnable_.empty() && steps_ < config_.steps_max;
}

// Whether the running task, which has just blocked with nothing left to
// run, may advance time itself rather than leave that to schedule_loop:
// when nothing would stop the loop first and the next timer lies within
// the virtual-time budget. It then advances exactly as the loop would (see
// advance_time). Otherwise the loop ends the run (all done, a deadlock,
// the time budget) or records the failure that stopped it. A run advances
// time about once every eight steps; going through the scheduler cost two
// context switches each time.
SEEDPOOL_SWITCH_PATH bool SimWorld::advance_directly() {
  if (stop_ || tearing_down_ || decisions_.overflowed() || !runnable_.empty() || timers_.empty() ||
      timers_.earliest() > Instant::zero() + config_.virtual_time_max) {
    return false;
  }
  const bool advanced = advance_time();
  SEEDPOOL_ASSERT(advanced);
  SEEDPOOL_ASSERT(!runnable_.empty());
  return true;
}

// The running task `task`, no longer running, hands control on: it takes
// the scheduler's next step exactly as schedule_loop would (same strategy
// call on the same run queue, same step count and trace event, after
// advancing time if nothing is runnable) and switches straight to the task
// picked, or to the scheduler when step_directly() says it may not.
// Returns when `task` runs again.
SEEDPOOL_SWITCH_PATH void SimWorld::switch_away(Task& task) {
  SEEDPOOL_ASSERT(current_ == &task);
  SEEDPOOL_ASSERT(task.state != TaskState::running);
  if (runnable_.empty() && !advance_directly()) {
    switch_to_scheduler(task);
    return;
  }
  if (!step_directly()) {
    switch_to_scheduler(task);
    return;
  }
  Task& next = take_next();
  if (&next == &task) {
    task.state = TaskState::running;  // picked again: no switch at all
    return;
  }
  if (task.state == TaskState::runnable && decisions_.overflowed()) {
    // A yield whose pick used up the decision budget: the scheduler ends
    // the run before the task picked runs (a pick made by the scheduler
    // itself is followed by its step first).
    switch_to_scheduler(task);
    return;
  }
  SEEDPOOL_ASSERT(next.state == TaskState::runnable);
  current_ = &next;
  next.state = TaskState::running;
  switch_context(&task, next.fiber);
  SEEDPOOL_ASSERT(current_ == &task);
}

// A task woken by its deadline has left the timer queue already. One woken
// by a notification keeps its timer until its next wait moves it or its end
// cancels it (see TimerQueue). A kept timer never fires: time advances only
// while no task is runnable or running, and a task that blocks again has
// moved or cancelled its timer by then (block_current).
SEEDPOOL_SWITCH_PATH void SimWorld::make_runnable(Task& task, bool by_timeout) {
  SEEDPOOL_ASSERT(task.state == TaskState::blocked);
  note_progress();
  SEEDPOOL_ASSERT(!by_timeout || !timers_.armed(task.id));
  task.state = TaskState::runnable;
  task.woke_by_timeout = by_timeout;
  runnable_.push_back(task.id);
  trace_.record(steps_, now_, task.id, EventKind::wake, by_timeout ? 1 : 0);
}

SEEDPOOL_SWITCH_PATH void SimWorld::block_current(std::uint64_t monitor_id, std::string_view reason, Instant deadline) {
  Task& task = *current_;
  task.spinning = false;
  task.state = TaskState::blocked;
  task.woke_by_timeout = false;
  task.waiting_on = monitor_id;
  task.wait_reason = reason;
  if (!deadline.is_max()) {
    timers_.arm(task.id, deadline);
  } else {
    timers_.cancel(task.id);  // one kept from an earlier wait
  }
  trace_.record(steps_, now_, task.id, EventKind::block, monitor_id, reason);
  switch_away(task);
}

// A scheduling point reached during teardown: a wait or sleep with a
// deadline when `timed_wait`. Abandons a task that keeps running past the
// teardown budget, and ends one at a timed wait past its own limit by
// throwing TaskEnd (see run), unless an exception is already unwinding the
// task: a destructor's wait then fails at once, as any other does, for a
// throw out of a destructor during unwinding would terminate the program.
// A TaskEnd swallowed by a catch-all handler is thrown again at the next
// timed wait, the budget still counting.
void SimWorld::teardown_point(Task& task, bool timed_wait) {
  SEEDPOOL_ASSERT(current_ == &task);
  if (++task.teardown_points > config_.teardown_steps_max) {
    abandon(task);
  }
  if (timed_wait && ++task.teardown_timed_waits > config_.teardown_timed_waits_max &&
      std::uncaught_exceptions() == 0) {
    throw TaskEnd{};
  }
}

// Leaves the running task suspended for good: it is never resumed, so no
// code of it runs past the point where it stopped.
void SimWorld::abandon(Task& task) {
  task.state = TaskState::abandoned;
  ++abandoned_;
  switch_to_scheduler(task);
  SEEDPOOL_ASSERT_MSG(false, "an abandoned task was resumed");
  std::abort();
}

void SimWorld::block_on(std::uint64_t object_id, std::string_view reason, Instant deadline) {
  block_current(object_id, reason, deadline);
}

void SimWorld::wake(Task& task) { make_runnable(task, false); }

// A task that is not running waits, from now on, on another object, with
// no deadline, without spending a step: a runnable one whose reason to run
// is gone (see SimMutex) leaves the run queue, a blocked one changes what it
// waits for. A timer kept from its last wait is cancelled.
void SimWorld::wait_instead(Task& task, std::uint64_t object_id, std::string_view reason) {
  SEEDPOOL_ASSERT(task.state == TaskState::runnable || task.state == TaskState::blocked);
  SEEDPOOL_ASSERT(&task != current_);
  if (task.state == TaskState::runnable) {
    const auto at = std::find(runnable_.begin(), runnable_.end(), task.id);
    SEEDPOOL_ASSERT(at != runnable_.end());
    *at = runnable_.back();
    runnable_.pop_back();
  }
  task.state = TaskState::blocked;
  task.waiting_on = object_id;
  task.wait_reason = reason;
  timers_.cancel(task.id);
  trace_.record(steps_, now_, task.id, EventKind::block, object_id, reason);
}

// A misuse of a sync object by the running task: fails the run as a failed
// assertion does and abandons the task, so that nothing runs past it.
// Outside a task it is a failed assertion.
void SimWorld::misuse(std::string message) {
  Task* const task = current_;
  if (task == nullptr) {
    assertion_failed(AssertionInfo{"sync object misused", message, __FILE__, __LINE__});
  }
  record_failure(Outcome::assertion, std::move(message));
  abandon(*task);
}

// For a wait that can neither wait nor fail during teardown: ends the task
// by unwinding it (see run), or abandons it when an exception is already
// unwinding it.
void SimWorld::end_in_teardown(Task& task) {
  SEEDPOOL_ASSERT(tearing_down_);
  if (std::uncaught_exceptions() == 0) {
    throw TaskEnd{};
  }
  abandon(task);
}

// Leaves a suspended task, not the running one, suspended for good, as
// abandon does for the running one: the object it waits on is gone.
void SimWorld::abandon_suspended(Task& task) {
  SEEDPOOL_ASSERT(&task != current_);
  SEEDPOOL_ASSERT(task.state == TaskState::blocked || task.state == TaskState::runnable);
  if (task.state == TaskState::runnable) {
    const auto at = std::find(runnable_.begin(), runnable_.end(), task.id);
    if (at != runnable_.end()) {
      *at = runnable_.back();
      runnable_.pop_back();
    }
  }
  if (task.parked) {
    parked_.erase(std::find(parked_.begin(), parked_.end(), task.id));
    task.parked = false;
  }
  timers_.cancel(task.id);
  task.state = TaskState::abandoned;
  ++abandoned_;
}

void SimWorld::exit() {
  Task* const task = current_;
  SEEDPOOL_ASSERT_MSG(task != nullptr, "SimWorld::exit is called from a task");
  if (tearing_down_) {
    return;
  }
  if (!stop_) {
    trace_.record(steps_, now_, task->id, EventKind::exit, 0);
  }
  stop_ = true;
  // Runnable, but in no queue: the scheduler ends the run, and teardown
  // resumes the task like any other unfinished one.
  task->state = TaskState::runnable;
  switch_to_scheduler(*task);
  SEEDPOOL_ASSERT(tearing_down_);
}

void SimWorld::sleep_until(Instant deadline) {
  Task* task = current_;
  if (task == nullptr || tearing_down_) {
    if (task != nullptr) {
      teardown_point(*task, true);
    }
    return;
  }
  if (deadline <= now_) {
    yield();
    return;
  }
  block_current(0, "sleep", deadline);
}

// yield()'s body, inlined into the scheduling points that run it, and an
// atomic's (`atomic`): a task found spinning parks there instead. A yield
// is no progress: a spin loop that yields in each turn is still a spin.
SEEDPOOL_SWITCH_PATH void SimWorld::step_point(bool atomic) {
  Task* task = current_;
  if (task == nullptr || tearing_down_) {
    if (task != nullptr) {
      teardown_point(*task, false);
    }
    return;
  }
  if (atomic && task->spinning) {
    park(*task);
    return;
  }
  if (runnable_.empty() && config_.strategy.kind == StrategySpec::Kind::random_walk && !stop_ &&
      !decisions_.overflowed() && steps_ < config_.steps_max) {
    // Alone: the step picks this task again, the sole pick take_next()
    // makes without the strategy. This is that step (its count and trace
    // event) without the trip through the run queue; about half the yields
    // of a churn run, over a quarter of its steps, take it.
    ++steps_;
    trace_.record(steps_, now_, task->id, EventKind::schedule, 0);
    return;
  }
  task->state = TaskState::runnable;
  runnable_.push_back(task->id);
  switch_away(*task);
}

SEEDPOOL_SWITCH_PATH void SimWorld::yield_point() { step_point(false); }
void SimWorld::yield() { yield_point(); }
void SimWorld::atomic_point() { step_point(true); }

// The running task, found spinning by its last atomic access, waits at
// its next one's scheduling point, runnable but not offered to the
// strategy, until unpark_all. Returns when it runs again.
void SimWorld::park(Task& task) {
  task.spinning = false;
  task.parked = true;
  task.state = TaskState::runnable;
  parked_.push_back(task.id);
  trace_.record(steps_, now_, task.id, EventKind::block, 0, spin_reason);
  switch_away(task);
}

void SimWorld::unpark_all() {
  for (const TaskId id : parked_) {
    tasks_[id]->parked = false;
    runnable_.push_back(id);
    trace_.record(steps_, now_, id, EventKind::wake, 0);
  }
  parked_.clear();
}

void SimWorld::atomic_accessed(const void* object, bool changed) {
  Task* const task = current_;
  if (task == nullptr || tearing_down_ || !config_.park_spinners) {
    return;
  }
  if (changed) {
    note_progress();
    task->forget_spin_reads();
    unpark_all();
    return;
  }
  if (task->spin_progress != progress_) {
    task->forget_spin_reads();
    task->spin_progress = progress_;
  }
  if (std::find(task->spin_reads.begin(), task->spin_reads.end(), object) != task->spin_reads.end()) {
    if (++task->spin_rereads >= spin_rereads_to_park) {
      task->spinning = true;
      task->forget_spin_reads();
    }
  } else if (task->spin_reads.size() < spin_reads_max) {
    task->spin_reads.push_back(object);
  }
}

// Mutex::lock's scheduling point, then the mutex taken. The yield is
// inlined here rather than called, so that a lock has no more frames
// between the task's code and its switch than a yield (see
// SEEDPOOL_SWITCH_PATH). With yield() called instead, a lock+unlock pair
// cost about 1.35 bare yields rather than about 1.2 (BM_SyncOp in
// seedpool-sim-bench).
void SimWorld::lock_point(SimMutex& mutex, Task& task) {
  yield_point();
  mutex.acquire(task);
}

void SimWorld::spawn(std::string name, std::function<void()> body) {
  if (spawn_task(std::move(name), std::move(body)) != nullptr) {
    yield();
  }
}

// Creates a task, runnable, and returns it; null when none can be made (in
// teardown, or past the task budget, which fails the run).
SimWorld::Task* SimWorld::spawn_task(std::string name, std::function<void()> body) {
  if (tearing_down_) {
    return nullptr;
  }
  if (tasks_.size() >= config_.tasks_max) {
    record_failure(Outcome::task_budget,
                   fmt::format("task budget of {} tasks exhausted spawning '{}'", config_.tasks_max, name));
    return nullptr;
  }
  note_progress();
  auto task = std::make_unique<Task>();
  Task* raw = task.get();
  raw->id = static_cast<TaskId>(tasks_.size());
  raw->name = std::move(name);
  raw->body = std::move(body);
  auto entry = [this, raw](ctx::fiber&& suspended) {
    file_suspended(std::move(suspended));
    raw->started = true;
    run_task_body(*raw);
    raw->state = TaskState::done;
    note_progress();
    timers_.cancel(raw->id);  // one kept from its last wait
    if (!tearing_down_) {
      trace_.record(steps_, now_, raw->id, EventKind::finish, 0);
      if (raw->joiner != nullptr && raw->joiner->state == TaskState::blocked) {
        make_runnable(*raw->joiner, false);
      }
    }
    // A finished task goes back to the scheduler, which files nothing for it.
    switching_from_ = raw;
    return std::move(scheduler_);
  };
  // The fiber's record holds these two; an abandoned task's record is
  // dropped without being destroyed (see reclaim_stack).
  static_assert(std::is_trivially_destructible_v<decltype(entry)>);
  static_assert(std::is_trivially_destructible_v<PooledStack>);
  // The stack is taken here rather than by the fiber so that the task knows
  // it, to give it back should the task be abandoned; a fiber that ends
  // still gives it back itself, through PooledStack.
  raw->stack = stacks_->allocate();
  raw->fiber = ctx::fiber(std::allocator_arg, ctx::preallocated(raw->stack.sp, raw->stack.size, raw->stack),
                          PooledStack(*stacks_), std::move(entry));
  tasks_.push_back(std::move(task));
  runnable_.push_back(raw->id);
  trace_.record(steps_, now_, raw->id, EventKind::spawn,
                (current_ == nullptr ? 0 : current_->id) ^ hash_text(raw->name), raw->name);
  strategy_->on_spawn(raw->id, decisions_);
  return raw;
}

void SimWorld::run_task_body(Task& task) {
  std::function<void()> body = std::move(task.body);
  try {
    body();
  } catch (const ctx::detail::forced_unwind&) {
    throw;
  } catch (const TaskEnd&) {
    ++ended_;  // ended during teardown (see teardown_point): not a failure
  } catch (const std::exception& e) {
    record_failure(Outcome::task_exception,
                   fmt::format("task '{}' threw {}: {}", task.name, typeid(e).name(), e.what()));
  } catch (...) {
    record_failure(Outcome::task_exception, fmt::format("task '{}' threw a non-standard exception", task.name));
  }
}

std::unique_ptr<Monitor> SimWorld::make_monitor(std::string name) {
  return std::make_unique<SimMonitor>(*this, std::move(name), ++monitor_ids_);
}

std::uint64_t SimWorld::random_below(std::uint64_t bound) {
  SEEDPOOL_ASSERT(bound >= 1);
  if (tearing_down_) {
    return 0;
  }
  const std::uint64_t value = decisions_.decide(bound);
  if (bound > 1) {
    trace_.record(steps_, now_, current_ == nullptr ? 0 : current_->id, EventKind::decide, value);
  }
  return value;
}

std::uint64_t SimWorld::choose(std::uint64_t alternatives) {
  SEEDPOOL_ASSERT(alternatives >= 1);
  if (tearing_down_ || alternatives == 1) {
    return 0;
  }
  const std::uint64_t value = strategy_->choose(alternatives, decisions_);
  trace_.record(steps_, now_, current_ == nullptr ? 0 : current_->id, EventKind::decide, value);
  return value;
}

std::uint64_t SimWorld::current_task_id() const noexcept { return current_ == nullptr ? 0 : current_->id + 1; }

void SimWorld::reading_host_clock(std::string_view operation) {
  const std::string why = fmt::format(
      "{} was given a time point of a host clock, which a simulated run cannot wait for (its time left differs "
      "from run to run): pass a duration, a seedpool::WorldClock time point or an Instant",
      operation);
  if (tearing_down_) {
    return;
  }
  misuse(current_ == nullptr ? why : fmt::format("task '{}': {}", current_->name, why));
}

Result<std::unique_ptr<Process>> SimWorld::launch(const ProcessSpec& spec) {
  yield();
  if (tearing_down_) {
    return Error{ErrorCode::closed, fmt::format("cannot launch '{}': the simulation is over", spec.program), {}};
  }
  if (!process_factory_) {
    return Error{ErrorCode::launch_failed,
                 fmt::format("cannot launch '{}': no simulated process model is installed "
                             "(SimWorld::set_process_factory)",
                             spec.program),
                 {}};
  }
  return process_factory_(*this, spec);
}

void SimWorld::fail(Invariant invariant, std::string_view message) {
  record_failure(Outcome::invariant, fmt::format("[{}] {}", invariant.name(), message), invariant);
}

void SimWorld::fail(std::string message) { record_failure(Outcome::invariant, std::move(message)); }

void SimWorld::note(std::string_view label, std::uint64_t value) {
  if (tearing_down_) {
    return;
  }
  trace_.record_labelled(steps_, now_, current_ == nullptr ? 0 : current_->id, EventKind::note, value, label);
}

std::string_view SimWorld::current_task_name() const noexcept {
  return current_ == nullptr ? std::string_view{} : std::string_view{current_->name};
}

void SimWorld::record_failure(Outcome outcome, std::string message, std::optional<Invariant> invariant) {
  stop_ = true;
  if (outcome_ != Outcome::ok || tearing_down_) {
    return;
  }
  outcome_ = outcome;
  failed_invariant_ = invariant;
  failure_ = fmt::format("{} (step {}, virtual time {}{})", message, steps_, format_instant(now_),
                         current_ == nullptr ? std::string() : fmt::format(", task '{}'", current_->name));
  trace_.record(steps_, now_, current_ == nullptr ? 0 : current_->id, EventKind::fail, hash_text(message),
                failure_);
}

void SimWorld::on_assertion(const AssertionInfo& info) {
  SimWorld* world = active_world;
  if (world == nullptr || world->current_ == nullptr) {
    return;  // not inside a task: the default handler reports and aborts
  }
  world->record_failure(Outcome::assertion,
                        fmt::format("assertion failed: {}{}{} at {}:{}", info.expression,
                                    info.message.empty() ? "" : " — ", info.message, info.file, info.line));
  world->abandon(*world->current_);
}

// A TaskEnd that meets a noexcept function while it unwinds a task (a
// destructor that waits in a loop, say) calls std::terminate. Within a task
// of this thread's run, the task is abandoned instead, as one past the
// teardown budget is; anything else goes to the handler installed before.
void SimWorld::on_terminate() {
  SimWorld* world = active_world;
  if (world != nullptr && world->current_ != nullptr && world->tearing_down_ && handling_task_end()) {
    // std::terminate counts as a handler of the exception; leaving it drops
    // the exception, which this thread would otherwise still see as current.
    abi::__cxa_end_catch();
    world->abandon(*world->current_);
  }
  if (terminate_handler_before != nullptr) {
    terminate_handler_before();
  }
  std::abort();
}

void SimWorld::teardown() {
  tearing_down_ = true;
  timers_.clear();  // no wait ends by its deadline during teardown: every wait fails at once
  // Newest first: a task's objects are used by the tasks it spawned, so
  // children must finish before their parents' frames unwind.
  for (std::size_t i = tasks_.size(); i-- > 0;) {
    Task& task = *tasks_[i];
    if (task.state == TaskState::done || task.state == TaskState::abandoned) {
      continue;
    }
    if (!task.started) {
      // The fiber has not entered the task's body; destroying it unwinds
      // nothing of ours.
      task.fiber = ctx::fiber();
      task.body = nullptr;
      task.state = TaskState::done;
      continue;
    }
    task.woke_by_timeout = true;
    task.parked = false;
    while (task.state != TaskState::done && task.state != TaskState::abandoned) {
      resume(task);
    }
  }
  runnable_.clear();
  parked_.clear();
}

RunResult simulate(const SimConfig& config, const std::function<void(SimWorld&)>& body) {
  SimWorld world(config);
  return world.run([&world, &body] { body(world); });
}

}  // namespace seedpool::sim
