// A worker task starts one worker process and owns its event stream: it
// launches the process, runs the init handshake under init_timeout, reports
// the outcome to the pool, then forwards every event until the process exits.
//
// The starter has exactly one source of input while it waits for ready: the
// process's own events, with the init deadline. Cancellation (pool shutdown)
// reaches it as the process's exit after the pool kills it, so no message of
// the pool's can be swallowed by the handshake, and every event it can meet
// is handled by name below.

#include "shared.hpp"

#include <seedpool/core/codec.hpp>

#include <fmt/compile.h>
#include <fmt/format.h>

namespace seedpool::detail {
namespace {

constexpr std::uint64_t init_request_id = 1;

// What one process event means during the handshake.
struct HandshakeStep {
  enum class Kind { wait, ready, failed, exited } kind = Kind::wait;
  Error error;
};

class Handshake {
 public:
  Handshake(PoolShared& shared, WorkerRef worker) : shared_(shared), worker_(worker) {}

  HandshakeStep operator()(const FrameReceived& event) const {
    const Frame& frame = event.frame;
    if (frame.kind == FrameKind::ready && frame.request_id == init_request_id) {
      return {HandshakeStep::Kind::ready, {}};
    }
    if (frame.kind == FrameKind::error && frame.request_id == init_request_id) {
      return failed(ErrorCode::worker_error, fmt::format("answered init with an error: {}", frame.payload));
    }
    return failed(ErrorCode::protocol_error,
                  fmt::format("sent {} frame with request id {} instead of ready to init (request id {})",
                              with_article(frame.kind), frame.request_id, init_request_id));
  }

  HandshakeStep operator()(const StderrLine& event) const {
    // Kept by the pool for the stderr tail; the handshake goes on.
    (void)shared_.post(WorkerEvent{worker_, event});
    return {};
  }

  HandshakeStep operator()(const OutputCorrupt& event) const {
    return failed(ErrorCode::protocol_error, fmt::format("broke the protocol during init: {}", event.error.message));
  }

  HandshakeStep operator()(const Exited& event) const {
    HandshakeStep step = failed(ErrorCode::worker_crashed,
                                fmt::format("exited during init ({})", event.status.describe()));
    step.kind = HandshakeStep::Kind::exited;
    return step;
  }

 private:
  HandshakeStep failed(ErrorCode code, std::string what) const {
    return {HandshakeStep::Kind::failed,
            Error{code, fmt::format("worker {} of pool '{}' ({}) {}", worker_.to_string(), shared_.config.name,
                                    shared_.config.command.program, what),
                  {}}};
  }

  PoolShared& shared_;
  WorkerRef worker_;
};

ProcessSpec spec_for(const PoolConfig& config, WorkerRef worker) {
  ProcessSpec spec;
  spec.program = config.command.program;
  spec.args = config.command.args;
  spec.env = config.command.env;
  spec.working_dir = config.command.working_dir;
  spec.name = fmt::format(FMT_COMPILE("{}/{}"), config.name, worker.to_string());
  return spec;
}

enum class InitOutcome { ready, failed_running, failed_exited };

// Runs the handshake and reports its outcome to the pool. A worker that
// failed but still runs has been sent a kill; its exit follows later.
InitOutcome handshake(PoolShared& shared, WorkerRef worker, Process& process, Instant deadline) {
  const Handshake handle(shared, worker);
  while (true) {
    Received<ProcessEvent> received = process.events().receive(deadline);
    if (received.status == ChannelStatus::timeout) {
      process.signal(Signal::kill);
      (void)shared.post(WorkerInitFailed{
          worker, Error{ErrorCode::timeout,
                        fmt::format("worker {} of pool '{}' ({}) did not answer init within {} ms",
                                    worker.to_string(), shared.config.name, shared.config.command.program,
                                    shared.config.init_timeout.ns() / 1'000'000),
                        {}}});
      return InitOutcome::failed_running;
    }
    SEEDPOOL_ASSERT_MSG(received.status == ChannelStatus::ok, "process events closed without an Exited event");
    const HandshakeStep step = std::visit(handle, *received.value);
    switch (step.kind) {
      case HandshakeStep::Kind::wait: continue;
      case HandshakeStep::Kind::ready: (void)shared.post(WorkerReady{worker}); return InitOutcome::ready;
      case HandshakeStep::Kind::failed:
        process.signal(Signal::kill);
        (void)shared.post(WorkerInitFailed{worker, step.error});
        return InitOutcome::failed_running;
      case HandshakeStep::Kind::exited:
        // The failure first, then the exit itself: the exit is always the
        // last thing the pool hears of a worker.
        (void)shared.post(WorkerInitFailed{worker, step.error});
        (void)shared.post(WorkerEvent{worker, std::move(*received.value)});
        return InitOutcome::failed_exited;
    }
  }
}

}  // namespace

void run_worker_task(const std::shared_ptr<PoolShared>& shared, WorkerRef worker, std::uint64_t uid) {
  World& world = shared->world;
  const Instant deadline = world.now() + shared->config.init_timeout;
  Result<std::unique_ptr<Process>> launched = world.launch(spec_for(shared->config, worker));
  if (!launched) {
    (void)shared->post(WorkerLaunchFailed{worker, launched.error()});
    return;
  }
  std::shared_ptr<Process> process = std::move(launched).value();
  (void)shared->post(WorkerLaunched{worker, process});

  InitOutcome outcome = InitOutcome::failed_running;
  const Status wrote = process->write_frame(
      Frame{FrameKind::init, init_request_id, encode_init_payload(kProtocolVersion, uid)});
  if (wrote) {
    outcome = handshake(*shared, worker, *process, deadline);
  } else {
    process->signal(Signal::kill);
    (void)shared->post(WorkerInitFailed{
        worker, Error{ErrorCode::worker_crashed,
                      fmt::format("worker {} did not accept the init frame: {}", worker.to_string(),
                                  wrote.error().message),
                      {}}});
  }
  // Forward everything else until the exit, which is always the last event.
  bool exited = outcome == InitOutcome::failed_exited;
  while (!exited) {
    Received<ProcessEvent> received = process->events().receive();
    if (received.status == ChannelStatus::timeout) {
      return;  // only while a simulation tears down: waits without deadline fail at once
    }
    SEEDPOOL_ASSERT_MSG(received.status == ChannelStatus::ok, "process events closed without an Exited event");
    exited = std::holds_alternative<Exited>(*received.value);
    if (!shared->post(WorkerEvent{worker, std::move(*received.value)})) {
      return;
    }
  }
}

}  // namespace seedpool::detail
