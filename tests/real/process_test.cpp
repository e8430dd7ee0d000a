// Real processes through RealWorld: stderr lines, frames both ways, stdout
// corruption, exits and signals, stdin that stops being read, environment and
// working directory, and events that outrun their consumer. Every test checks
// that Exited is the one last event before the channel closes.

#include "real_test_support.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

namespace seedpool::real {
namespace {

using testing::collect;
using testing::contains;
using testing::corruptions;
using testing::exit_code;
using testing::exit_of;
using testing::frames;
using testing::killed_by;
using testing::start;
using testing::sh;
using testing::stderr_lines;

// ---------------------------------------------------------------- stderr

TEST(RealProcessStderr, LinesArriveInOrderAndAFinalPartialLineIsFlushedAtEof) {
  RealWorld world;
  auto process = start(world, sh(R"(printf 'one\ntwo\n\nthree' >&2; exit 3)"));
  ASSERT_TRUE(process);
  const auto events = collect(world, *process);
  EXPECT_EQ(stderr_lines(events), (std::vector<std::string>{"one", "two", "", "three"}));
  EXPECT_EQ(exit_of(events), exit_code(3));
  EXPECT_GT(process->pid(), 0);
}

TEST(RealProcessStderr, InvalidUtf8AndCarriageReturnsPassThroughAsBytes) {
  RealWorld world;
  auto process = start(world, sh(R"(printf '\377\376abc\r\n' >&2)"));
  ASSERT_TRUE(process);
  EXPECT_EQ(stderr_lines(collect(world, *process)), (std::vector<std::string>{"\xff\xfe" "abc\r"}));
}

TEST(RealProcessStderr, ALineLongerThanTheLimitIsCutIntoPieces) {
  RealWorldConfig config;
  config.stderr_line_bytes_max = 1000;
  RealWorld world(config);
  auto process = start(world, testing::py(
      "import sys; sys.stderr.write('a' * 1000 + '\\n' + 'b' * 2500 + '\\n' + 'c' * 1000)"));
  ASSERT_TRUE(process);
  const auto lines = stderr_lines(collect(world, *process));
  EXPECT_EQ(lines, (std::vector<std::string>{std::string(1000, 'a'), std::string(1000, 'b'), std::string(1000, 'b'),
                                             std::string(500, 'b'), std::string(1000, 'c')}));
}

// ---------------------------------------------------------------- frames

TEST(RealProcessFrames, FramesRoundTripThroughAPythonEchoWorker) {
  RealWorld world;
  auto process = start(world, testing::py(testing::python_echo, "echo"));
  ASSERT_TRUE(process);
  std::vector<Frame> sent;
  for (std::uint64_t id = 1; id <= 50; ++id) {
    sent.push_back(Frame{FrameKind::call, id, std::string(id * 37 % 300, static_cast<char>('a' + id % 26))});
  }
  // Larger than any pipe buffer: partial writes on our side, partial reads on the way back.
  sent.push_back(Frame{FrameKind::call, 51, std::string(std::size_t{3} << 20, '\xab')});
  sent.push_back(Frame{FrameKind::call, 52, ""});
  for (const Frame& frame : sent) {
    ASSERT_TRUE(process->write_frame(frame).ok());
  }
  ASSERT_TRUE(process->write_frame(Frame{FrameKind::shutdown, 0, {}}).ok());
  const auto events = collect(world, *process);
  const std::vector<Frame> replies = frames(events);
  ASSERT_EQ(replies.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(replies[i], (Frame{FrameKind::reply, sent[i].request_id, sent[i].payload}));
  }
  EXPECT_TRUE(corruptions(events).empty());
  EXPECT_EQ(exit_of(events), exit_code(0));
}

TEST(RealProcessFrames, EverythingWrittenBeforeExitArrivesBeforeExited) {
  RealWorld world;
  auto process = start(world, testing::py(R"(
import struct, sys
out = b''.join(struct.pack('>IBQ', 9 + 100, 4, i) + b'x' * 100 for i in range(5000))
sys.stdout.buffer.write(out)
sys.stdout.flush()
sys.stderr.write('done')
sys.exit(7)
)"));
  ASSERT_TRUE(process);
  const auto events = collect(world, *process);
  const auto replies = frames(events);
  ASSERT_EQ(replies.size(), 5000u);
  for (std::size_t i = 0; i < replies.size(); ++i) {
    ASSERT_EQ(replies[i].request_id, i);
  }
  EXPECT_EQ(stderr_lines(events), std::vector<std::string>{"done"});
  EXPECT_EQ(exit_of(events), exit_code(7));
}

TEST(RealProcessFrames, GarbageOnStdoutIsOneOutputCorruptAndTheRestIsIgnored) {
  RealWorld world;
  auto process = start(world, sh("echo 'Loading model weights... done'; echo more garbage; echo up >&2; exec sleep 1000"));
  ASSERT_TRUE(process);
  // Wait for the line on stderr: by then both stdout writes have happened.
  std::vector<ProcessEvent> events;
  ASSERT_TRUE(testing::receive_until(world, *process, testing::is_stderr_line, events));
  // The stdout pipe may still hold the bytes; the corruption comes before Exited regardless.
  process->signal(Signal::kill);
  for (ProcessEvent& event : collect(world, *process)) {
    events.push_back(std::move(event));
  }
  const auto errors = corruptions(events);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code, ErrorCode::protocol_error);
  EXPECT_FALSE(errors[0].message.empty());
  EXPECT_TRUE(frames(events).empty());
  EXPECT_EQ(exit_of(events), killed_by(SIGKILL));
}

TEST(RealProcessFrames, AFrameOverTheLimitIsOutputCorrupt) {
  RealWorldConfig config;
  config.frame_bytes_max = 1024;
  RealWorld world(config);
  auto process = start(world, testing::py(
      "import struct, sys; sys.stdout.buffer.write(struct.pack('>IBQ', 9 + 5000, 4, 1) + b'x' * 5000)"));
  ASSERT_TRUE(process);
  const auto events = collect(world, *process);
  const auto errors = corruptions(events);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_TRUE(contains(errors[0].message, "1024")) << errors[0].message;
  EXPECT_EQ(exit_of(events), exit_code(0));
}

TEST(RealProcessFrames, ATruncatedFrameThenExitIsOutputCorruptBeforeExited) {
  RealWorld world;
  auto process = start(world, testing::py(R"(
import struct, sys
frame = struct.pack('>IBQ', 9 + 10, 4, 1) + b'0123456789'
sys.stdout.buffer.write(struct.pack('>IBQ', 9 + 2, 4, 9) + b'ok' + frame[:15])
sys.stdout.flush()
sys.exit(3)
)"));
  ASSERT_TRUE(process);
  const auto events = collect(world, *process);
  ASSERT_EQ(frames(events), (std::vector<Frame>{Frame{FrameKind::reply, 9, "ok"}}));
  const auto errors = corruptions(events);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code, ErrorCode::protocol_error);
  EXPECT_EQ(exit_of(events), exit_code(3));
}

// ---------------------------------------------------------------- exits and signals

TEST(RealProcessExit, KillAndTerminateReachTheProcessAndItsStatusSaysSo) {
  RealWorld world;
  auto killed = start(world, sh("exec sleep 1000"));
  auto terminated = start(world, sh("exec sleep 1000"));
  ASSERT_TRUE(killed && terminated);
  killed->signal(Signal::kill);
  terminated->signal(Signal::terminate);
  EXPECT_EQ(exit_of(collect(world, *killed)), killed_by(SIGKILL));
  EXPECT_EQ(exit_of(collect(world, *terminated)), killed_by(SIGTERM));
  // After the exit: signals are no-ops, writes fail with closed.
  killed->signal(Signal::kill);
  killed->signal(Signal::terminate);
  const Status wrote = killed->write_frame(Frame{FrameKind::call, 1, "late"});
  ASSERT_FALSE(wrote.ok());
  EXPECT_EQ(wrote.error().code, ErrorCode::closed);
  // Which the loop noticed first, the closed pipe or the exit, is a race.
  EXPECT_TRUE(contains(wrote.error().message, "it has exited") || contains(wrote.error().message, "stdin is closed"))
      << wrote.error().message;
}

TEST(RealProcessExit, ExitsAreSeenWithoutAPidfdToo) {
  RealWorldConfig config;
  config.use_pidfd = false;
  RealWorld world(config);
  auto exiting = start(world, sh("echo bye >&2; exit 5"));
  auto killed = start(world, sh("exec sleep 1000"));
  ASSERT_TRUE(exiting && killed);
  const auto events = collect(world, *exiting);
  EXPECT_EQ(stderr_lines(events), std::vector<std::string>{"bye"});
  EXPECT_EQ(exit_of(events), exit_code(5));
  killed->signal(Signal::kill);
  EXPECT_EQ(exit_of(collect(world, *killed)), killed_by(SIGKILL));
  EXPECT_TRUE(testing::zombie_children().empty());
}

// ---------------------------------------------------------------- stdin

TEST(RealProcessStdin, WritingToAProcessThatClosedStdinFailsWithClosed) {
  RealWorld world;
  auto process = start(world, sh("exec 0<&-; echo closed >&2; exec sleep 1000"));
  ASSERT_TRUE(process);
  std::vector<ProcessEvent> seen;
  ASSERT_TRUE(testing::receive_until(world, *process, testing::is_stderr_line, seen));
  const Status wrote = process->write_frame(Frame{FrameKind::call, 1, "anyone?"});
  ASSERT_FALSE(wrote.ok());
  EXPECT_EQ(wrote.error().code, ErrorCode::closed);
  EXPECT_TRUE(contains(wrote.error().message, "stdin is closed")) << wrote.error().message;
  EXPECT_FALSE(process->write_frame(Frame{FrameKind::call, 2, "again"}).ok());
  process->signal(Signal::kill);
  EXPECT_EQ(exit_of(collect(world, *process)), killed_by(SIGKILL));
}

TEST(RealProcessStdin, AProcessThatClosesStdinAndRunsOnIsReportedAsOutputCorrupt) {
  RealWorld world;
  auto process = start(world, sh("exec 0<&-; echo closed >&2; exec sleep 1000"));
  ASSERT_TRUE(process);
  // Nothing is written to it: the closed stdin alone is reported, so that a
  // frame already in the pipe, lost unread with it, is not waited for.
  std::vector<ProcessEvent> seen;
  ASSERT_TRUE(testing::receive_until(
      world, *process, [](const ProcessEvent& e) { return std::holds_alternative<OutputCorrupt>(e); }, seen));
  const std::vector<Error> reported = corruptions(seen);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0].code, ErrorCode::protocol_error);
  EXPECT_TRUE(contains(reported[0].message, "closed its stdin while running")) << reported[0].message;
  EXPECT_FALSE(process->write_frame(Frame{FrameKind::call, 1, "anyone?"}).ok());
  process->signal(Signal::kill);
  const auto rest = collect(world, *process);
  EXPECT_TRUE(corruptions(rest).empty()) << "reported twice";
  EXPECT_EQ(exit_of(rest), killed_by(SIGKILL));
}

TEST(RealProcessStdin, AProcessThatExitsIsNotReportedForItsClosedStdin) {
  // An exiting process closes its stdin an instant before its exit shows:
  // that is an exit, not a broken protocol.
  RealWorld world;
  for (int i = 0; i < 20; ++i) {
    auto process = start(world, sh("echo bye >&2; exit 3"));
    ASSERT_TRUE(process);
    const auto events = collect(world, *process);
    EXPECT_TRUE(corruptions(events).empty()) << corruptions(events).front().message;
    EXPECT_EQ(exit_of(events), exit_code(3));
  }
}

TEST(RealProcessStdin, WritesNeverBlockAndFailOnceTheBufferLimitIsReached) {
  RealWorldConfig config;
  config.stdin_bytes_max = std::size_t{1} << 20;
  RealWorld world(config);
  auto process = start(world, sh("exec sleep 1000"));  // never reads its stdin
  ASSERT_TRUE(process);
  const Frame big{FrameKind::call, 1, std::string(std::size_t{100} << 10, 'x')};
  int accepted = 0;
  Status wrote;
  while ((wrote = process->write_frame(big)).ok()) {
    ASSERT_LT(++accepted, 100) << "writes never failed";
  }
  EXPECT_GE(accepted, 10);  // the limit, at least; plus what the pipe took
  EXPECT_EQ(wrote.error().code, ErrorCode::closed);
  EXPECT_TRUE(contains(wrote.error().message, "stdin_bytes_max")) << wrote.error().message;
  EXPECT_TRUE(process->write_frame(Frame{FrameKind::ping, 2, {}}).ok());  // a small one still fits
  process->signal(Signal::kill);
  EXPECT_EQ(exit_of(collect(world, *process)), killed_by(SIGKILL));
}

// ---------------------------------------------------------------- environment

TEST(RealProcessSpec, EnvironmentAndWorkingDirectoryApply) {
  ::setenv("SEEDPOOL_INHERITED", "from parent", 1);
  ::setenv("SEEDPOOL_OVERRIDDEN", "old", 1);
  RealWorld world;
  ProcessSpec spec = sh(R"(echo "$SEEDPOOL_NEW" >&2; echo "$SEEDPOOL_INHERITED" >&2; echo "$SEEDPOOL_OVERRIDDEN" >&2; pwd >&2)");
  spec.env = {{"SEEDPOOL_NEW", "hello world"}, {"SEEDPOOL_OVERRIDDEN", "first"}, {"SEEDPOOL_OVERRIDDEN", "new"}};
  spec.working_dir = "/usr/share";
  auto process = start(world, spec);
  ASSERT_TRUE(process);
  EXPECT_EQ(stderr_lines(collect(world, *process)),
            (std::vector<std::string>{"hello world", "from parent", "new", "/usr/share"}));
}

TEST(RealProcessSpec, ChildrenStartWithDefaultSignalsAndNoExtraDescriptors) {
  RealWorld world;  // sets SIGPIPE to SIG_IGN in this process
  auto process = start(world, sh("grep -E '^Sig(Ign|Blk)' /proc/self/status >&2; ls /proc/self/fd >&2"));
  ASSERT_TRUE(process);
  const auto lines = stderr_lines(collect(world, *process));
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[0], "SigBlk:\t0000000000000000");
  // Our SIG_IGN for SIGPIPE did not leak. glibc's posix_spawn leaves its two
  // internal signals (32 and 33) ignored and offers no way to reset them; a
  // glibc program installs its own handlers for them anyway.
  ASSERT_TRUE(lines[1].starts_with("SigIgn:\t")) << lines[1];
  const std::uint64_t ignored = std::stoull(lines[1].substr(8), nullptr, 16);
  const std::uint64_t glibc_internal = (std::uint64_t{1} << 31) | (std::uint64_t{1} << 32);
  EXPECT_EQ(ignored & ~glibc_internal, 0u) << lines[1];
  // /proc/self/fd of ls: 0, 1, 2 and the directory ls itself opened.
  EXPECT_EQ(std::vector<std::string>(lines.begin() + 2, lines.end()), (std::vector<std::string>{"0", "1", "2", "3"}));
}

// ---------------------------------------------------------------- back-pressure

TEST(RealProcessEvents, EventsThatOutrunTheConsumerWaitAndArriveInOrder) {
  RealWorldConfig config;
  config.process_events_max = 8;
  RealWorld world(config);
  auto process = start(world, testing::py(R"(
import struct, sys
for i in range(3000):
    sys.stderr.write('line %d\n' % i)
    sys.stdout.buffer.write(struct.pack('>IBQ', 9, 4, i))
sys.stderr.flush()
sys.stdout.flush()
)"));
  ASSERT_TRUE(process);
  world.sleep_for(milliseconds(100));  // let the channel fill; the test passes either way
  const auto events = collect(world, *process);
  const auto lines = stderr_lines(events);
  const auto replies = frames(events);
  ASSERT_EQ(lines.size(), 3000u);
  ASSERT_EQ(replies.size(), 3000u);
  for (std::size_t i = 0; i < 3000; ++i) {
    ASSERT_EQ(lines[i], "line " + std::to_string(i));
    ASSERT_EQ(replies[i].request_id, i);
  }
  EXPECT_EQ(exit_of(events), exit_code(0));
}

}  // namespace
}  // namespace seedpool::real
