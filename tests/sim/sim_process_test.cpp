// Tests for simulated worker processes: the init handshake and its failures,
// calls and every CallAction, pings, shutdown, signals, stdout corruption as
// the real decoder reports it, the "Exited is the last event" contract, launch
// failures, process lifetime beyond its handle, the end of a run with
// processes alive, determinism, and a caller reading the output itself
// (Process::read_output).

#include "support/sim_config.hpp"

#include <seedpool/core/channel.hpp>
#include <seedpool/core/codec.hpp>
#include <seedpool/sim/determinism.hpp>
#include <seedpool/sim/sim_process.hpp>
#include <seedpool/sim/sim_world.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace seedpool {

// Let GoogleTest print frames, exit statuses and instants readably. Static, so
// that other test files may define their own.
static void PrintTo(const Frame& frame, std::ostream* out) {
  *out << "Frame{" << to_string(frame.kind) << ", id " << frame.request_id << ", \"" << frame.payload << "\"}";
}
static void PrintTo(const ExitStatus& status, std::ostream* out) { *out << status.describe(); }
static void PrintTo(Instant instant, std::ostream* out) { *out << "@" << instant.ns() << "ns"; }

namespace sim {

static void PrintTo(Outcome outcome, std::ostream* out) { *out << to_string(outcome); }

namespace {

using namespace seedpool::test;

constexpr ExitStatus exit_code_0{false, 0, 0};
constexpr ExitStatus killed_by_9{true, 0, 9};
constexpr ExitStatus killed_by_15{true, 0, 15};

ProcessSpec worker_spec(std::string name = "worker-1") {
  ProcessSpec spec;
  spec.program = "/usr/bin/python3";
  spec.args = {"-m", "seedpool_worker"};
  spec.name = std::move(name);
  return spec;
}

Frame init_frame(std::uint64_t request_id = 1) {
  return Frame{FrameKind::init, request_id, encode_init_payload(kProtocolVersion, 1)};
}

// Runs `body` in a fresh SimWorld with a SimProcessHost. When the run ends ok,
// checks that it left no process alive: the host outlives the run here.
RunResult run_with_host(const std::function<void(SimWorld&, SimProcessHost&)>& body, std::uint64_t seed = 1) {
  SimConfig config;
  config.seed = seed;
  SimWorld world(config);
  SimProcessHost host(world);
  RunResult run = world.run([&] { body(world, host); });
  if (run.ok()) {
    EXPECT_EQ(host.alive(), 0u) << "a process outlived an ok run";
  }
  return run;
}

std::unique_ptr<Process> launch(SimWorld& world, const ProcessSpec& spec = worker_spec()) {
  Result<std::unique_ptr<Process>> process = world.launch(spec);
  EXPECT_TRUE(process.ok()) << process.error().describe();
  return std::move(process).value();
}

// The next event, waiting as long as it takes. A closed channel is a failure.
ProcessEvent next_event(Process& process) {
  Received<ProcessEvent> received = process.events().receive();
  EXPECT_TRUE(received) << "events() ended: " << to_string(received.status);
  return received ? std::move(*received.value) : ProcessEvent{Exited{}};
}

Frame next_frame(Process& process) {
  ProcessEvent event = next_event(process);
  EXPECT_TRUE(std::holds_alternative<FrameReceived>(event)) << "event index " << event.index();
  return std::holds_alternative<FrameReceived>(event) ? std::get<FrameReceived>(std::move(event)).frame : Frame{};
}

std::string next_stderr(Process& process) {
  ProcessEvent event = next_event(process);
  EXPECT_TRUE(std::holds_alternative<StderrLine>(event)) << "event index " << event.index();
  return std::holds_alternative<StderrLine>(event) ? std::get<StderrLine>(event).line : std::string();
}

Error next_corrupt(Process& process) {
  ProcessEvent event = next_event(process);
  EXPECT_TRUE(std::holds_alternative<OutputCorrupt>(event)) << "event index " << event.index();
  return std::holds_alternative<OutputCorrupt>(event) ? std::get<OutputCorrupt>(event).error : Error{};
}

// Expects Exited as the next event and the channel closed after it; returns
// the exit status.
ExitStatus expect_exit(Process& process) {
  ProcessEvent event = next_event(process);
  EXPECT_TRUE(std::holds_alternative<Exited>(event)) << "event index " << event.index();
  const Received<ProcessEvent> after = process.events().receive();
  EXPECT_EQ(after.status, ChannelStatus::closed);
  return std::holds_alternative<Exited>(event) ? std::get<Exited>(event).status : ExitStatus{};
}

// Launches a worker and completes the init handshake.
std::unique_ptr<Process> start_ready(SimWorld& world, const ProcessSpec& spec = worker_spec()) {
  std::unique_ptr<Process> process = launch(world, spec);
  EXPECT_TRUE(process->write_frame(init_frame()).ok());
  EXPECT_EQ(next_frame(*process), (Frame{FrameKind::ready, 1, {}}));
  return process;
}

// The protocol_error a real reader reports for `bytes` following `prefix`.
std::string decoder_message(const std::string& prefix, const std::string& bytes, bool at_end) {
  FrameDecoder decoder;
  decoder.feed(prefix + bytes);
  for (;;) {
    DecodeResult result = decoder.next();
    if (result.status() == DecodeStatus::error) {
      return to_error(result.error()).message;
    }
    if (result.status() == DecodeStatus::need_more_bytes) {
      break;
    }
  }
  EXPECT_TRUE(at_end);
  const std::optional<DecodeError> error = decoder.at_end_of_stream();
  EXPECT_TRUE(error.has_value());
  return error.has_value() ? to_error(*error).message : std::string();
}

TEST(SimProcess, HandshakeTakesTheStartupTime) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.startup = milliseconds(250);
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = launch(world);
    EXPECT_EQ(process->pid(), first_pid);
    EXPECT_EQ(host.alive_pids(), std::vector<std::int64_t>{first_pid});
    ASSERT_TRUE(process->write_frame(init_frame(7)).ok());
    EXPECT_EQ(next_frame(*process), (Frame{FrameKind::ready, 7, {}}));
    EXPECT_EQ(world.now(), Instant::zero() + milliseconds(250));

    ASSERT_TRUE(process->write_frame(Frame{FrameKind::shutdown, 8, {}}).ok());
    EXPECT_EQ(expect_exit(*process), exit_code_0);
    EXPECT_EQ(world.now(), Instant::zero() + milliseconds(251));
    EXPECT_EQ(host.alive(), 0u);
    EXPECT_EQ(host.launches(), 1u);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, CallIsEchoedAfterTheReplyLatency) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.reply_latency = milliseconds(20);
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = start_ready(world);
    const Instant sent = world.now();
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 11, "hello"}).ok());
    EXPECT_EQ(next_frame(*process), (Frame{FrameKind::reply, 11, "hello"}));
    EXPECT_EQ(world.now() - sent, milliseconds(20));
    process->signal(Signal::kill);
    EXPECT_EQ(expect_exit(*process), killed_by_9);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, OnCallChoosesEachCallsAction) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.on_call = [](std::uint64_t call_index, const Frame& call) {
      CallAction action;
      if (call_index == 0) {
        action.kind = CallAction::Kind::error_frame;
        action.payload = "ValueError: bad input " + call.payload;
      } else {
        action.payload = "answer " + std::to_string(call_index);
        action.latency = seconds(2);
      }
      return action;
    };
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = start_ready(world);
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 2, "x"}).ok());
    EXPECT_EQ(next_frame(*process), (Frame{FrameKind::error, 2, "ValueError: bad input x"}));
    const Instant sent = world.now();
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 3, "y"}).ok());
    EXPECT_EQ(next_frame(*process), (Frame{FrameKind::reply, 3, "answer 1"}));
    EXPECT_EQ(world.now() - sent, seconds(2));
    process->signal(Signal::kill);
    EXPECT_EQ(expect_exit(*process), killed_by_9);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, CrashDuringInitWritesStderrThenExits) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.init = WorkerBehavior::Init::crash;
    behavior.exit_code_on_crash = 3;
    behavior.stderr_on_init = {"importing numpy"};
    behavior.stderr_before_crash = {"Traceback (most recent call last):", "ImportError: no module named numpy"};
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = launch(world);
    ASSERT_TRUE(process->write_frame(init_frame()).ok());
    EXPECT_EQ(next_stderr(*process), "importing numpy");
    EXPECT_EQ(next_stderr(*process), "Traceback (most recent call last):");
    EXPECT_EQ(next_stderr(*process), "ImportError: no module named numpy");
    EXPECT_EQ(expect_exit(*process), (ExitStatus{false, 3, 0}));

    const Status late = process->write_frame(Frame{FrameKind::call, 2, "x"});
    ASSERT_FALSE(late.ok());
    EXPECT_EQ(late.error().code, ErrorCode::closed);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, InitErrorFrameThenExit) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.init = WorkerBehavior::Init::error_frame;
    behavior.init_error = "model file missing";
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = launch(world);
    ASSERT_TRUE(process->write_frame(init_frame(4)).ok());
    EXPECT_EQ(next_frame(*process), (Frame{FrameKind::error, 4, "model file missing"}));
    EXPECT_EQ(expect_exit(*process), (ExitStatus{false, 1, 0}));
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, MalformedFirstFrameIsAnsweredWithAnErrorFrame) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost&) {
    std::unique_ptr<Process> not_init = launch(world);
    ASSERT_TRUE(not_init->write_frame(Frame{FrameKind::call, 5, "x"}).ok());
    const Frame answer = next_frame(*not_init);
    EXPECT_EQ(answer.kind, FrameKind::error);
    EXPECT_EQ(answer.request_id, 5u);
    EXPECT_PRED2(has_text, answer.payload, "expected an init frame first, got a call frame");
    EXPECT_EQ(expect_exit(*not_init), (ExitStatus{false, 1, 0}));

    std::unique_ptr<Process> old_version = launch(world);
    ASSERT_TRUE(old_version->write_frame(Frame{FrameKind::init, 6, encode_init_payload(99, 1)}).ok());
    EXPECT_PRED2(has_text, next_frame(*old_version).payload, "protocol version 99 is not supported");
    EXPECT_EQ(expect_exit(*old_version), (ExitStatus{false, 1, 0}));
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, HangingInitStillDiesOnKill) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.init = WorkerBehavior::Init::hang;
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = launch(world);
    ASSERT_TRUE(process->write_frame(init_frame()).ok());
    const Received<ProcessEvent> nothing = process->events().receive(world.now() + seconds(10));
    EXPECT_EQ(nothing.status, ChannelStatus::timeout);
    EXPECT_EQ(host.alive(), 1u);
    process->signal(Signal::kill);
    EXPECT_EQ(expect_exit(*process), killed_by_9);
    EXPECT_EQ(world.now(), Instant::zero() + seconds(10));
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, KillInterruptsAReplyInProgress) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.reply_latency = hours(1);
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = start_ready(world);
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 2, "slow"}).ok());
    world.sleep_for(seconds(1));
    const Instant killed_at = world.now();
    process->signal(Signal::kill);
    EXPECT_EQ(expect_exit(*process), killed_by_9);
    EXPECT_EQ(world.now(), killed_at);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, PingsAreAnsweredUnlessTheWorkerStopsAnswering) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    host.set_behavior_for_launch([](std::uint64_t launch_index, const ProcessSpec&) {
      WorkerBehavior behavior;
      behavior.answer_pings = launch_index == 0;
      return behavior;
    });
    std::unique_ptr<Process> healthy = start_ready(world);
    const Instant sent = world.now();
    ASSERT_TRUE(healthy->write_frame(Frame{FrameKind::ping, 5, {}}).ok());
    EXPECT_EQ(next_frame(*healthy), (Frame{FrameKind::pong, 5, {}}));
    EXPECT_EQ(world.now() - sent, microseconds(100));

    std::unique_ptr<Process> silent = start_ready(world);
    ASSERT_TRUE(silent->write_frame(Frame{FrameKind::ping, 6, {}}).ok());
    EXPECT_EQ(silent->events().receive(world.now() + seconds(5)).status, ChannelStatus::timeout);
    ASSERT_TRUE(silent->write_frame(Frame{FrameKind::call, 7, "still serving"}).ok());
    EXPECT_EQ(next_frame(*silent), (Frame{FrameKind::reply, 7, "still serving"}));

    healthy->signal(Signal::kill);
    silent->signal(Signal::kill);
    EXPECT_EQ(expect_exit(*healthy), killed_by_9);
    EXPECT_EQ(expect_exit(*silent), killed_by_9);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, ShutdownFrameExitsWithCodeZero) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.shutdown_latency = milliseconds(30);
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = start_ready(world);
    const Instant sent = world.now();
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::shutdown, 9, {}}).ok());
    world.sleep_for(milliseconds(1));    // the program has read the frame: it is exiting
    process->signal(Signal::terminate);  // already exiting: changes nothing
    EXPECT_EQ(expect_exit(*process), exit_code_0);
    EXPECT_EQ(world.now() - sent, milliseconds(30));
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, TerminateExitsAfterTheShutdownLatency) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.shutdown_latency = milliseconds(40);
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = start_ready(world);
    const Instant sent = world.now();
    process->signal(Signal::terminate);
    EXPECT_EQ(expect_exit(*process), killed_by_15);
    EXPECT_EQ(world.now() - sent, milliseconds(40));
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, IgnoredTerminateThenKill) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.ignore_terminate = true;
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = start_ready(world);
    process->signal(Signal::terminate);
    EXPECT_EQ(process->events().receive(world.now() + seconds(5)).status, ChannelStatus::timeout);
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 2, "after terminate"}).ok());
    EXPECT_EQ(next_frame(*process), (Frame{FrameKind::reply, 2, "after terminate"}));
    EXPECT_TRUE(host.kill(process->pid()));
    EXPECT_EQ(expect_exit(*process), killed_by_9);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, GarbageDuringInitIsReportedAsTheRealDecoderWould) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.init = WorkerBehavior::Init::garbage;
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = launch(world);
    ASSERT_TRUE(process->write_frame(init_frame()).ok());
    const Error corrupt = next_corrupt(*process);
    EXPECT_EQ(corrupt.code, ErrorCode::protocol_error);
    EXPECT_PRED2(has_text, corrupt.message, "non-frame output to stdout");
    EXPECT_EQ(corrupt.message, decoder_message({}, "Loading model weights... done\n", false));

    // It keeps running, answering nothing, until the pool kills it.
    EXPECT_EQ(process->events().receive(world.now() + seconds(5)).status, ChannelStatus::timeout);
    EXPECT_EQ(host.alive(), 1u);
    process->signal(Signal::kill);
    EXPECT_EQ(expect_exit(*process), killed_by_9);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, GarbageAfterAReplyCarriesItsStreamOffset) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.on_call = [](std::uint64_t call_index, const Frame&) {
      CallAction action;
      if (call_index == 1) {
        action.kind = CallAction::Kind::garbage;
        action.payload = "\x01\x02\x03";  // shorter than a length field: only EOF tells
      }
      return action;
    };
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = start_ready(world);
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 2, "abc"}).ok());
    EXPECT_EQ(next_frame(*process), (Frame{FrameKind::reply, 2, "abc"}));
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 3, "def"}).ok());
    EXPECT_EQ(process->events().receive(world.now() + seconds(5)).status, ChannelStatus::timeout);
    process->signal(Signal::kill);

    const std::string before = encode_frame(Frame{FrameKind::ready, 1, {}}) +
                               encode_frame(Frame{FrameKind::reply, 2, "abc"});
    const Error corrupt = next_corrupt(*process);
    EXPECT_EQ(corrupt.code, ErrorCode::protocol_error);
    EXPECT_EQ(corrupt.message, decoder_message(before, "\x01\x02\x03", true));
    EXPECT_PRED2(has_text, corrupt.message, "stream offset 29");
    EXPECT_EQ(expect_exit(*process), killed_by_9);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, TruncatedReplyThenExit) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.exit_code_on_crash = 137;
    behavior.stderr_before_crash = {"MemoryError"};
    behavior.on_call = [](std::uint64_t, const Frame&) {
      return CallAction{.kind = CallAction::Kind::truncated_then_exit};
    };
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = start_ready(world);
    const Frame call{FrameKind::call, 2, "a payload of some length"};
    ASSERT_TRUE(process->write_frame(call).ok());
    EXPECT_EQ(next_stderr(*process), "MemoryError");
    const std::string reply = encode_frame(Frame{FrameKind::reply, 2, call.payload});
    const Error corrupt = next_corrupt(*process);
    EXPECT_EQ(corrupt.code, ErrorCode::protocol_error);
    EXPECT_PRED2(has_text, corrupt.message, "stream ended inside a frame");
    EXPECT_EQ(corrupt.message, decoder_message(encode_frame(Frame{FrameKind::ready, 1, {}}),
                                               reply.substr(0, reply.size() / 2), true));
    EXPECT_EQ(expect_exit(*process), (ExitStatus{false, 137, 0}));
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, WrongRequestIdAndCrashDuringACall) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.stderr_before_crash = {"Segmentation fault"};
    behavior.on_call = [](std::uint64_t call_index, const Frame&) {
      switch (call_index) {
        case 0: return CallAction{.kind = CallAction::Kind::wrong_request_id};
        case 1: return CallAction{.kind = CallAction::Kind::wrong_request_id, .payload = "stale", .request_id = 1};
        default: return CallAction{.kind = CallAction::Kind::crash};
      }
    };
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = start_ready(world);
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 10, "p"}).ok());
    EXPECT_EQ(next_frame(*process), (Frame{FrameKind::reply, 11, "p"}));
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 12, "q"}).ok());
    EXPECT_EQ(next_frame(*process), (Frame{FrameKind::reply, 1, "stale"}));
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 13, "r"}).ok());
    EXPECT_EQ(next_stderr(*process), "Segmentation fault");
    EXPECT_EQ(expect_exit(*process), (ExitStatus{false, 1, 0}));
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, StderrOnlyDropsTheCallButKeepsServing) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.on_call = [](std::uint64_t call_index, const Frame&) {
      CallAction action;
      if (call_index == 0) {
        action.kind = CallAction::Kind::stderr_only;
        action.stderr_lines = {"warning: request ignored"};
      }
      return action;
    };
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = start_ready(world);
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 2, "dropped"}).ok());
    EXPECT_EQ(next_stderr(*process), "warning: request ignored");
    EXPECT_EQ(process->events().receive(world.now() + seconds(1)).status, ChannelStatus::timeout);
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 3, "served"}).ok());
    EXPECT_EQ(next_frame(*process), (Frame{FrameKind::reply, 3, "served"}));
    process->signal(Signal::kill);
    EXPECT_EQ(expect_exit(*process), killed_by_9);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, EventsEndWithExactlyOneExitedThenClose) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.stderr_on_init = {"one", "two"};
    behavior.reply_latency = seconds(1);
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = launch(world);
    ASSERT_TRUE(process->write_frame(init_frame()).ok());
    for (std::uint64_t id = 2; id < 6; ++id) {
      ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, id, "x"}).ok());
    }
    world.sleep_for(milliseconds(2500));
    process->signal(Signal::kill);
    process->signal(Signal::terminate);
    process->signal(Signal::kill);
    const std::int64_t pid = process->pid();

    std::vector<ProcessEvent> events;
    for (;;) {
      Received<ProcessEvent> received = process->events().receive(world.now() + seconds(1));
      if (!received) {
        EXPECT_EQ(received.status, ChannelStatus::closed);
        break;
      }
      events.push_back(std::move(*received.value));
    }
    const auto exits = std::count_if(events.begin(), events.end(),
                                     [](const ProcessEvent& event) { return std::holds_alternative<Exited>(event); });
    EXPECT_EQ(exits, 1);
    ASSERT_FALSE(events.empty());
    ASSERT_TRUE(std::holds_alternative<Exited>(events.back()));
    EXPECT_EQ(std::get<Exited>(events.back()).status, killed_by_9);
    EXPECT_EQ(events.size(), 6u);  // stderr "one" and "two", ready, two replies, Exited

    process->signal(Signal::terminate);  // no-op on an exited process
    EXPECT_FALSE(host.kill(pid));
    EXPECT_EQ(process->events().receive().status, ChannelStatus::closed);
    EXPECT_EQ(process->write_frame(Frame{FrameKind::call, 9, "x"}).error().code, ErrorCode::closed);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcess, StdinHoldsAtMostStdinFramesMax) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    WorkerBehavior behavior;
    behavior.init = WorkerBehavior::Init::hang;
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = launch(world);
    for (std::size_t i = 0; i < stdin_frames_max; ++i) {
      ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, i, {}}).ok()) << i;
    }
    const Status full = process->write_frame(Frame{FrameKind::call, 0, {}});
    ASSERT_FALSE(full.ok());
    EXPECT_EQ(full.error().code, ErrorCode::closed);
    EXPECT_PRED2(has_text, full.error().message, "stdin_frames_max");
    process->signal(Signal::kill);
    EXPECT_EQ(expect_exit(*process), killed_by_9);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcessHost, LaunchFailureHookYieldsLaunchFailed) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    host.set_launch_failure([](std::uint64_t launch_index, const ProcessSpec&) -> std::optional<std::string> {
      if (launch_index == 0) {
        return "No such file or directory";
      }
      return std::nullopt;
    });
    const Result<std::unique_ptr<Process>> failed = world.launch(worker_spec());
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code, ErrorCode::launch_failed);
    EXPECT_PRED2(has_text, failed.error().message, "/usr/bin/python3");
    EXPECT_PRED2(has_text, failed.error().message, "No such file or directory");
    EXPECT_EQ(host.launches(), 1u);
    EXPECT_EQ(host.alive(), 0u);

    std::unique_ptr<Process> first = launch(world);
    std::unique_ptr<Process> second = launch(world, worker_spec(""));
    EXPECT_EQ(first->pid(), first_pid);
    EXPECT_EQ(second->pid(), first_pid + 1);
    EXPECT_EQ(host.launches(), 3u);
    EXPECT_EQ(host.alive_pids(), (std::vector<std::int64_t>{first_pid, first_pid + 1}));
    first->signal(Signal::kill);
    second->signal(Signal::kill);
    EXPECT_EQ(expect_exit(*first), killed_by_9);
    EXPECT_EQ(expect_exit(*second), killed_by_9);
  });
  EXPECT_TRUE(run.ok()) << run.summary();
  EXPECT_EQ(run.task_names.at(1), "worker-1");
  EXPECT_EQ(run.task_names.at(2), "proc-1001");
}

TEST(SimProcessHost, ProcessOutlivesItsHandleUntilKilled) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost& host) {
    std::int64_t pid = 0;
    {
      std::unique_ptr<Process> process = start_ready(world);
      pid = process->pid();
    }
    world.sleep_for(seconds(1));
    EXPECT_EQ(host.alive_pids(), std::vector<std::int64_t>{pid});
    EXPECT_TRUE(host.kill(pid));
    world.sleep_for(milliseconds(1));
    EXPECT_EQ(host.alive(), 0u);
    EXPECT_FALSE(host.kill(pid));
  });
  EXPECT_TRUE(run.ok()) << run.summary();
}

TEST(SimProcessHost, AProcessNobodyReapsKeepsTheRunAlive) {
  const RunResult run = run_with_host([](SimWorld& world, SimProcessHost&) {
    std::unique_ptr<Process> process = start_ready(world);
  });
  EXPECT_EQ(run.outcome, Outcome::deadlock) << run.summary();
  EXPECT_PRED2(has_text, run.message, "process 'worker-1' (pid 1000) reads stdin");
  EXPECT_EQ(run.tasks_abandoned, 0u) << "teardown must end the process's task";
}

TEST(SimProcessHost, TeardownEndsProcessesInEveryWait) {
  SimConfig config;
  SimWorld world(config);
  SimProcessHost host(world);
  const RunResult run = world.run([&] {
    WorkerBehavior hanging;
    hanging.init = WorkerBehavior::Init::hang;
    WorkerBehavior slow;
    slow.reply_latency = hours(1);
    host.set_behavior_for_launch([&](std::uint64_t launch_index, const ProcessSpec&) {
      return launch_index == 0 ? hanging : slow;
    });
    std::unique_ptr<Process> hung = launch(world);
    ASSERT_TRUE(hung->write_frame(init_frame()).ok());
    std::unique_ptr<Process> busy = start_ready(world);
    ASSERT_TRUE(busy->write_frame(Frame{FrameKind::call, 2, "x"}).ok());
    std::unique_ptr<Process> starting = launch(world);
    world.sleep_for(milliseconds(10));
    world.fail("stop here");
  });
  EXPECT_EQ(run.outcome, Outcome::invariant) << run.summary();
  EXPECT_EQ(run.tasks_abandoned, 0u);
  EXPECT_EQ(host.alive(), 0u);
}

// Three workers with randomised call outcomes served by concurrent callers:
// a scenario with real interleavings and decisions drawn inside processes.
void busy_scenario(SimWorld& world) {
  auto host = std::make_shared<SimProcessHost>(world);
  host->set_behavior_for_launch([&world](std::uint64_t, const ProcessSpec&) {
    WorkerBehavior behavior;
    behavior.startup = milliseconds(static_cast<std::int64_t>(1 + world.decide(100)));
    behavior.on_call = [&world](std::uint64_t, const Frame&) {
      CallAction action;
      action.latency = microseconds(static_cast<std::int64_t>(world.decide(5000)));
      action.kind = world.decide(4) == 0 ? CallAction::Kind::error_frame : CallAction::Kind::reply;
      return action;
    };
    return behavior;
  });
  for (int w = 0; w < 3; ++w) {
    world.spawn("caller-" + std::to_string(w), [&world, w] {
      std::unique_ptr<Process> process = start_ready(world, worker_spec("worker-" + std::to_string(w)));
      for (std::uint64_t id = 2; id < 12; ++id) {
        ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, id, "job"}).ok());
        EXPECT_EQ(next_frame(*process).request_id, id);
      }
      process->signal(w == 0 ? Signal::kill : Signal::terminate);
      const ExitStatus status = expect_exit(*process);
      EXPECT_TRUE(status.signaled);
    });
  }
}

TEST(SimProcess, SameSeedSameTraceHash) {
  for (const std::uint64_t seed : {1u, 2u, 77u}) {
    SimConfig config;
    config.seed = seed;
    const DeterminismReport report = check_determinism(config, busy_scenario);
    EXPECT_TRUE(report.deterministic) << report.describe();
    const RunResult run = simulate(config, busy_scenario);
    EXPECT_TRUE(run.ok()) << run.summary();
    EXPECT_EQ(run.trace_hash, report.first_hash);
  }
}

TEST(SimProcess, BusyScenarioEndsOkUnderManySchedules) {
  for (const char* strategy : {"random", "pct:3:400"}) {
    for (std::uint64_t seed = 1; seed <= 100; ++seed) {
      SimConfig config;
      config.seed = seed;
      config.strategy = parse_strategy(strategy).value();
      const RunResult run = simulate(config, busy_scenario);
      ASSERT_TRUE(run.ok()) << strategy << " seed " << seed << ": " << run.summary();
    }
  }
}


// The caller-read hand-off (Process::read_output). Each test runs its
// program over many seeds: whether the reader gets the output is decided on
// the decision stream, so every seed checks the contract on whichever side
// the races fell, and the sums show that both sides were reached.

// Takes the reply with one request id, once, and wakes the task waiting for
// it, as the pool's CallLine does.
class OneReply final : public FrameRouter {
 public:
  OneReply(SimWorld& world, std::uint64_t request_id)
      : wanted_(request_id), monitor_(world.make_monitor("one reply")) {}

  bool route(Frame& frame) override {
    {
      MonitorLock lock(*monitor_);
      if (taken_ || frame.kind != FrameKind::reply || frame.request_id != wanted_) {
        return false;
      }
      taken_ = std::move(frame);
    }
    monitor_->notify_all();
    return true;
  }
  bool expecting() const override {
    MonitorLock lock(*monitor_);
    return !taken_.has_value();
  }

  // Waits as CallLine::wait does: reading the output itself where
  // read_output lets it, else for the process's own delivery. Returns the
  // reply, or nullopt at `deadline`. Counts the reads that returned true.
  std::optional<Frame> wait(Process& process, Instant deadline, int& reads) {
    MonitorLock lock(*monitor_);
    while (!taken_) {
      monitor_->unlock();
      const bool read = process.read_output(deadline);
      monitor_->lock();
      if (read) {
        ++reads;
        continue;
      }
      if (!monitor_->wait_until(deadline, "the reply") && !taken_) {
        return std::nullopt;
      }
    }
    return taken_;
  }

 private:
  const std::uint64_t wanted_;
  std::unique_ptr<Monitor> monitor_;
  std::optional<Frame> taken_;
};

constexpr std::uint64_t handoff_seeds = 200;

// Runs `body(world, host, seed)` as the main task of a fresh simulation for
// every seed up to handoff_seeds; each run must end ok. Returns the hosts'
// caller-read counts, summed.
template <typename Body>
CallerReadCounts for_each_handoff_seed(Body body) {
  CallerReadCounts sum;
  for (std::uint64_t seed = 1; seed <= handoff_seeds; ++seed) {
    SimConfig config;
    config.seed = seed;
    SimWorld world(config);
    SimProcessHost host(world);
    const RunResult run = world.run([&] { body(world, host, seed); });
    EXPECT_TRUE(run.ok()) << "seed " << seed << ": " << run.summary();
    const CallerReadCounts counts = host.caller_read_counts();
    sum.replies += counts.replies;
    sum.declined += counts.declined;
    sum.handed_back += counts.handed_back;
    sum.linger += counts.linger;
    sum.linger_expired += counts.linger_expired;
    sum.taken_back += counts.taken_back;
  }
  return sum;
}

TEST(SimProcessReadOutput, TheReaderTakesTheReplyAndKeepsTheOutputForTheNextCall) {
  const CallerReadCounts sum = for_each_handoff_seed([](SimWorld& world, SimProcessHost&, std::uint64_t seed) {
    std::unique_ptr<Process> process = start_ready(world);
    for (std::uint64_t id = 2; id <= 4; ++id) {
      auto router = std::make_shared<OneReply>(world, id);
      process->set_router(router);
      ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, id, "x" + std::to_string(id)}).ok());
      int reads = 0;
      const std::optional<Frame> reply = router->wait(*process, world.now() + seconds(10), reads);
      ASSERT_TRUE(reply.has_value()) << "seed " << seed;
      EXPECT_EQ(*reply, (Frame{FrameKind::reply, id, "x" + std::to_string(id)}));
    }
    // The replies went to the routers, not to events().
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::shutdown, 9, {}}).ok());
    EXPECT_EQ(expect_exit(*process), exit_code_0);
  });
  EXPECT_GT(sum.replies, 0u);
  EXPECT_GT(sum.declined, 0u);
  EXPECT_GT(sum.linger, 0u);
  EXPECT_GT(sum.linger_expired, 0u);
}

TEST(SimProcessReadOutput, FramesTheRouterLeavesReachEventsInStreamOrder) {
  const CallerReadCounts sum = for_each_handoff_seed([](SimWorld& world, SimProcessHost& host, std::uint64_t seed) {
    WorkerBehavior behavior;
    behavior.pong_latency = milliseconds(1);
    behavior.on_call = [](std::uint64_t call_index, const Frame&) {
      CallAction action;
      if (call_index == 0) {
        action.kind = CallAction::Kind::wrong_request_id;  // a stale reply, id 99
        action.request_id = 99;
      } else if (call_index == 1) {
        action.kind = CallAction::Kind::error_frame;
      }
      return action;
    };
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = start_ready(world);
    auto router = std::make_shared<OneReply>(world, 5);
    process->set_router(router);
    // Written in this order, answered in this order; only the last answer
    // is the reply the router waits for.
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 2, "stale"}).ok());
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::ping, 3, {}}).ok());
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 4, "fails"}).ok());
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 5, "wanted"}).ok());
    int reads = 0;
    const std::optional<Frame> reply = router->wait(*process, world.now() + seconds(10), reads);
    ASSERT_TRUE(reply.has_value()) << "seed " << seed;
    EXPECT_EQ(*reply, (Frame{FrameKind::reply, 5, "wanted"}));
    EXPECT_EQ(next_frame(*process), (Frame{FrameKind::reply, 99, "stale"})) << "seed " << seed;
    EXPECT_EQ(next_frame(*process), (Frame{FrameKind::pong, 3, {}})) << "seed " << seed;
    EXPECT_EQ(next_frame(*process), (Frame{FrameKind::error, 4, "simulated call failure"})) << "seed " << seed;
    process->signal(Signal::kill);
    EXPECT_EQ(expect_exit(*process), killed_by_9);
  });
  EXPECT_GT(sum.handed_back, 0u);
}

TEST(SimProcessReadOutput, AnExitEndsTheReadAndExitedStillComesLast) {
  int reads_ended_early = 0;
  (void)for_each_handoff_seed([&reads_ended_early](SimWorld& world, SimProcessHost& host, std::uint64_t seed) {
    WorkerBehavior behavior;
    behavior.stderr_before_crash = {"Traceback (most recent call last):"};
    behavior.on_call = [](std::uint64_t, const Frame&) {
      CallAction action;
      action.kind = CallAction::Kind::truncated_then_exit;
      action.latency = milliseconds(3);
      return action;
    };
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = start_ready(world);
    auto router = std::make_shared<OneReply>(world, 2);
    process->set_router(router);
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 2, "x"}).ok());
    const Instant deadline = world.now() + seconds(10);
    // Read until read_output declines. The half frame is no event, and
    // stderr is not the reader's: only the end of the output ends a read
    // before the deadline.
    bool read = true;
    while (read && world.now() < deadline) {
      read = process->read_output(deadline);
      if (read) {
        EXPECT_LT(world.now(), deadline) << "seed " << seed;
        ++reads_ended_early;
      }
    }
    EXPECT_TRUE(router->expecting());
    EXPECT_EQ(next_stderr(*process), "Traceback (most recent call last):");
    EXPECT_EQ(next_corrupt(*process).code, ErrorCode::protocol_error);
    EXPECT_EQ(expect_exit(*process), (ExitStatus{false, 1, 0}));
  });
  EXPECT_GT(reads_ended_early, 0);
}

TEST(SimProcessReadOutput, AReadEndsAtItsDeadlineAndDeclinesPastIt) {
  int reads_to_deadline = 0;
  (void)for_each_handoff_seed([&reads_to_deadline](SimWorld& world, SimProcessHost& host, std::uint64_t seed) {
    WorkerBehavior behavior;
    behavior.on_call = [](std::uint64_t, const Frame&) { return CallAction{.kind = CallAction::Kind::hang}; };
    host.set_behavior(behavior);
    std::unique_ptr<Process> process = start_ready(world);
    auto router = std::make_shared<OneReply>(world, 2);
    process->set_router(router);
    ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, 2, "x"}).ok());
    const Instant deadline = world.now() + milliseconds(35);
    if (process->read_output(deadline)) {
      EXPECT_EQ(world.now(), deadline) << "seed " << seed;
      ++reads_to_deadline;
    }
    world.sleep_until(deadline);
    EXPECT_FALSE(process->read_output(deadline));
    EXPECT_TRUE(router->expecting());
    process->signal(Signal::kill);
    EXPECT_EQ(expect_exit(*process), killed_by_9);
  });
  EXPECT_GT(reads_to_deadline, 0);
}

TEST(SimProcessReadOutput, ARecordedDecisionListReplaysTheHandOffExactly) {
  const auto body = [](SimWorld& world) {
    SimProcessHost host(world);
    std::unique_ptr<Process> process = start_ready(world);
    for (std::uint64_t id = 2; id <= 6; ++id) {
      auto router = std::make_shared<OneReply>(world, id);
      process->set_router(router);
      ASSERT_TRUE(process->write_frame(Frame{FrameKind::ping, 100 + id, {}}).ok());
      ASSERT_TRUE(process->write_frame(Frame{FrameKind::call, id, "x"}).ok());
      int reads = 0;
      ASSERT_TRUE(router->wait(*process, world.now() + seconds(10), reads).has_value());
    }
    process->signal(Signal::kill);
    while (process->events().receive()) {
    }
  };
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    SimConfig config;
    config.seed = seed;
    const RunResult first = simulate(config, body);
    ASSERT_TRUE(first.ok()) << first.summary();
    config.decisions = first.decisions;
    const RunResult replayed = simulate(config, body);
    ASSERT_TRUE(replayed.ok()) << replayed.summary();
    EXPECT_EQ(replayed.trace_hash, first.trace_hash) << "seed " << seed;
    EXPECT_EQ(replayed.decisions, first.decisions) << "seed " << seed;
  }
}

}  // namespace
}  // namespace sim
}  // namespace seedpool
