// Simulated worker processes: the shared process state, the Process handle
// the pool holds, the program each process runs as a SimWorld task, and the
// host that launches them.

#include <seedpool/core/assert.hpp>
#include <seedpool/core/codec.hpp>
#include <seedpool/sim/sim_process.hpp>

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <string_view>
#include <utility>

namespace seedpool::sim {
namespace {

constexpr int sigterm = 15;
constexpr int sigkill = 9;

// What a worker writes to stdout for a garbage fault without a payload: a
// stray print(), the usual way a real worker breaks the frame protocol.
constexpr std::string_view garbage_default = "Loading model weights... done\n";
constexpr std::string_view call_error_default = "simulated call failure";

ExitStatus exited_with_code(int code) { return ExitStatus{false, code, 0}; }
ExitStatus killed_by(int signal) { return ExitStatus{true, 0, signal}; }

// Thrown inside a program task when a kill ends the program at an output
// (see SimProgram::emit). Every other end of a program — a signal heeded at
// a wait, a crash, a clean exit — returns up the program's call chain
// instead: a process exits dozens of times per run, and unwinding by
// exception cost each exit some 20,000 instructions. It never leaves the
// task: SimProgram::run catches it.
struct ProgramExit {
  ExitStatus status;
};

// The worker's stdout as the pool's reader sees it. Whole frames pass
// straight through as FrameReceived. Once bytes that are not whole frames are
// written (or a frame above the decoder's limit), the rest of the stream goes
// through a FrameDecoder, as in the real backend, so a corruption is reported
// with the real message and its offset in the whole stream. The limit is the
// default frame_bytes_max; a pool configured otherwise sees the same bytes.
class StdoutStream {
 public:
  // Appends to `out` the events the reader produces for `frame`.
  void write_frame(Frame frame, std::vector<ProcessEvent>& out) {
    if (!decoder_.has_value() && encoded_frame_bytes(frame) <= kFrameBytesMaxDefault) {
      offset_ += encoded_frame_bytes(frame);
      out.emplace_back(FrameReceived{std::move(frame)});
      return;
    }
    write_bytes(encode_frame(frame), out);
  }

  // Appends to `out` the events the reader produces for raw `bytes`: frames,
  // then OutputCorrupt when the bytes break the protocol. Reports at most one
  // corruption; the stream is then dead, as the real reader's decoder is.
  void write_bytes(std::string_view bytes, std::vector<ProcessEvent>& out) {
    if (!decoder_.has_value()) {
      decoder_.emplace(kFrameBytesMaxDefault);
    }
    decoder_->feed(bytes);
    for (;;) {
      DecodeResult result = decoder_->next();
      if (result.status() == DecodeStatus::frame) {
        out.emplace_back(FrameReceived{std::move(result).frame()});
      } else {
        if (result.status() == DecodeStatus::error) {
          report(result.error(), out);
        }
        return;
      }
    }
  }

  // Appends to `out` an OutputCorrupt when the stream ends inside a frame.
  void close(std::vector<ProcessEvent>& out) {
    if (!decoder_.has_value()) {
      return;
    }
    if (std::optional<DecodeError> error = decoder_->at_end_of_stream()) {
      report(*error, out);
    }
  }

 private:
  void report(DecodeError error, std::vector<ProcessEvent>& out) {
    if (reported_) {
      return;
    }
    reported_ = true;
    error.stream_offset += offset_;
    out.emplace_back(OutputCorrupt{to_error(error)});
  }

  std::uint64_t offset_ = 0;  // bytes passed through before the decoder took over
  std::optional<FrameDecoder> decoder_;
  bool reported_ = false;
};

// Who reads a process's stdout. The real World's hand-off (real/src/
// stdout_handoff.hpp) has more states because the loop must also re-arm and
// close descriptors; these are the ones the pool can tell apart.
enum class StdoutHolder : std::uint8_t {
  // The process's own task delivers its output, as the real I/O loop does:
  // each frame to the router first, else to events().
  program,
  // A task waiting for a call's reply reads it (Process::read_output): what
  // the program writes waits in ProcessState::stdout_unread for that task.
  caller,
  // The last reader took its reply and kept the output for the next call,
  // which claims it directly; the program's next write takes it back (the
  // real loop takes it back after caller_read_linger).
  kept,
};

bool stdout_move_legal(StdoutHolder from, StdoutHolder to) {
  switch (from) {
    case StdoutHolder::program: return to == StdoutHolder::caller;
    case StdoutHolder::caller: return to == StdoutHolder::program || to == StdoutHolder::kept;
    case StdoutHolder::kept: return to == StdoutHolder::caller || to == StdoutHolder::program;
  }
  return false;
}

// Why a caller reading a process's output waits; static, as wait reasons
// must outlive the wait.
constexpr std::string_view caller_read_reason = "a caller reads the process's stdout for its reply";

// What the Process handle, the host and the program task share. SimWorld
// runs every task on one thread; the monitor serves for waiting, and is held
// around every access to the fields it guards so the code reads as it would
// with real threads.
struct ProcessState {
  ProcessState(SimWorld& world_in, std::int64_t pid_in, std::string name_in,
               std::shared_ptr<CallerReadCounts> counts_in)
      : world(world_in),
        pid(pid_in),
        name(std::move(name_in)),
        // Compiled formats: every launch builds these, and the run-time
        // format parser was most of their cost.
        stdin_reason(fmt::format(FMT_COMPILE("process '{}' (pid {}) reads stdin"), name, pid)),
        sleep_reason(fmt::format(FMT_COMPILE("process '{}' (pid {}) works"), name, pid)),
        hang_reason(fmt::format(FMT_COMPILE("process '{}' (pid {}) hangs"), name, pid)),
        monitor(world.make_monitor(fmt::format(FMT_COMPILE("{} stdin"), name))),
        events(world, fmt::format(FMT_COMPILE("{} events"), name), process_events_max),
        counts(std::move(counts_in)) {}

  // With `monitor` held: passes stdout to `to`, a legal move from the holder.
  void hand_stdout_to(StdoutHolder to) {
    SEEDPOOL_ASSERT(stdout_holder != to);
    SEEDPOOL_ASSERT_MSG(stdout_move_legal(stdout_holder, to), "illegal stdout hand-off move");
    stdout_holder = to;
  }

  // With `monitor` held: output a reader left, or wrote for a reader that
  // gave up before reading it, waits for the program's task to deliver it.
  bool output_waits_locked() const {
    return !handed_back.empty() || (stdout_holder != StdoutHolder::caller && !stdout_unread.empty());
  }

  SimWorld& world;
  const std::int64_t pid;
  const std::string name;
  // Wait reasons must outlive the wait; deadlock reports quote them.
  const std::string stdin_reason;
  const std::string sleep_reason;
  const std::string hang_reason;

  std::unique_ptr<Monitor> monitor;  // guards the fields up to handed_back
  std::deque<Frame> stdin_frames;
  bool stdin_closed = false;
  bool kill_pending = false;
  bool terminate_pending = false;
  std::optional<ExitStatus> exit_status;  // set once the program has exited
  StdoutHolder stdout_holder = StdoutHolder::program;  // changed only through hand_stdout_to
  // Written by the program while a caller reads, in stream order, for that
  // caller to read; at most stdout_unread_max. Vectors, not deques: most
  // processes never fill them, and an empty vector allocates nothing.
  std::vector<ProcessEvent> stdout_unread;
  // Read by a caller and left by the router (a pong, an error frame, a stale
  // reply, a corruption report): the program's task delivers them to
  // events() before any later output, so nothing overtakes them.
  std::vector<ProcessEvent> handed_back;

  Channel<ProcessEvent> events;
  std::shared_ptr<FrameRouter> router;  // offered each frame before `events`
  bool reaped = false;                  // Exited is in `events`
  const std::shared_ptr<CallerReadCounts> counts;  // the host's, shared by its processes
  std::shared_ptr<std::map<std::string, LineDigest>> stderr_sent;  // the host's, by process name
};

// Queues `frame` on the process's stdin. Writing is process I/O, so it is a
// scheduling point.
Status write_stdin(ProcessState& state, Frame frame) {
  state.world.yield();
  MonitorLock lock(*state.monitor);
  if (state.stdin_closed) {
    return Error{ErrorCode::closed,
                 fmt::format("cannot write {} frame to process '{}' (pid {}): it has exited or been killed",
                             with_article(frame.kind), state.name, state.pid),
                 {}};
  }
  if (state.stdin_frames.size() >= stdin_frames_max) {
    return Error{ErrorCode::closed,
                 fmt::format("cannot write {} frame to process '{}' (pid {}): {} frames are unread "
                             "(stdin_frames_max); the process has stopped reading",
                             with_article(frame.kind), state.name, state.pid, state.stdin_frames.size()),
                 {}};
  }
  state.stdin_frames.push_back(std::move(frame));
  state.monitor->notify_all();
  return {};
}

// Delivers `signal` unless the process has already exited. Returns whether it
// was delivered. A kill also closes stdin at once: the process is gone.
bool deliver_signal(ProcessState& state, Signal signal) {
  state.world.yield();
  MonitorLock lock(*state.monitor);
  if (state.exit_status.has_value()) {
    return false;
  }
  if (signal == Signal::kill) {
    state.kill_pending = true;
    state.stdin_closed = true;
  } else {
    state.terminate_pending = true;
  }
  state.monitor->notify_all();
  return true;
}

// The handle the pool holds. It shares the process state, so the process
// keeps running, and stays visible to the host, after the handle is gone.
class SimProcess final : public Process {
 public:
  explicit SimProcess(std::shared_ptr<ProcessState> state) : state_(std::move(state)) {}

  std::int64_t pid() const override { return state_->pid; }
  Status write_frame(Frame frame) override { return write_stdin(*state_, std::move(frame)); }
  Channel<ProcessEvent>& events() override { return state_->events; }
  void signal(Signal signal) override { static_cast<void>(deliver_signal(*state_, signal)); }
  void set_router(std::shared_ptr<FrameRouter> router) override { state_->router = std::move(router); }
  bool read_output(Instant deadline) override;

 private:
  // With the monitor held: whether read_output may try to take the output.
  bool may_claim_locked(Instant deadline) const;
  // With the monitor held: takes the output, or declines as the real hand-off
  // can (see the class comment of SimProcessHost).
  bool claim_locked();
  // With the monitor held, as the holder: reads until the reply is taken, a
  // frame is left for events(), the output is taken back or ends, or
  // `deadline`. Returns whether the router took a frame.
  bool read_locked(FrameRouter& router, Instant deadline);

  std::shared_ptr<ProcessState> state_;
};

bool SimProcess::may_claim_locked(Instant deadline) const {
  const ProcessState& state = *state_;
  // Output the program has not delivered yet must reach events() first, as
  // the real reader declines while the loop has events waiting.
  return !state.exit_status.has_value() && state.router != nullptr && !state.world.tearing_down() &&
         state.stdout_holder != StdoutHolder::caller && state.stdout_unread.empty() && state.handed_back.empty() &&
         state.world.now() < deadline;
}

bool SimProcess::claim_locked() {
  ProcessState& state = *state_;
  if (state.stdout_holder == StdoutHolder::kept) {
    // 0: the linger passed before this call came, and the loop took the
    // output back; the call then races the loop's interest as any other.
    if (state.world.decide(2) == 1) {
      ++state.counts->linger;
      state.hand_stdout_to(StdoutHolder::caller);
      return true;
    }
    ++state.counts->linger_expired;
    state.hand_stdout_to(StdoutHolder::program);
  }
  // 0: the caller finds the loop already reading (its oneshot interest
  // fired: nothing left to disarm), leaves the output to it and waits the
  // usual way, as without the hand-off.
  if (state.world.decide(2) == 0) {
    ++state.counts->declined;
    return false;
  }
  state.hand_stdout_to(StdoutHolder::caller);
  return true;
}

bool SimProcess::read_locked(FrameRouter& router, Instant deadline) {
  ProcessState& state = *state_;
  bool routed = false;
  for (;;) {
    if (state.stdout_holder != StdoutHolder::caller || state.world.tearing_down()) {
      return routed;  // the process exited, or delivered what came as this read gave up
    }
    if (!state.stdout_unread.empty()) {
      // One read's worth, as the real reader decodes it: the router takes
      // its reply; everything else goes back to events() in order.
      for (ProcessEvent& event : state.stdout_unread) {
        auto* received = std::get_if<FrameReceived>(&event);
        if (received != nullptr && router.route(received->frame)) {
          routed = true;
        } else {
          state.handed_back.push_back(std::move(event));
        }
      }
      state.stdout_unread.clear();
      if (routed || !state.handed_back.empty()) {
        return routed;
      }
    }
    const Instant now = state.world.now();
    if (!router.expecting() || now >= deadline) {
      return routed;
    }
    static_cast<void>(state.monitor->wait_until(std::min(deadline, now + caller_read_slice), caller_read_reason));
  }
}

bool SimProcess::read_output(Instant deadline) {
  ProcessState& state = *state_;
  MonitorLock lock(*state.monitor);
  if (!may_claim_locked(deadline)) {
    return false;
  }
  // Held for the read: the pool drops the router once the process exits.
  const std::shared_ptr<FrameRouter> router = state.router;
  if (!router->expecting()) {
    return true;  // the process delivered the reply first: nothing to wait for
  }
  if (!claim_locked()) {
    return false;
  }
  const bool routed = read_locked(*router, deadline);
  if (routed) {
    ++state.counts->replies;
  }
  if (state.stdout_holder == StdoutHolder::caller) {
    // Kept for the next call only after a clean reply, as the real reader
    // keeps it only when it leaves the loop nothing to do.
    state.hand_stdout_to(routed && state.handed_back.empty() ? StdoutHolder::kept : StdoutHolder::program);
  }
  if (!state.handed_back.empty()) {
    ++state.counts->handed_back;
    state.monitor->notify_all();  // the program's task delivers them
  }
  return true;
}

// The message of an error frame answering a first frame that is not a valid
// init frame, or nullopt when it is one.
std::optional<std::string> init_problem(const Frame& frame) {
  if (frame.kind != FrameKind::init) {
    return fmt::format("expected an init frame first, got {} frame", with_article(frame.kind));
  }
  Result<InitInfo> info = parse_init_payload(frame.payload);
  if (!info.ok()) {
    return fmt::format("bad init payload: {}", info.error().message);
  }
  if (info.value().protocol_version != kProtocolVersion) {
    return fmt::format("protocol version {} is not supported; this worker speaks version {}",
                       info.value().protocol_version, kProtocolVersion);
  }
  return std::nullopt;
}

// The program a simulated process runs as its task: one frame at a time, as
// a real single-threaded worker. It ends only by exiting, and then emits
// exactly one Exited as its last event.
//
// A signal can end a real process between any two instructions. Here every
// step that can end the program returns false once it has (exit_ then holds
// how), and its caller returns at once, up to run(); an output, the one step
// that cannot return so, throws ProgramExit instead.
class SimProgram {
 public:
  SimProgram(std::shared_ptr<ProcessState> state, WorkerBehavior behavior)
      : state_(std::move(state)), behavior_(std::move(behavior)) {}

  // The task body. Returns once Exited is emitted and the channels are closed.
  void run() {
    try {
      serve();
    } catch (const ProgramExit& exit) {
      exit_ = exit.status;
    }
    SEEDPOOL_ASSERT(exit_.has_value());
    finish(*exit_);
  }

 private:
  enum class StdinUse : std::uint8_t { ignore, read };

  // Returns once the program has exited.
  void serve() {
    if (!pause(behavior_.startup) || !initialize()) {
      return;
    }
    for (;;) {
      std::optional<Frame> frame = next_frame();
      if (!frame || !handle(*frame)) {
        return;
      }
    }
  }

  [[nodiscard]] bool initialize();
  // A frame read is answered once: these may move its payload into the answer.
  [[nodiscard]] bool handle(Frame& frame);
  [[nodiscard]] bool handle_call(Frame& call);
  [[nodiscard]] bool act(const CallAction& action, Frame& call);

  // The payload of a reply to `call`: the action's own, or the call's echoed.
  static std::string reply_payload(const CallAction& action, Frame& call) {
    return action.payload.has_value() ? *action.payload : std::move(call.payload);
  }
  [[nodiscard]] bool await(Instant deadline, StdinUse use, std::string_view reason, std::optional<Frame>& frame);
  void finish(ExitStatus status);

  // Ends the program with `status`; returns false, for `return ended(...)`.
  [[nodiscard]] bool ended(ExitStatus status) {
    SEEDPOOL_ASSERT(!exit_.has_value());
    exit_ = status;
    return false;
  }

  // The next frame on stdin; nullopt once the program has exited.
  std::optional<Frame> next_frame() {
    std::optional<Frame> frame;
    while (await(Instant::max(), StdinUse::read, state_->stdin_reason, frame)) {
      if (frame.has_value()) {
        return frame;
      }
    }
    return std::nullopt;
  }

  // Works for `duration` without reading stdin; signals still end it.
  [[nodiscard]] bool pause(Duration duration) {
    std::optional<Frame> none;
    const bool running = await(state_->world.now() + duration, StdinUse::ignore, state_->sleep_reason, none);
    SEEDPOOL_ASSERT(!none.has_value());
    return running;
  }

  // Reads and answers nothing more; only a signal ends it. Returns false.
  [[nodiscard]] bool hang() {
    std::optional<Frame> none;
    while (await(Instant::max(), StdinUse::ignore, state_->hang_reason, none)) {
    }
    return false;
  }

  [[nodiscard]] bool crash() {
    write_stderr(behavior_.stderr_before_crash);
    return ended(exited_with_code(behavior_.exit_code_on_crash));
  }

  // A shutdown frame or a heeded terminate: the last words, then the exit
  // after shutdown_latency.
  [[nodiscard]] bool stop(ExitStatus status) {
    write_stderr(behavior_.stderr_on_stop);
    return exit_after(behavior_.shutdown_latency, status);
  }

  // Exits with `status` after `latency`, during which only a kill (which
  // wins) is heeded: a second terminate does not restart the clock.
  [[nodiscard]] bool exit_after(Duration latency, ExitStatus status) {
    exiting_ = true;
    return pause(latency) && ended(status);
  }

  // Ends the program if it has been killed or the simulation is over.
  void check_alive() {
    MonitorLock lock(*state_->monitor);
    if (state_->world.tearing_down() || state_->kill_pending) {
      throw ProgramExit{killed_by(sigkill)};
    }
  }

  void emit(ProcessEvent event) {
    check_alive();
    if (!std::holds_alternative<StderrLine>(event)) {
      if (state_->router && std::holds_alternative<FrameReceived>(event)) {
        // Delivering output is a scheduling point whichever way it goes.
        state_->world.yield();
        check_alive();
      }
      if (write_for_reader(event)) {
        return;
      }
      deliver_waiting();
      if (route(event)) {
        return;
      }
    }
    send(std::move(event));
  }

  // Offers `event` to the router, which may take it.
  bool route(ProcessEvent& event) {
    auto* received = std::get_if<FrameReceived>(&event);
    return received != nullptr && state_->router && state_->router->route(received->frame);
  }

  void send(ProcessEvent event) {
    // A stderr line counts as sent once the channel took it.
    LineDigest* digest = nullptr;
    LineDigest with_line;
    if (const auto* line = std::get_if<StderrLine>(&event); line != nullptr) {
      digest = &(*state_->stderr_sent)[state_->name];
      with_line = *digest;
      with_line.add(line->line);
    }
    if (state_->events.send(std::move(event)) != ChannelStatus::ok) {
      throw ProgramExit{killed_by(sigkill)};  // only during teardown, when waits fail at once
    }
    if (digest != nullptr) {
      *digest = with_line;
    }
  }

  // Leaves stdout `event` to the caller reading the output, if one does and
  // still reads when it comes. Returns false when this task delivers it.
  bool write_for_reader(ProcessEvent& event) {
    ProcessState& state = *state_;
    MonitorLock lock(*state.monitor);
    switch (state.stdout_holder) {
      case StdoutHolder::program: return false;
      case StdoutHolder::kept:
        // Output no caller reads: the loop takes the output back (in
        // production once the linger passes, which this does not wait out).
        state.hand_stdout_to(StdoutHolder::program);
        return false;
      case StdoutHolder::caller: break;
    }
    // 0: the reader's wait ended (its poll slice, its deadline) just as the
    // frame came, and the loop reads it, as without a reader. 1: the reader
    // gets it.
    if (state.stdout_unread.size() >= stdout_unread_max || state.world.decide(2) == 0) {
      ++state.counts->taken_back;
      state.hand_stdout_to(StdoutHolder::program);
      state.monitor->notify_all();  // the reader stops
      return false;
    }
    state.stdout_unread.push_back(std::move(event));
    state.monitor->notify_all();  // the reader reads it
    return true;
  }

  // Delivers, in stream order and ahead of any later output, what a reader
  // left to events() and then what was written for a reader that stopped
  // before reading it. A no-op while a caller reads.
  void deliver_waiting() {
    ProcessState& state = *state_;
    std::vector<ProcessEvent> left;
    std::vector<ProcessEvent> unread;
    {
      MonitorLock lock(*state.monitor);
      if (!state.output_waits_locked()) {
        return;
      }
      left.swap(state.handed_back);
      if (state.stdout_holder != StdoutHolder::caller) {
        unread.swap(state.stdout_unread);
      }
    }
    for (ProcessEvent& event : left) {
      send(std::move(event));  // the router saw it already
    }
    for (ProcessEvent& event : unread) {
      if (!route(event)) {
        send(std::move(event));
      }
    }
  }

  void emit_pending() {
    for (ProcessEvent& event : pending_) {
      emit(std::move(event));
    }
    pending_.clear();
  }

  void write_stderr(const std::vector<std::string>& lines) {
    for (const std::string& line : lines) {
      emit(StderrLine{line});
    }
  }

  void write_frame(Frame frame) {
    pending_.clear();
    stdout_.write_frame(std::move(frame), pending_);
    emit_pending();
  }

  void write_bytes(std::string_view bytes) {
    pending_.clear();
    stdout_.write_bytes(bytes, pending_);
    emit_pending();
  }

  std::shared_ptr<ProcessState> state_;
  const WorkerBehavior behavior_;
  StdoutStream stdout_;
  std::vector<ProcessEvent> pending_;  // events of one stdout write
  std::uint64_t calls_ = 0;
  bool exiting_ = false;  // a shutdown or terminate is under way
  std::optional<ExitStatus> exit_;  // set once the program has exited
};

// Reads the first frame and answers it as behavior_.init says. Returns true
// when the worker is ready.
bool SimProgram::initialize() {
  const std::optional<Frame> first = next_frame();
  if (!first) {
    return false;
  }
  if (first->kind == FrameKind::shutdown) {
    return stop(exited_with_code(0));
  }
  if (std::optional<std::string> problem = init_problem(*first)) {
    write_frame(Frame{FrameKind::error, first->request_id, std::move(*problem)});
    return ended(exited_with_code(behavior_.exit_code_on_crash));
  }
  write_stderr(behavior_.stderr_on_init);
  switch (behavior_.init) {
    case WorkerBehavior::Init::ready:
      write_frame(Frame{FrameKind::ready, first->request_id, {}});
      return true;
    case WorkerBehavior::Init::error_frame:
      write_frame(Frame{FrameKind::error, first->request_id, behavior_.init_error});
      return ended(exited_with_code(behavior_.exit_code_on_crash));
    case WorkerBehavior::Init::crash:
      return crash();
    case WorkerBehavior::Init::hang:
      return hang();
    case WorkerBehavior::Init::garbage:
      write_bytes(garbage_default);
      return hang();
  }
  SEEDPOOL_ASSERT_MSG(false, "unknown WorkerBehavior::Init");
  return false;
}

bool SimProgram::handle(Frame& frame) {
  switch (frame.kind) {
    case FrameKind::call:
      return handle_call(frame);
    case FrameKind::ping:
      if (behavior_.answer_pings) {
        if (!pause(behavior_.pong_latency)) {
          return false;
        }
        write_frame(Frame{FrameKind::pong, frame.request_id, {}});
      }
      return true;
    case FrameKind::shutdown:
      return stop(exited_with_code(0));
    case FrameKind::init:
    case FrameKind::ready:
    case FrameKind::reply:
    case FrameKind::error:
    case FrameKind::pong:
      write_frame(Frame{FrameKind::error, frame.request_id,
                        fmt::format("unexpected {} frame after init", to_string(frame.kind))});
      return true;
  }
  SEEDPOOL_ASSERT_MSG(false, "a frame of unknown kind reached a simulated process");
  return false;
}

bool SimProgram::handle_call(Frame& call) {
  const std::uint64_t call_index = calls_++;
  const CallAction action = behavior_.on_call ? behavior_.on_call(call_index, call) : CallAction{};
  write_stderr(action.stderr_lines);
  if (action.kind == CallAction::Kind::hang) {
    return hang();
  }
  return pause(action.latency.value_or(behavior_.reply_latency)) && act(action, call);
}

bool SimProgram::act(const CallAction& action, Frame& call) {
  switch (action.kind) {
    case CallAction::Kind::reply:
      write_frame(Frame{FrameKind::reply, call.request_id, reply_payload(action, call)});
      return true;
    case CallAction::Kind::error_frame:
      write_frame(Frame{FrameKind::error, call.request_id,
                        action.payload.value_or(std::string(call_error_default))});
      return true;
    case CallAction::Kind::crash:
      return crash();
    case CallAction::Kind::hang:
      return hang();
    case CallAction::Kind::garbage:
      write_bytes(action.payload.has_value() ? std::string_view(*action.payload) : garbage_default);
      return hang();
    case CallAction::Kind::truncated_then_exit: {
      std::string bytes = encode_frame(Frame{FrameKind::reply, call.request_id, reply_payload(action, call)});
      bytes.resize(bytes.size() / 2);
      write_bytes(bytes);
      return crash();
    }
    case CallAction::Kind::wrong_request_id:
      write_frame(Frame{FrameKind::reply, action.request_id.value_or(call.request_id + 1),
                        reply_payload(action, call)});
      return true;
    case CallAction::Kind::stray_pong:
      write_frame(Frame{FrameKind::pong, action.request_id.value_or(call.request_id + 1000), {}});
      write_frame(Frame{FrameKind::reply, call.request_id, reply_payload(action, call)});
      return true;
    case CallAction::Kind::stderr_only:
      return true;
  }
  SEEDPOOL_ASSERT_MSG(false, "unknown CallAction::Kind");
  return false;
}

// Waits until `deadline` passes (`frame` is then nullopt) or, when reading,
// a frame arrives (into `frame`). Handles signals meanwhile: a kill, or the
// end of the simulation, ends the program; a heeded terminate ends it after
// shutdown_latency. Returns false once the program has ended.
bool SimProgram::await(Instant deadline, StdinUse use, std::string_view reason, std::optional<Frame>& frame) {
  ProcessState& state = *state_;
  frame.reset();
  {
    MonitorLock lock(*state.monitor);
    for (;;) {
      if (state.world.tearing_down() || state.kill_pending) {
        return ended(killed_by(sigkill));
      }
      if (std::exchange(state.terminate_pending, false) && !behavior_.ignore_terminate && !exiting_) {
        break;
      }
      if (state.output_waits_locked()) {
        // A reader left output for events() while this task waits: a real
        // worker's pipe does not wait for the worker to write again.
        state.monitor->unlock();
        deliver_waiting();
        state.monitor->lock();
        continue;
      }
      if (use == StdinUse::read && !state.stdin_frames.empty()) {
        frame = std::move(state.stdin_frames.front());
        state.stdin_frames.pop_front();
        return true;
      }
      if (state.world.now() >= deadline) {
        return true;
      }
      static_cast<void>(state.monitor->wait_until(deadline, reason));
    }
  }
  return stop(killed_by(sigterm));
}

// Closes stdin, reports a stream that ended inside a frame, then emits the
// one Exited and closes the events channel. Signals from here on are no-ops.
void SimProgram::finish(ExitStatus status) {
  ProcessState& state = *state_;
  std::vector<ProcessEvent> left;
  std::vector<ProcessEvent> unread;
  {
    MonitorLock lock(*state.monitor);
    SEEDPOOL_ASSERT(!state.exit_status.has_value());
    state.exit_status = status;
    state.stdin_closed = true;
    state.stdin_frames.clear();
    // The end of the output ends a caller's read; what it left, and what it
    // had not read yet, still comes before Exited.
    if (state.stdout_holder != StdoutHolder::program) {
      state.hand_stdout_to(StdoutHolder::program);
    }
    left.swap(state.handed_back);
    unread.swap(state.stdout_unread);
    state.monitor->notify_all();
  }
  pending_.clear();
  for (ProcessEvent& event : left) {
    pending_.push_back(std::move(event));
  }
  for (ProcessEvent& event : unread) {
    if (!route(event)) {
      pending_.push_back(std::move(event));
    }
  }
  stdout_.close(pending_);
  pending_.emplace_back(Exited{status});
  state.router.reset();  // stdout is closed: no frame can follow
  for (ProcessEvent& event : pending_) {
    // Fails only during teardown, or if a consumer closed the channel itself.
    static_cast<void>(state.events.send(std::move(event)));
  }
  pending_.clear();
  state.events.close();
  SEEDPOOL_ASSERT(!state.reaped);
  state.reaped = true;
  state.world.note("sim_process exit", static_cast<std::uint64_t>(state.pid));
}

}  // namespace

// The host's bookkeeping, shared with the world's process factory so that
// launches keep working if the host object goes away first.
struct SimProcessHost::State {
  explicit State(SimWorld& world_in) : world(world_in) {}

  Result<std::unique_ptr<Process>> launch(const ProcessSpec& spec);

  SimWorld& world;
  BehaviorForLaunch behavior_for_launch;
  LaunchFailure launch_failure;
  std::uint64_t launches = 0;
  std::int64_t next_pid = first_pid;
  // Started processes in pid order; reaped ones are dropped at the next launch.
  std::vector<std::shared_ptr<ProcessState>> processes;
  // Shared with every process, which may outlive the host.
  std::shared_ptr<CallerReadCounts> caller_read_counts = std::make_shared<CallerReadCounts>();
  std::shared_ptr<std::map<std::string, LineDigest>> stderr_sent =
      std::make_shared<std::map<std::string, LineDigest>>();
};

Result<std::unique_ptr<Process>> SimProcessHost::State::launch(const ProcessSpec& spec) {
  const std::uint64_t launch_index = launches++;
  if (launch_failure) {
    if (std::optional<std::string> reason = launch_failure(launch_index, spec)) {
      return Error{ErrorCode::launch_failed, fmt::format("cannot launch '{}': {}", spec.program, *reason), {}};
    }
  }
  WorkerBehavior behavior = behavior_for_launch ? behavior_for_launch(launch_index, spec) : WorkerBehavior{};
  const std::int64_t pid = next_pid++;
  std::string name = spec.name.empty() ? fmt::format(FMT_COMPILE("proc-{}"), pid) : spec.name;
  auto process = std::make_shared<ProcessState>(world, pid, name, caller_read_counts);
  process->stderr_sent = stderr_sent;
  std::erase_if(processes, [](const std::shared_ptr<ProcessState>& p) { return p->reaped; });
  processes.push_back(process);
  world.note("sim_process launch", static_cast<std::uint64_t>(pid));
  world.spawn(std::move(name), [process, behavior = std::move(behavior)]() mutable {
    SimProgram program(std::move(process), std::move(behavior));
    program.run();
  });
  return std::unique_ptr<Process>(std::make_unique<SimProcess>(process));
}

SimProcessHost::SimProcessHost(SimWorld& world) : state_(std::make_shared<State>(world)) {
  world.set_process_factory([state = state_](SimWorld& launching_world, const ProcessSpec& spec) {
    SEEDPOOL_ASSERT(&launching_world == &state->world);
    return state->launch(spec);
  });
}

SimProcessHost::~SimProcessHost() = default;

void SimProcessHost::set_behavior_for_launch(BehaviorForLaunch behavior_for_launch) {
  state_->behavior_for_launch = std::move(behavior_for_launch);
}

void SimProcessHost::set_behavior(WorkerBehavior behavior) {
  state_->behavior_for_launch = [behavior = std::move(behavior)](std::uint64_t, const ProcessSpec&) {
    return behavior;
  };
}

void SimProcessHost::set_launch_failure(LaunchFailure launch_failure) {
  state_->launch_failure = std::move(launch_failure);
}

std::uint64_t SimProcessHost::launches() const { return state_->launches; }

std::size_t SimProcessHost::alive() const {
  return static_cast<std::size_t>(std::count_if(state_->processes.begin(), state_->processes.end(),
                                                [](const auto& process) { return !process->reaped; }));
}

std::vector<std::int64_t> SimProcessHost::alive_pids() const {
  std::vector<std::int64_t> pids;
  for (const auto& process : state_->processes) {
    if (!process->reaped) {
      pids.push_back(process->pid);
    }
  }
  SEEDPOOL_ASSERT(std::is_sorted(pids.begin(), pids.end()));
  return pids;
}

CallerReadCounts SimProcessHost::caller_read_counts() const { return *state_->caller_read_counts; }

const std::map<std::string, LineDigest>& SimProcessHost::stderr_sent() const { return *state_->stderr_sent; }

void SimProcessHost::add_coverage(OutcomeCounts& coverage) const {
  const CallerReadCounts& counts = *state_->caller_read_counts;
  const std::pair<std::string_view, std::uint64_t> paths[] = {
      {"path:caller_read", counts.replies},
      {"path:caller_read_declined", counts.declined},
      {"path:caller_read_handback", counts.handed_back},
      {"path:caller_read_linger", counts.linger},
      {"path:caller_read_linger_expired", counts.linger_expired},
      {"path:caller_read_taken_back", counts.taken_back},
  };
  for (const auto& [key, count] : paths) {
    if (count != 0) {
      coverage[std::string(key)] += count;
    }
  }
}

bool SimProcessHost::kill(std::int64_t pid) {
  for (const auto& process : state_->processes) {
    if (process->pid == pid && !process->reaped) {
      // Delivery is a scheduling point that may reshape `processes`; hold
      // the process itself, not a reference into the vector.
      const std::shared_ptr<ProcessState> target = process;
      return deliver_signal(*target, Signal::kill);
    }
  }
  return false;
}

}  // namespace seedpool::sim
