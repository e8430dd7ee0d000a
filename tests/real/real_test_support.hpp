#pragma once

// Helpers for the real-backend tests: programs to run (sh and python3
// one-liners), collecting a process's events until its channel closes, and
// /proc inspection for leaked descriptors, zombies and process groups.
// Deadlines here are hang guards only; no test asserts how long anything took.

#include "support/proc_table.hpp"

#include <seedpool/core/channel.hpp>
#include <seedpool/core/codec.hpp>
#include <seedpool/core/process.hpp>
#include <seedpool/real/real_world.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <sys/types.h>
#include <thread>
#include <unistd.h>
#include <variant>
#include <vector>

namespace seedpool {

// Readable failures. Static, so that other test files may define their own.
static inline void PrintTo(const ExitStatus& status, std::ostream* out) { *out << status.describe(); }
static inline void PrintTo(const Frame& frame, std::ostream* out) {
  *out << "Frame{" << to_string(frame.kind) << ", id " << frame.request_id << ", " << frame.payload.size()
       << " bytes}";
}

namespace real::testing {

using seedpool::testing::all_processes;
using seedpool::testing::is_live;
using seedpool::testing::open_fd_count;
using seedpool::testing::proc_info;
using seedpool::testing::ProcInfo;

// Every wait in these tests gives up after this long: a guard against hangs,
// never a measurement.
inline constexpr Duration hang_guard = seconds(20);

inline constexpr ExitStatus exit_code(int code) { return ExitStatus{false, code, 0}; }
inline constexpr ExitStatus killed_by(int signal) { return ExitStatus{true, 0, signal}; }

inline const char* const python = "/usr/bin/python3";

// /bin/sh -c `script`.
inline ProcessSpec sh(std::string script, std::string name = "sh") {
  ProcessSpec spec;
  spec.program = "/bin/sh";
  spec.args = {"-c", std::move(script)};
  spec.name = std::move(name);
  return spec;
}

// python3 -c `code`.
inline ProcessSpec py(std::string code, std::string name = "py") {
  ProcessSpec spec;
  spec.program = python;
  spec.args = {"-c", std::move(code)};
  spec.name = std::move(name);
  return spec;
}

// A worker that answers every frame with a reply frame carrying its request
// id and payload, and exits with code 0 on a shutdown frame or EOF.
inline const char* const python_echo = R"(
import struct, sys
r = sys.stdin.buffer
w = sys.stdout.buffer
while True:
    head = r.read(4)
    if len(head) < 4:
        break
    (n,) = struct.unpack('>I', head)
    body = r.read(n)
    kind, rid = struct.unpack('>BQ', body[:9])
    if kind == 8:
        break
    payload = body[9:]
    w.write(struct.pack('>IBQ', 9 + len(payload), 4, rid) + payload)
    w.flush()
)";

inline Result<std::unique_ptr<Process>> launch_ok(RealWorld& world, const ProcessSpec& spec) {
  Result<std::unique_ptr<Process>> launched = world.launch(spec);
  EXPECT_TRUE(launched.ok()) << (launched.ok() ? "" : launched.error().describe());
  return launched;
}

// launch_ok's process, or nullptr when the launch failed (already reported).
inline std::unique_ptr<Process> start(RealWorld& world, const ProcessSpec& spec) {
  Result<std::unique_ptr<Process>> launched = launch_ok(world, spec);
  return launched.ok() ? std::move(launched).value() : nullptr;
}

// Receives events until the channel closes. Fails the test if the hang guard
// passes first, or if the events break the contract: exactly one Exited, and
// it is the last event.
inline std::vector<ProcessEvent> collect(RealWorld& world, Process& process) {
  std::vector<ProcessEvent> events;
  const Instant deadline = world.now() + hang_guard;
  for (;;) {
    Received<ProcessEvent> received = process.events().receive(deadline);
    if (received.status == ChannelStatus::closed) {
      break;
    }
    if (received.status != ChannelStatus::ok) {
      ADD_FAILURE() << "no Exited within the hang guard; events so far: " << events.size();
      return events;
    }
    events.push_back(std::move(*received.value));
  }
  EXPECT_FALSE(events.empty());
  if (!events.empty()) {
    EXPECT_TRUE(std::holds_alternative<Exited>(events.back())) << "Exited must be the last event";
  }
  EXPECT_EQ(std::count_if(events.begin(), events.end(),
                          [](const ProcessEvent& e) { return std::holds_alternative<Exited>(e); }),
            1);
  return events;
}

// Receives events until `stop` returns true for one, with the hang guard.
// Returns whether it came; every event received is appended to `seen`.
inline bool receive_until(RealWorld& world, Process& process, const std::function<bool(const ProcessEvent&)>& stop,
                          std::vector<ProcessEvent>& seen) {
  const Instant deadline = world.now() + hang_guard;
  for (;;) {
    Received<ProcessEvent> received = process.events().receive(deadline);
    if (!received) {
      ADD_FAILURE() << "the awaited event did not come (" << to_string(received.status) << ")";
      return false;
    }
    seen.push_back(std::move(*received.value));
    if (stop(seen.back())) {
      return true;
    }
  }
}

inline bool is_stderr_line(const ProcessEvent& event) { return std::holds_alternative<StderrLine>(event); }

inline std::optional<ExitStatus> exit_of(const std::vector<ProcessEvent>& events) {
  if (events.empty() || !std::holds_alternative<Exited>(events.back())) {
    return std::nullopt;
  }
  return std::get<Exited>(events.back()).status;
}

inline std::vector<std::string> stderr_lines(const std::vector<ProcessEvent>& events) {
  std::vector<std::string> lines;
  for (const ProcessEvent& event : events) {
    if (const auto* line = std::get_if<StderrLine>(&event)) {
      lines.push_back(line->line);
    }
  }
  return lines;
}

inline std::vector<Frame> frames(const std::vector<ProcessEvent>& events) {
  std::vector<Frame> out;
  for (const ProcessEvent& event : events) {
    if (const auto* frame = std::get_if<FrameReceived>(&event)) {
      out.push_back(frame->frame);
    }
  }
  return out;
}

inline std::vector<Error> corruptions(const std::vector<ProcessEvent>& events) {
  std::vector<Error> out;
  for (const ProcessEvent& event : events) {
    if (const auto* corrupt = std::get_if<OutputCorrupt>(&event)) {
      out.push_back(corrupt->error);
    }
  }
  return out;
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---------------------------------------------------------------- /proc

// Live (not zombie) processes in process group `pgid`.
inline std::vector<pid_t> live_in_group(pid_t pgid) {
  std::vector<pid_t> out;
  for (const ProcInfo& info : all_processes()) {
    if (info.pgrp == pgid && is_live(info)) {
      out.push_back(info.pid);
    }
  }
  return out;
}

// This process's children that are zombies.
inline std::vector<pid_t> zombie_children() {
  std::vector<pid_t> out;
  for (const ProcInfo& info : all_processes()) {
    if (info.ppid == ::getpid() && info.state == 'Z') {
      out.push_back(info.pid);
    }
  }
  return out;
}

// True while `pid` is a live (not zombie) process.
inline bool alive(pid_t pid) {
  const std::optional<ProcInfo> info = proc_info(pid);
  return info.has_value() && is_live(*info);
}

// Polls `condition` every few milliseconds until it holds or the hang guard
// passes. Returns whether it held. Needs no World, so it also serves after one
// is destroyed.
inline bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(hang_guard.ns());
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace real::testing
}  // namespace seedpool
