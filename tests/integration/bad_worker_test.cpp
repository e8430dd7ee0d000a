// Bad input from workers. Most tests start two workers of which exactly one
// misbehaves (the first to start; its replacement does not), and check that
// the fault fails only that worker's call, with a clear, typed error, while
// the other worker keeps serving on its lease, and that the pool replaces the
// bad worker and serves again. A worker that closes its stdin is failed at
// once, whether or not a call was lost in its pipe. Programs that cannot be started at all fail
// start() with launch_failed naming the path and the reason.

#include "integration/integration_support.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>
#include <string>

namespace seedpool::integration {
namespace {

// The start both python3 workers below share: frame reading on stdin, pings
// and shutdown (control), and the handshake (init answered with ready).
constexpr const char* handshake_code = R"(
import struct, sys, time
r, w = sys.stdin.buffer, sys.stdout.buffer
def read_frame():
    head = r.read(13)
    if len(head) < 13:
        sys.exit(0)
    length, kind, rid = struct.unpack(">IBQ", head)
    return kind, rid, r.read(length - 9)
def control(kind, rid):
    if kind == 6:
        w.write(struct.pack(">IBQ", 9, 7, rid))
        w.flush()
    elif kind == 8:
        sys.exit(0)
kind, rid, _ = read_frame()
w.write(struct.pack(">IBQ", 9, 2, rid))
w.flush()
)";

// A worker that completes the handshake, then answers its first call with a
// frame the protocol forbids, chosen by argv[1]: "...oversized" announces a
// 100 MiB frame; "...unknown-kind" sends kind 42. It then sleeps until killed,
// keeping its stdout open so that only the frame itself can be to blame.
const std::string bad_frame_code = std::string(handshake_code) + R"(
mode = sys.argv[1]
while True:
    kind, rid, payload = read_frame()
    if kind == 3:
        if mode.endswith("oversized"):
            w.write(struct.pack(">IBQ", 100 * 1024 * 1024, 4, rid) + b"x" * 1000)
        else:
            w.write(struct.pack(">IBQ", 9 + len(payload), 42, rid) + payload)
        w.flush()
        sys.stderr.write("bad frame written for request %d\n" % rid)
        sys.stderr.flush()
        time.sleep(3600)
    else:
        control(kind, rid)
)";

// A worker that answers one call and exits right after its reply: the next
// checkout can be handed a worker that is already gone.
const std::string one_reply_code = std::string(handshake_code) + R"(
while True:
    kind, rid, payload = read_frame()
    if kind == 3:
        w.write(struct.pack(">IBQ", 9 + len(payload), 4, rid) + payload)
        w.flush()
        sys.exit(0)
    else:
        control(kind, rid)
)";

class BadWorker : public PoolIntegrationTest {
 protected:
  // Runs the scenario described at the top of the file with `bad` as the
  // misbehaving program. When `ready_line` is set, calls wait until some
  // worker has written it to stderr. Returns the bad call's error, or nothing
  // when the scenario itself failed (already reported).
  std::optional<Error> one_bad_worker(const WorkerCommand& bad, std::string_view ready_line = {});
};

std::optional<Error> BadWorker::one_bad_worker(const WorkerCommand& bad, std::string_view ready_line) {
  start_pool(config("bad-input", first_start_runs(scratch_dir() + "/claimed", bad, echo_command()), 2));
  if (HasFatalFailure()) {
    return std::nullopt;
  }
  const std::vector<pid_t> started = worker_pids("");
  EXPECT_EQ(started.size(), 2u) << describe(children());
  std::set<pid_t> groups(started.begin(), started.end());
  if (!ready_line.empty()) {
    EXPECT_TRUE(eventually(world(), [&] { return recorder_.line_with(ready_line).has_value(); }))
        << "no worker wrote '" << ready_line << "'";
  }

  Result<Lease> first = pool().checkout();
  Result<Lease> second = pool().checkout();
  if (!first.ok() || !second.ok()) {
    ADD_FAILURE() << "could not lease both workers: "
                  << (first.ok() ? second.error().describe() : first.error().describe());
    return std::nullopt;
  }
  Result<std::string> to_first = first.value().call("to the first worker");
  Result<std::string> to_second = second.value().call("to the second worker");
  if (to_first.ok() == to_second.ok()) {
    ADD_FAILURE() << "exactly one worker should have failed its call; first: "
                  << (to_first.ok() ? to_first.value() : to_first.error().describe())
                  << "; second: " << (to_second.ok() ? to_second.value() : to_second.error().describe());
    return std::nullopt;
  }
  Lease& good = to_first.ok() ? first.value() : second.value();
  EXPECT_EQ(to_first.ok() ? to_first.value() : to_second.value(),
            to_first.ok() ? "to the first worker" : "to the second worker");
  const Error error = to_first.ok() ? to_second.error() : to_first.error();

  // The good worker is untouched: same process, still serving its lease.
  std::optional<pid_t> good_pid;
  EXPECT_TRUE(eventually(world(), [&] {
    good_pid = recorder_.echo_pid_of(good.worker());
    return good_pid.has_value();
  }));
  for (int i = 0; i < 5; ++i) {
    Result<std::string> r = good.call("still serving " + std::to_string(i));
    EXPECT_TRUE(r.ok()) << r.error().describe();
    EXPECT_TRUE(!r.ok() || r.value() == "still serving " + std::to_string(i));
  }
  first.value().release();
  second.value().release();

  // The bad worker is replaced; the good one was never stopped.
  EXPECT_TRUE(eventually(world(), [&] { return pool().stats().worker_exits >= 1; }));
  EXPECT_TRUE(settles_at(2));
  EXPECT_EQ(pool().stats().worker_exits, 1u) << "only the bad worker should have exited";
  const std::vector<pid_t> after = worker_pids("");
  groups.insert(after.begin(), after.end());
  if (good_pid) {
    EXPECT_EQ(std::count(after.begin(), after.end(), *good_pid), 1) << "the good worker " << *good_pid << " is gone";
  }
  for (int i = 0; i < 10; ++i) {
    const std::string payload = "after the replacement " + std::to_string(i);
    Result<std::string> r = pool().execute(payload);
    EXPECT_TRUE(r.ok()) << r.error().describe();
    EXPECT_TRUE(!r.ok() || r.value() == payload);
  }
  shutdown_and_check(groups);
  return error;
}

TEST_F(BadWorker, GarbageOnStdoutIsAProtocolErrorForThatWorkerOnly) {
  const std::optional<Error> error = one_bad_worker(echo_command({"--garbage-after", "1"}));
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, ErrorCode::protocol_error) << error->describe();
  EXPECT_TRUE(contains(error->message, "broke the protocol")) << error->describe();
  EXPECT_TRUE(contains(error->message, "exceeds frame_bytes_max")) << error->describe();
  EXPECT_TRUE(contains(error->message, "non-frame output to stdout")) << error->describe();
}

TEST_F(BadWorker, OversizedFrameIsAProtocolErrorForThatWorkerOnly) {
  const std::optional<Error> error =
      one_bad_worker(python_code(bad_frame_code, "seedpool-bad-oversized"));
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, ErrorCode::protocol_error) << error->describe();
  EXPECT_TRUE(contains(error->message, "frame of 104857604 bytes exceeds frame_bytes_max 16777216"))
      << error->describe();
}

TEST_F(BadWorker, UnknownFrameKindIsAProtocolErrorForThatWorkerOnly) {
  const std::optional<Error> error = one_bad_worker(python_code(bad_frame_code, "seedpool-bad-unknown-kind"));
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, ErrorCode::protocol_error) << error->describe();
  EXPECT_TRUE(contains(error->message, "unknown frame kind 42")) << error->describe();
}

TEST_F(BadWorker, TruncatedFrameThenExitIsAProtocolErrorForThatWorkerOnly) {
  const std::optional<Error> error = one_bad_worker(echo_command({"--truncate-after", "1"}));
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, ErrorCode::protocol_error) << error->describe();
  EXPECT_TRUE(contains(error->message, "stream ended inside a frame")) << error->describe();
  EXPECT_TRUE(eventually(world(), [&] { return recorder_.line_with("(--truncate-after)").has_value(); }));
}

TEST_F(BadWorker, WrongRequestIdIsAProtocolErrorNamingBothIds) {
  const std::optional<Error> error = one_bad_worker(echo_command({"--wrong-id-after", "1"}));
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, ErrorCode::protocol_error) << error->describe();
  // Request id 1 is the init frame's; the first call is 2, and the worker
  // answered it as 3.
  EXPECT_TRUE(contains(error->message, "unexpected reply frame with request id 3")) << error->describe();
  EXPECT_TRUE(contains(error->message, "the call in flight has request id 2")) << error->describe();
}

TEST_F(BadWorker, InvalidUtf8OnStderrIsKeptAsBytesAndReportedWithTheCrash) {
  const std::optional<Error> error = one_bad_worker(echo_command({"--stderr-bytes", "20000", "--crash-after", "1"}));
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, ErrorCode::worker_crashed) << error->describe();
  EXPECT_TRUE(contains(error->message, "exit code 1")) << error->describe();
  const std::string& tail = error->stderr_tail;
  EXPECT_TRUE(contains(tail, "crashed on purpose at call 1")) << error->describe();
  EXPECT_TRUE(contains(tail, "junk \xff\xfe text")) << "the tail lost the invalid UTF-8 bytes";
  using namespace std::string_view_literals;
  EXPECT_TRUE(contains(tail, "nul \0 cut"sv)) << "the tail lost the NUL byte";
  // The log sink received the same bytes, line by line.
  std::size_t junk_lines = 0;
  for (const auto& [worker, line] : recorder_.lines()) {
    if (contains(line, "\xed\xa0\x80")) {
      ++junk_lines;
    }
  }
  EXPECT_GT(junk_lines, 100u);
}

// A worker that completes the handshake, waits until a frame is in its stdin
// pipe, then closes stdin without reading it and sleeps: the call written to
// it is lost unread.
constexpr const char* close_stdin_code = R"(
import os, select, struct, sys, time
def read_exactly(n):
    data = b""
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data
length, kind, rid = struct.unpack(">IBQ", read_exactly(13))
read_exactly(length - 9)
os.write(1, struct.pack(">IBQ", 9, 2, rid))
select.select([0], [], [])
os.close(0)
sys.stderr.write("closed stdin with a frame unread\n")
sys.stderr.flush()
time.sleep(3600)
)";

TEST_F(BadWorker, ACallLostInAStdinTheWorkerClosedFailsAtOnceNotAtItsDeadline) {
  PoolConfig c = config("closes-stdin",
                        first_start_runs(scratch_dir() + "/claimed", python_code(close_stdin_code, "seedpool-closes-stdin"),
                                         echo_command()),
                        1);
  c.call_timeout = hang_guard;  // a call that waits for it has been swallowed
  start_pool(c);
  ASSERT_FALSE(HasFatalFailure());
  Result<std::string> lost = pool().execute("into a closed stdin");
  ASSERT_FALSE(lost.ok()) << "the worker answered: " << lost.value();
  EXPECT_EQ(lost.error().code, ErrorCode::protocol_error) << lost.error().describe();
  EXPECT_TRUE(contains(lost.error().message, "closed its stdin while running")) << lost.error().describe();
  EXPECT_TRUE(contains(lost.error().stderr_tail, "closed stdin with a frame unread")) << lost.error().describe();
  EXPECT_TRUE(settles_at(1));
  Result<std::string> served = pool().execute("to the replacement");
  EXPECT_TRUE(served.ok()) << served.error().describe();
  shutdown_and_check();
}

TEST_F(BadWorker, WorkerThatClosesStdinIsReplacedWithoutWaitingForACall) {
  start_pool(config("closes-stdin", first_start_runs(scratch_dir() + "/claimed", echo_command({"--close-stdin"}),
                                                     echo_command()),
                    1));
  ASSERT_FALSE(HasFatalFailure());
  // It can take no frame, not even shutdown: the pool replaces it unasked.
  EXPECT_TRUE(eventually(world(), [&] { return pool().stats().worker_exits >= 1; }));
  EXPECT_TRUE(settles_at(1));
  EXPECT_EQ(pool().stats().total(pool().stats().calls), 0u);
  EXPECT_TRUE(recorder_.line_with("closed stdin").has_value());
  for (int i = 0; i < 3; ++i) {
    Result<std::string> r = pool().execute("served " + std::to_string(i));
    EXPECT_TRUE(r.ok()) << r.error().describe();
  }
  shutdown_and_check();
}

class UnstartableWorker : public PoolIntegrationTest {
 protected:
  // Starts a pool whose program cannot run; returns start()'s error.
  Error start_fails(const std::string& program) {
    PoolConfig c = config("unstartable", WorkerCommand{program, {}, {}, {}}, 1);
    c.breaker_failures = 3;
    create_pool(c);
    if (HasFatalFailure()) {
      return Error{};
    }
    const Status started = pool().start(world().now() + hang_guard);
    EXPECT_FALSE(started.ok()) << "a pool of '" << program << "' started";
    EXPECT_TRUE(children().empty()) << describe(children());
    Result<Lease> lease = pool().checkout();
    EXPECT_FALSE(lease.ok()) << "a checkout got a worker of '" << program << "'";
    if (!lease.ok()) {
      EXPECT_EQ(lease.error().code, ErrorCode::pool_unavailable) << "with the breaker open, checkouts fail fast";
    }
    shutdown_and_check();
    return started.ok() ? Error{} : started.error();
  }
};

TEST_F(UnstartableWorker, MissingExecutableFailsStartWithThePathAndTheReason) {
  const std::string program = "/nonexistent/seedpool-integration/no-such-worker";
  const Error error = start_fails(program);
  EXPECT_EQ(error.code, ErrorCode::launch_failed) << error.describe();
  EXPECT_TRUE(contains(error.message, program)) << error.describe();
  EXPECT_TRUE(contains(error.message, "No such file or directory")) << error.describe();
  EXPECT_EQ(pool().stats().count(pool().stats().inits, "launch_failed"), 3u);
}

TEST_F(UnstartableWorker, NonExecutableFileFailsStartWithThePathAndTheReason) {
  const std::string program = scratch_dir() + "/not-executable";
  std::ofstream(program) << "#!/bin/sh\nexit 0\n";
  ASSERT_EQ(::chmod(program.c_str(), 0644), 0);
  const Error error = start_fails(program);
  EXPECT_EQ(error.code, ErrorCode::launch_failed) << error.describe();
  EXPECT_TRUE(contains(error.message, program)) << error.describe();
  EXPECT_TRUE(contains(error.message, "Permission denied")) << error.describe();
}

// Every call is counted once under what its caller saw, also a call that
// fails on a worker that died between the checkout and the call: the stats'
// calls add up to the calls made, outcome by outcome.
TEST_F(PoolIntegrationTest, CallAccountingIsExactWhenWorkersDieBetweenCheckoutAndCall) {
  PoolConfig c = config("one-reply", python_code(one_reply_code, "seedpool-one-reply"), 2);
  c.restart_backoff_base = milliseconds(1);
  c.restart_backoff_max = milliseconds(10);
  c.breaker_failures = 1000;
  start_pool(c);
  ASSERT_FALSE(HasFatalFailure());
  constexpr int calls = 20;
  std::map<std::string, std::uint64_t> seen;
  std::mutex seen_lock;
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < calls / 4; ++i) {
        const std::string payload = "p" + std::to_string(t) + "." + std::to_string(i);
        Result<std::string> r = pool().execute(payload);
        EXPECT_TRUE(!r.ok() || r.value() == payload);
        const std::lock_guard<std::mutex> hold(seen_lock);
        ++seen[r.ok() ? "ok" : std::string(to_string(r.error().code))];
      }
    });
  }
  for (std::thread& caller : callers) {
    caller.join();
  }
  const PoolStats stats = pool().stats();
  EXPECT_EQ(stats.total(stats.calls), static_cast<std::uint64_t>(calls));
  for (const auto& [outcome, n] : seen) {
    EXPECT_EQ(stats.count(stats.calls, outcome), n) << outcome;
  }
  std::string outcomes;
  for (const auto& [outcome, n] : seen) {
    outcomes += " " + outcome + "=" + std::to_string(n);
  }
  std::printf("calls by outcome:%s\n", outcomes.c_str());
  EXPECT_GT(seen["ok"], 0u);
  shutdown_and_check();
}

}  // namespace
}  // namespace seedpool::integration
