#pragma once

// Simulated worker processes for SimWorld. A SimProcessHost installs itself as
// the world's process factory; every launch() then starts a SimProcess whose
// "program" is a simulated task speaking the frame protocol: it reads the init
// frame after its startup time, answers ready (or fails in one of the ways real
// workers fail), serves calls, pings and shutdown, writes stderr lines, and
// dies on signals. Frames travel as Frame objects; only bytes that break the
// protocol (garbage, a truncated frame) are run through the real FrameDecoder,
// so the pool sees the same OutputCorrupt messages as with the real backend.
//
// Every choice a simulated worker makes comes from one seam: the functions
// installed with set_launch_failure() and set_behavior_for_launch(), and the
// WorkerBehavior::on_call function they return. Focused tests install fixed
// behaviours; fault-injection sweeps install functions that draw from
// SimWorld::decide(), which keeps every fault on the decision stream.

#include <seedpool/core/frame.hpp>
#include <seedpool/core/process.hpp>
#include <seedpool/core/telemetry.hpp>
#include <seedpool/core/time.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seedpool::sim {

// Frames a simulated process's stdin holds unread; a write beyond it fails
// with closed, like a write to a pipe whose reader has stopped reading.
inline constexpr std::size_t stdin_frames_max = 1024;
// Events a simulated process's events() channel holds unread. When it is
// full the program blocks on its next output, as a real one blocks on a full
// pipe; a kill takes effect once that output is written.
inline constexpr std::size_t process_events_max = 4096;
// The first synthetic pid; later processes count up from it.
inline constexpr std::int64_t first_pid = 1000;
// Events a simulated process writes for a caller reading its output
// (Process::read_output) before that caller has read them. Past it, the
// process's own delivery takes the output back, as a reader that fell that
// far behind would have lost it to the I/O loop.
inline constexpr std::size_t stdout_unread_max = 64;
// How long a caller reading a simulated process's output waits at a time
// before it checks whether its call was answered another way (the pool cut
// the line), as the real reader polls in slices.
inline constexpr Duration caller_read_slice = milliseconds(10);

// How often each branch of the caller-read hand-off ran, over all of a
// host's processes: the report of which sides of its races a run exercised.
// SimProcessHost::add_coverage names them path:caller_read*.
struct CallerReadCounts {
  std::uint64_t replies = 0;         // a caller reading the output took its reply
  std::uint64_t declined = 0;        // the I/O loop's interest was still armed: the caller waited as usual
  std::uint64_t handed_back = 0;     // a reader left a frame to events(), in stream order
  std::uint64_t linger = 0;          // a call claimed the output kept from the last reply
  std::uint64_t linger_expired = 0;  // the output kept from the last reply had gone back to the process
  std::uint64_t taken_back = 0;      // output came as the reader gave up: the process delivered it
};

// Lines in order, as a count and a digest of their bytes (FNV-1a, a
// separator after each line): what a process sent to stderr, and what a
// LogSink received of it, compare equal exactly when they are the same
// lines in the same order (up to a 64-bit collision).
struct LineDigest {
  std::uint64_t lines = 0;
  std::uint64_t hash = 0xcbf29ce484222325ULL;

  void add(std::string_view line) noexcept {
    for (const char c : line) {
      hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    }
    hash = (hash ^ 0xffU) * 0x100000001b3ULL;
    ++lines;
  }
  bool operator==(const LineDigest&) const = default;
};

// What a simulated worker does with one call frame. It first writes
// `stderr_lines`, then (except for hang) waits `latency`, then acts.
struct CallAction {
  enum class Kind : std::uint8_t {
    reply,                // a reply frame carrying the call's request id
    error_frame,          // an error frame carrying the call's request id
    crash,                // stderr_before_crash, then exit with exit_code_on_crash
    hang,                 // reads and answers nothing more; only signals end it
    garbage,              // non-frame bytes on stdout (OutputCorrupt), then hangs
    truncated_then_exit,  // half of a reply frame on stdout, then exit_code_on_crash
    wrong_request_id,     // a reply frame whose request id is not the call's
    stray_pong,           // a pong nobody pinged for (request_id, nullopt: the call's id + 1000), then the reply
    stderr_only,          // no reply at all; the worker goes on serving later frames
  };

  Kind kind = Kind::reply;
  // reply, wrong_request_id, truncated_then_exit: the reply payload; nullopt
  // echoes the call's payload. error_frame: the error message; nullopt gives
  // "simulated call failure". garbage: the bytes written to stdout; nullopt
  // gives a line of text, as from a stray print().
  std::optional<std::string> payload;
  // From reading the call to acting on it; nullopt: WorkerBehavior::reply_latency.
  std::optional<Duration> latency;
  // Written to stderr as soon as the call is read.
  std::vector<std::string> stderr_lines;
  // wrong_request_id: the id the reply carries; nullopt: the call's id + 1.
  std::optional<std::uint64_t> request_id;
};

// What one simulated worker process does over its life. The default is a
// healthy worker that starts in 50 ms and echoes every call.
struct WorkerBehavior {
  // How the worker answers the init frame (always the first frame it reads).
  enum class Init : std::uint8_t {
    ready,        // a ready frame carrying the init frame's request id
    error_frame,  // an error frame carrying init_error, then exit_code_on_crash
    crash,        // stderr_before_crash, then exit_code_on_crash
    hang,         // reads and answers nothing more; only signals end it
    garbage,      // non-frame bytes on stdout (OutputCorrupt), then hangs
  };

  // From launch to reading the first frame (interpreter start, imports).
  Duration startup = milliseconds(50);
  Init init = Init::ready;
  std::string init_error = "simulated init failure";
  // The exit code whenever the worker fails by itself: a crash, an init error
  // frame, a malformed first frame, a truncated frame.
  int exit_code_on_crash = 1;
  // Written to stderr after the init frame is read, before the answer.
  std::vector<std::string> stderr_on_init;
  // A traceback-like burst written to stderr just before every crash.
  std::vector<std::string> stderr_before_crash;
  // Written to stderr as the worker begins to exit on a shutdown frame or a
  // heeded terminate (a signal handler's or atexit's last words).
  std::vector<std::string> stderr_on_stop;

  // Latency of the default reply, and of a CallAction without one.
  Duration reply_latency = milliseconds(1);
  // Chooses the action for the call_index-th call (from 0) this process
  // reads. Empty: reply with the call's payload after reply_latency. It runs
  // in the process's task when the call is read; it may draw decisions
  // (SimWorld::decide) but must not block.
  std::function<CallAction(std::uint64_t call_index, const Frame& call)> on_call;

  // When false the worker reads pings and never answers them.
  bool answer_pings = true;
  Duration pong_latency = microseconds(100);

  // When true, Signal::terminate has no effect; only a kill ends the worker.
  bool ignore_terminate = false;
  // From a shutdown frame (exit code 0) or a terminate signal (killed by
  // signal 15) to the exit. A kill during it still wins.
  Duration shutdown_latency = milliseconds(1);
};

// Runs simulated worker processes for one SimWorld and lets a test watch and
// kill them. The host's bookkeeping is shared with the world's process factory
// and with each process, so processes outlive both their Process handles and
// the host itself: a process ends only by exiting, as an OS process does.
//
// Process semantics, in brief: pids count up from first_pid in launch order;
// events() always ends with exactly one Exited, after which it is closed;
// write_frame fails with closed once the process has exited or been killed, or
// when stdin_frames_max frames are unread; signals to an exited process are
// no-ops; Signal::kill ends the process at once (killed by signal 9), even when
// it hangs, sleeps or waits for a frame; Signal::terminate ends it after
// shutdown_latency (killed by signal 15) unless ignore_terminate. When the
// simulated run ends, a process still running is killed with it, so its task
// finishes during teardown.
//
// Output goes as in production: the process's own task (the I/O loop's part)
// offers each frame to the router, else to events(); but a call waiting for
// its reply may read the output on its own task (Process::read_output), and
// keep it for the next call after its reply. Where the real hand-off races,
// the simulated one decides (SimWorld::decide), decision 0 being the side
// that leaves the process's own task delivering: whether the loop's interest
// is disarmed before the caller arrives, whether the kept output's linger has
// passed, whether a frame comes before or after the reader gives up.
class SimProcessHost {
 public:
  // Chooses the behaviour of the launch_index-th launch() call (from 0,
  // failed launches included). Like LaunchFailure, it runs in the task that
  // calls launch(), and may draw decisions but must not block.
  using BehaviorForLaunch = std::function<WorkerBehavior(std::uint64_t launch_index, const ProcessSpec& spec)>;
  // Returns a reason to fail the launch_index-th launch() call with
  // launch_failed (e.g. "No such file or directory"), or nullopt to start it.
  using LaunchFailure =
      std::function<std::optional<std::string>(std::uint64_t launch_index, const ProcessSpec& spec)>;

  // Installs this host as `world`'s process factory, replacing any other.
  explicit SimProcessHost(SimWorld& world);
  ~SimProcessHost();
  SimProcessHost(const SimProcessHost&) = delete;
  SimProcessHost& operator=(const SimProcessHost&) = delete;

  // Sets how later launches behave. The default is WorkerBehavior{}.
  void set_behavior_for_launch(BehaviorForLaunch behavior_for_launch);
  // Shorthand: every later launch behaves as `behavior`.
  void set_behavior(WorkerBehavior behavior);
  // Sets which later launches fail. The default starts every launch.
  void set_launch_failure(LaunchFailure launch_failure);

  // launch() calls so far, failed ones included.
  std::uint64_t launches() const;
  // Processes started and not yet reaped: their Exited event is not yet in
  // their events() channel. Zero after a run means no orphan process.
  std::size_t alive() const;
  // The pids of the processes alive() counts, in ascending order.
  std::vector<std::int64_t> alive_pids() const;
  // Delivers Signal::kill to `pid`, as a test or a chaos task killing a worker
  // from outside the pool. Returns false when no such process is alive.
  bool kill(std::int64_t pid);

  // The caller-read hand-off's branches taken so far by this host's processes.
  CallerReadCounts caller_read_counts() const;
  // Per process name (its ProcessSpec::name, or "proc-PID"): the stderr
  // lines it has sent to its events() channel so far. A process killed
  // before a line sends no more.
  const std::map<std::string, LineDigest>& stderr_sent() const;
  // Adds the nonzero counts to `coverage` as path:caller_read (replies),
  // path:caller_read_declined, path:caller_read_handback,
  // path:caller_read_linger, path:caller_read_linger_expired and
  // path:caller_read_taken_back.
  void add_coverage(OutcomeCounts& coverage) const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace seedpool::sim
