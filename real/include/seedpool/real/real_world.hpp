#pragma once

// RealWorld: the production World. Tasks are OS threads, monitors are a
// std::mutex with a std::condition_variable, time is std::chrono::steady_clock
// and processes are real child processes spoken to over pipes by one I/O loop
// thread per RealWorld (epoll).
//
// Lifetime contract. A RealWorld must outlive everything that uses it: every
// task it spawned, every Channel and Monitor made from it, and every Process
// handle it launched (a handle's events() channel refers to the World). In
// practice: shut the pool down and destroy it, then destroy the RealWorld. The
// destructor, in this order:
//   1. turns stopping() true and joins every task thread, with the world
//      fully working meanwhile — it waits for as long as tasks run, so a task
//      that never ends (a pool not shut down, a task waiting on a process
//      nobody kills, a loop that does not check stopping()) hangs it;
//   2. refuses further launches;
//   3. stops the I/O loop, which SIGKILLs the process group of every child
//      still running and reaps it, closes every descriptor and closes every
//      events channel (Exited last, if the channel has room).
// No zombie and no descriptor survives the RealWorld.
//
// Process-wide effects. Creating a RealWorld sets SIGPIPE to SIG_IGN when its
// disposition is the default (a handler the program installed is left alone),
// because a write to a worker that closed its stdin must be an EPIPE error,
// not the death of the pool's process. Children start with every signal at its
// default disposition and an empty signal mask. Children are reaped by pid
// (waitid); a program that reaps children it does not own (waitpid(-1), or
// SIGCHLD set to SIG_IGN) steals their exit status, and the exit is then
// reported as exit code -1.

#include <seedpool/core/codec.hpp>
#include <seedpool/core/process.hpp>
#include <seedpool/core/time.hpp>
#include <seedpool/core/world.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>

namespace seedpool::real {

// Events a process's events() channel holds unread, as in simulation. When it
// is full the I/O loop stops reading that process's pipes until the consumer
// makes room; the process then blocks on its own full pipe.
inline constexpr std::size_t process_events_max_default = 4096;
// Encoded frames queued for a process's stdin and not yet written. A write
// beyond it fails with closed: the process has stopped reading.
inline constexpr std::size_t stdin_bytes_max_default = std::size_t{64} * 1024 * 1024;
// The longest stderr line delivered whole; a longer line is cut into pieces
// of this size, each delivered as a line.
inline constexpr std::size_t stderr_line_bytes_max_default = std::size_t{64} * 1024;
// After a process has exited, how long its stdout and stderr may stay open
// (held by a descendant that left its process group) before they are closed
// unread and Exited is delivered anyway.
inline constexpr Duration drain_after_exit_max_default = milliseconds(200);
// After a process closes its stdin, how long it has to exit before the closed
// stdin is reported as a broken protocol (OutputCorrupt): an exiting process
// closes its stdin an instant before its exit shows.
inline constexpr Duration exit_after_stdin_closed_max_default = milliseconds(100);

struct RealWorldConfig {
  std::size_t process_events_max = process_events_max_default;
  std::size_t stdin_bytes_max = stdin_bytes_max_default;
  // The decoder's limit on one frame read from a worker's stdout.
  std::size_t frame_bytes_max = kFrameBytesMaxDefault;
  std::size_t stderr_line_bytes_max = stderr_line_bytes_max_default;
  Duration drain_after_exit_max = drain_after_exit_max_default;
  // A process that closes its stdin and runs on can take no frame, not even
  // shutdown, and a frame already in the pipe is lost unread: unless it
  // exits within this, its events get an OutputCorrupt saying so, and the
  // pool fails it (and the call it was given) at once rather than at the
  // call's deadline.
  Duration exit_after_stdin_closed_max = exit_after_stdin_closed_max_default;
  // Watch exits through a pidfd (Linux >= 5.3). When false, or when the kernel
  // refuses pidfd_open, the I/O loop polls waitid every few milliseconds.
  bool use_pidfd = true;
  // When a worker's main process exits, SIGKILL what is left of its process
  // group before reaping it, so that no grandchild outlives its worker. The
  // zombie leader keeps the group id reserved, so the signal cannot reach a
  // stranger.
  bool kill_group_on_exit = true;
  // A caller waiting for a reply reads the worker's stdout on its own thread.
  // Once it has its reply, stdout stays with the callers this long before
  // the I/O loop watches it again, so that back-to-back calls on a lease skip
  // handing it over each time; output that comes in between (none, from a
  // worker that keeps the protocol) is read at the next call or when the
  // loop takes stdout back. An exit is never delayed by it. Zero hands stdout
  // back after every call.
  Duration caller_read_linger = milliseconds(2);
};

namespace detail {
class IoLoop;
class TaskThreads;
}  // namespace detail

class RealWorld final : public World {
 public:
  // Starts the I/O loop thread. Throws std::system_error when the kernel
  // refuses the loop's descriptors or thread (descriptor or thread limits);
  // that is the only failure a RealWorld reports by exception.
  explicit RealWorld(RealWorldConfig config = {});
  // See the lifetime contract above.
  ~RealWorld() override;
  RealWorld(const RealWorld&) = delete;
  RealWorld& operator=(const RealWorld&) = delete;

  // Nanoseconds of std::chrono::steady_clock since this RealWorld was created:
  // the first now() is close to zero. Monotonic; comparable only with instants
  // of the same RealWorld.
  Instant now() const override;

  // Sleeps the calling thread until now() >= deadline; returns at once for a
  // deadline in the past. Instant::max() sleeps forever.
  void sleep_until(Instant deadline) override;

  // A no-op: real threads are preempted by the kernel.
  void yield() override {}
  void atomic_point() override {}

  // True once the destructor has begun, before it joins the tasks: a loop
  // that checks it ends and lets the destructor return.
  bool stopping() const noexcept override { return destroying_.load(std::memory_order_acquire); }

  // Runs `body` on a new thread named after `name` (cut to the kernel's 15
  // bytes). An exception escaping `body` is printed to stderr with the task's
  // name and terminates the program: production has no run result to put it
  // in. Finished threads are joined by later spawns and by the destructor.
  // Throws std::system_error when no thread can be created.
  void spawn(std::string name, std::function<void()> body) override;

  // A monitor on a std::mutex and std::condition_variable. Its wait_until
  // converts the deadline to a steady_clock time point; Instant::max() waits
  // without a deadline.
  std::unique_ptr<Monitor> make_monitor(std::string name) override;

  // From a generator seeded by std::random_device, shared by all threads
  // under a mutex. For jitter only; no security guarantee.
  std::uint64_t random_below(std::uint64_t bound) override;

  // Starts `spec.program` without a shell, in its own process group, with
  // the inherited environment plus `spec.env`, in `spec.working_dir` when set.
  // A program without '/' is looked up in PATH (spec.env's PATH if it sets
  // one); a relative path with '/' is relative to spec.working_dir when set,
  // else to the current directory. Fails with launch_failed naming the program
  // and the errno text when the program is missing or not executable, the
  // working directory is unusable, or the kernel refuses the spawn; it never
  // hangs. Also fails once the RealWorld is being destroyed.
  Result<std::unique_ptr<Process>> launch(const ProcessSpec& spec) override;

  // A std::mutex that records the thread holding it: locking it twice,
  // unlocking it from a thread that does not hold it and destroying it held
  // are failed assertions (the default handler prints them and aborts).
  std::unique_ptr<MutexBackend> make_mutex(std::string name) override;

  // A std::condition_variable over such a mutex. notify_one wakes one waiter,
  // the one the kernel chooses.
  std::unique_ptr<ConditionBackend> make_condition(std::string name) override;

  // Spawns as spawn() does; join() waits until the body has returned. The
  // thread itself is joined by the RealWorld as every task's is.
  std::unique_ptr<JoinableTask> spawn_joinable(std::string name, std::function<void()> body) override;
  // The calling thread's number (see World::current_task_id).
  std::uint64_t current_task_id() const noexcept override;

  // Turns stopping() true and returns. It ends no thread and not the
  // process: tasks that check stopping() return, and the RealWorld's
  // destructor joins them as always. The program ends when its own main
  // returns.
  void exit() override { destroying_.store(true, std::memory_order_release); }

  const RealWorldConfig& config() const noexcept { return config_; }

  // steady_clock's time point for `instant`; false when it is beyond what the
  // clock represents (Instant::max() among them): such a wait has no deadline.
  bool to_time_point(Instant instant, std::chrono::steady_clock::time_point& out) const noexcept;

 private:
  const RealWorldConfig config_;
  const std::chrono::steady_clock::time_point epoch_;
  std::atomic<bool> destroying_{false};  // see stopping(); set by exit() or the destructor
  std::atomic<bool> stopping_{false};    // launches refused: set once every task has been joined
  std::mutex random_mutex_;
  std::mt19937_64 random_;
  std::unique_ptr<detail::TaskThreads> tasks_;
  std::unique_ptr<detail::IoLoop> io_;
};

}  // namespace seedpool::real
