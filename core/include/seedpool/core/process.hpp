#pragma once

// A worker process as the pool sees it: frames in, a stream of events out.
// The simulated World and the real one both implement Process; pool code
// cannot tell them apart.

#include <seedpool/core/channel.hpp>
#include <seedpool/core/frame.hpp>
#include <seedpool/core/result.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace seedpool {

struct ProcessSpec {
  std::string program;                                    // path; never run through a shell
  std::vector<std::string> args;                          // argv[1..]
  std::vector<std::pair<std::string, std::string>> env;   // added to the inherited environment
  std::string working_dir;                                // empty: inherit
  std::string name;                                       // for logs and traces, e.g. "worker-3"
};

enum class Signal { terminate, kill };

// How a process ended: an exit code, or the signal that killed it.
struct ExitStatus {
  bool signaled = false;
  int code = 0;    // meaningful when !signaled
  int signal = 0;  // meaningful when signaled

  // "exit code 1" or "killed by signal 9".
  std::string describe() const;
  friend bool operator==(const ExitStatus&, const ExitStatus&) = default;
};

// Events a process produces, in the order they happened.
struct FrameReceived {
  Frame frame;
};
struct StderrLine {
  std::string line;  // without the newline; bytes as written
};
struct OutputCorrupt {
  // protocol_error: the process's stdout broke the frame protocol, or the
  // process closed its stdin and runs on (frames written to it are lost).
  Error error;
};
struct Exited {
  ExitStatus status;
};
using ProcessEvent = std::variant<FrameReceived, StderrLine, OutputCorrupt, Exited>;

// Takes frames as soon as they are decoded, ahead of events(): the pool uses
// it to hand a call's reply straight to the caller waiting for it, without a
// trip through the tasks that read events(). route() runs on whatever thread
// or task decodes the process's stdout (the I/O loop, or in simulation the
// process's own task; or the task waiting in read_output); it must not block.
class FrameRouter {
 public:
  virtual ~FrameRouter() = default;
  // Returns true when it took the frame (it may move from it), which then
  // never appears on events(); false leaves the frame untouched to events().
  virtual bool route(Frame& frame) = 0;
  // Whether it still waits for a frame; a task reading the process's output
  // for it (Process::read_output) stops when it does not.
  virtual bool expecting() const = 0;
};

class Process {
 public:
  virtual ~Process() = default;

  // The operating-system process id (a synthetic one in simulation).
  virtual std::int64_t pid() const = 0;

  // Sends one frame to the process's stdin. Fails with closed when the
  // process no longer reads. By value: an implementation that keeps the
  // frame (a simulated stdin) takes its payload without a copy.
  virtual Status write_frame(Frame frame) = 0;

  // Everything the process emits. Exited is the last event, after which the
  // channel is closed.
  virtual Channel<ProcessEvent>& events() = 0;

  // Delivers a signal to the process's whole process group.
  virtual void signal(Signal signal) = 0;

  // Offers every frame decoded from now on to `router` first (nullptr: no
  // router), in stream order and before Exited. A frame the router takes may
  // overtake events still unread on events(). The process owns the router
  // and drops it once its stdout has ended; a router must therefore not own
  // the process (it may observe it through a weak_ptr), or neither would be
  // freed while the other lived.
  virtual void set_router(std::shared_ptr<FrameRouter> router) = 0;

  // Reads the process's output on the calling task, instead of leaving it
  // to the World's own reader, until a frame has gone to the router, the
  // output ended, or `deadline` passed; everything the router does not take
  // goes on to events() as usual. A task waiting for a reply uses it to be
  // woken by the reply itself. Returns false, without waiting, when it does
  // not do that now: never in this default, and in a World that does (the
  // real one and the simulated one) when another task already reads, output
  // still waits for events(), the deadline passed, or the World's reader got
  // there first. The caller then waits the usual way.
  virtual bool read_output(Instant deadline) {
    (void)deadline;
    return false;
  }
};

}  // namespace seedpool
