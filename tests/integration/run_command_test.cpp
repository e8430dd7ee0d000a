// The `seedpool run` command driven as a user drives it: the built binary
// with the echo worker (or a small script worker), its stdin, its signals,
// its exit status and what it prints. Every test checks, after the command
// exited, that none of its workers is left running.
//
// Times are never measured against tight bounds: a bound is what the command
// was configured with plus generous slack, and only catches a command that
// waits for something else entirely (an init timeout, the end of its input).

#include "integration/integration_support.hpp"
#include "integration/run_tool.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cctype>
#include <cstdio>
#include <chrono>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <regex>
#include <string>
#include <vector>

namespace seedpool::integration {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

// `seedpool run <options...> -- <worker...>`.
std::vector<std::string> run_args(std::vector<std::string> options, std::vector<std::string> worker = {echo_worker}) {
  std::vector<std::string> args{"run"};
  args.insert(args.end(), options.begin(), options.end());
  args.emplace_back("--");
  args.insert(args.end(), worker.begin(), worker.end());
  return args;
}

// Waits for the exit and checks that nothing of the command is left.
ToolExit finish(ToolProcess& tool, std::chrono::milliseconds guard = 60s) {
  const ToolExit exit = tool.wait(guard);
  EXPECT_TRUE(tool.none_left()) << "processes of the command outlived it:" << describe(tool.marked_processes());
  tool.kill_left();
  return exit;
}

// ---------------------------------------------------------------- output

TEST(RunCommand, RepliesAreWrittenWholeNulBytesIncluded) {
  ToolProcess tool(run_args({"--workers", "1"}));
  const std::string input = "a\0b\n\0\nplain\nlast without newline"s;
  ASSERT_TRUE(tool.write_stdin(input));
  tool.close_stdin();
  const ToolExit exit = finish(tool);
  EXPECT_TRUE(exit.exited && exit.status == 0) << exit.describe() << "\n" << tool.err();
  EXPECT_EQ(tool.out(), "a\0b\n\0\nplain\nlast without newline\n"s);
}

// Runs `seedpool run --workers 2` as "$@" of the bash `pipeline` (with
// pipefail: the status is the command's), feeds it 2000 lines of 1 KiB each
// (more than a pipe holds, so that a reader that went away is met by a
// write, not by a full buffer), and waits for the end.
ToolExit run_in_pipeline(ToolProcess& tool) {
  std::string lines;
  for (int i = 0; i < 2000; ++i) {
    lines += std::string(1024, static_cast<char>('a' + i % 26)) + "\n";
  }
  static_cast<void>(tool.write_stdin(lines));
  tool.close_stdin();
  return finish(tool);
}

std::vector<std::string> in_pipeline(const std::string& pipeline) {
  return {"/bin/bash", "-c", "set -o pipefail; " + pipeline, "sh"};
}

// A reader of stdout that takes one line and goes away: the command stops as
// a SIGPIPE would stop it (status 141, through the pipeline's status), but
// it stops reading input, says how many answers were not written, and
// shuts its pool down.
TEST(RunCommand, AStdoutThatGoesAwayStopsTheJobWithStatus141AndSaysWhatWasNotWritten) {
  ToolProcess tool(run_args({"--workers", "2"}), true, in_pipeline("\"$@\" | head -n 1"));
  const ToolExit exit = run_in_pipeline(tool);
  EXPECT_TRUE(exit.exited && exit.status == 141) << exit.describe() << "\n" << tool.err();
  EXPECT_EQ(tool.out(), std::string(1024, 'a') + "\n");
  EXPECT_TRUE(contains(tool.err(), "cannot write to stdout: Broken pipe; stopped reading input;")) << tool.err();
  EXPECT_TRUE(contains(tool.err(), "answer(s) not written")) << tool.err();
  EXPECT_FALSE(contains(tool.err(), "2000 calls")) << "the command read all of its input:\n" << tool.err();
}

// The same with stderr gone too: nothing to say things to, but no abort.
TEST(RunCommand, AStderrThatGoesAwayTooIsNoAbort) {
  ToolProcess tool(run_args({"--workers", "2"}), true, in_pipeline("\"$@\" 2>&1 | head -n 1 >/dev/null"));
  const ToolExit exit = run_in_pipeline(tool);
  EXPECT_TRUE(exit.exited && exit.status == 141) << exit.describe() << "\n" << tool.err();
}

// Closed standard descriptors are not taken by the command's own pipes:
// without stdin (or stdout) there is nothing to do in stdin mode, and the
// command says so before any worker starts; --load needs neither.
TEST(RunCommand, AClosedStdinOrStdoutIsRefusedBeforeAnyWorkerStarts) {
  for (const auto& [redirect, says] : std::vector<std::pair<std::string, std::string>>{
           {"<&-", "stdin is closed"}, {">&-", "stdout is closed, so the answers would be lost"}}) {
    ToolProcess tool(run_args({"--workers", "1"}), false, {"/bin/sh", "-c", "exec \"$@\" " + redirect, "sh"});
    const ToolExit exit = finish(tool, 30s);
    EXPECT_TRUE(exit.exited && exit.status == 2) << redirect << ": " << exit.describe() << "\n" << tool.err();
    EXPECT_TRUE(contains(tool.err(), says)) << tool.err();
    EXPECT_FALSE(contains(tool.err(), "ready in")) << "a worker started:\n" << tool.err();
  }
  ToolProcess load(run_args({"--workers", "1", "--load", "calls=10"}), false,
                   {"/bin/sh", "-c", "exec \"$@\" <&- >&-", "sh"});
  const ToolExit exit = finish(load, 30s);
  EXPECT_TRUE(exit.exited && exit.status == 0) << exit.describe() << "\n" << load.err();
  EXPECT_TRUE(contains(load.err(), "10 calls (10 ok)")) << load.err();
}

// A stdout that refuses writes (a full disk): status 1, and every answer
// counted as not written.
TEST(RunCommand, AStdoutThatRefusesWritesIsAnErrorNamingIt) {
  ToolProcess tool(run_args({"--workers", "1"}), true, {"/bin/sh", "-c", "exec \"$@\" >/dev/full", "sh"});
  ASSERT_TRUE(tool.write_stdin("1\n2\n3\n"));
  tool.close_stdin();
  const ToolExit exit = finish(tool);
  EXPECT_TRUE(exit.exited && exit.status == 1) << exit.describe() << "\n" << tool.err();
  EXPECT_TRUE(contains(tool.err(), "cannot write to stdout: No space left on device")) << tool.err();
  // Every line read has its answer counted; how many of the three were
  // read before the first write failed depends on the machine's load.
  EXPECT_TRUE(std::regex_search(tool.err(), std::regex("stopped reading input; [123] answer\\(s\\) not written, "
                                                       "from line 1 on")))
      << tool.err();
}

// A line longer than any call can carry is read past, not held whole
// (stdin could be /dev/zero): it is answered with the limit named, and the
// lines around it are served as usual. A line of exactly the largest payload
// still goes through.
TEST(RunCommand, ALineLongerThanAnyCallIsReadPastAndRefusedNamingTheLimit) {
  constexpr std::size_t payload_max = 16 * 1024 * 1024 - 13;  // the default frame_bytes_max, less the header
  ToolProcess tool(run_args({"--workers", "1"}));
  const std::string longest(payload_max, 'y');
  ASSERT_TRUE(tool.write_stdin("first\n" + std::string(payload_max + 100000, 'x') + "\nsecond\n" + longest + "\n"));
  tool.close_stdin();
  const ToolExit exit = finish(tool);
  EXPECT_TRUE(exit.exited && exit.status == 1) << exit.describe() << "\n" << tool.err();
  const std::string refused = "ERROR invalid_argument: a line of at least " + std::to_string(payload_max + 1) +
                              " bytes (read no further): payload of " + std::to_string(payload_max + 1) +
                              " bytes makes a call frame of 16777217 bytes, over frame_bytes_max 16777216";
  EXPECT_EQ(tool.out().substr(0, 6 + refused.size()), "first\n" + refused) << tool.out().substr(0, 300);
  EXPECT_TRUE(contains(tool.out(), "\nsecond\n" + longest + "\n")) << tool.out().substr(0, 300);
  EXPECT_TRUE(contains(tool.err(), "4 calls (3 ok)")) << tool.err();
  EXPECT_TRUE(contains(tool.err(), "calls invalid_argument: 1")) << tool.err();
}

// ---------------------------------------------------------------- metrics

// A --metrics file the command cannot keep writing is refused before any
// worker starts, with what is wrong with it; a file that is not a regular
// one (here a FIFO of the test's own) is never replaced.
TEST(RunCommand, AMetricsFileThatCannotBeWrittenIsRefusedBeforeAnyWorkerStarts) {
  const std::string missing = ::testing::TempDir() + "no-such-directory/metrics.prom";
  const std::string fifo = ::testing::TempDir() + "run-command-metrics.fifo";
  std::remove(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const auto& [path, says] : std::vector<std::pair<std::string, std::string>>{
           {missing, "No such file or directory"},
           {::testing::TempDir(), "(a directory)"},
           {fifo, "(a device, pipe or socket)"}}) {
    ToolProcess tool(run_args({"--workers", "1", "--metrics", path}), false);
    const ToolExit exit = finish(tool);
    EXPECT_TRUE(exit.exited && exit.status == 2) << path << ": " << exit.describe() << "\n" << tool.err();
    EXPECT_TRUE(contains(tool.err(), "--metrics file '")) << tool.err();
    EXPECT_TRUE(contains(tool.err(), says)) << tool.err();
    EXPECT_FALSE(contains(tool.err(), "ready in")) << "a worker started:\n" << tool.err();
  }
  struct stat kept {};
  ASSERT_EQ(::lstat(fifo.c_str(), &kept), 0);
  EXPECT_TRUE(S_ISFIFO(kept.st_mode)) << "the FIFO was replaced";
  std::remove(fifo.c_str());
}

// The file holds the run's last figures once the command exits.
TEST(RunCommand, TheMetricsFileHoldsTheLastFigures) {
  const std::string path = ::testing::TempDir() + "run-command-metrics.prom";
  std::remove(path.c_str());
  ToolProcess tool(run_args({"--workers", "1", "--metrics", path}));
  ASSERT_TRUE(tool.write_stdin("1\n2\n3\n"));
  tool.close_stdin();
  const ToolExit exit = finish(tool);
  EXPECT_TRUE(exit.exited && exit.status == 0) << exit.describe() << "\n" << tool.err();
  const std::string metrics = testing::read_text(path);
  EXPECT_TRUE(contains(metrics, "outcome=\"ok\"} 3")) << metrics;
  std::remove(path.c_str());
}

// ---------------------------------------------------------------- statistics

TEST(RunCommand, NoCallsMeansNoLatencyFigures) {
  ToolProcess tool(run_args({"--workers", "1"}), false);
  const ToolExit exit = finish(tool);
  EXPECT_TRUE(exit.exited && exit.status == 0) << exit.describe() << "\n" << tool.err();
  EXPECT_TRUE(contains(tool.err(), "0 calls (0 ok)")) << tool.err();
  EXPECT_TRUE(contains(tool.err(), "call latency -")) << tool.err();
  EXPECT_FALSE(contains(tool.err(), "9223372036854775")) << "an empty histogram's bound printed as a latency:\n"
                                                            << tool.err();
}

// ---------------------------------------------------------------- launch

TEST(RunCommand, ADirectoryAsTheWorkerProgramIsNamedAsOne) {
  std::string dir = (std::filesystem::temp_directory_path() / "seedpool-run-dir-XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  ToolProcess tool(run_args({"--workers", "1"}, {dir}), false);
  const ToolExit exit = finish(tool);
  std::filesystem::remove(dir);
  EXPECT_TRUE(exit.exited && exit.status == 1) << exit.describe() << "\n" << tool.err();
  EXPECT_TRUE(contains(tool.err(), "cannot launch '" + dir + "': Is a directory")) << tool.err();
  EXPECT_FALSE(contains(tool.err(), "Permission denied")) << tool.err();
}

// ---------------------------------------------------------------- failed start

// The worker reference ("w0.1") a line of the report names, if any.
std::optional<std::string> worker_named(std::string_view line) {
  for (std::size_t at = line.find(" w"); at != std::string_view::npos; at = line.find(" w", at + 1)) {
    std::size_t end = at + 2;
    while (end < line.size() && (std::isdigit(static_cast<unsigned char>(line[end])) != 0 || line[end] == '.')) {
      ++end;
    }
    const std::string_view ref = line.substr(at + 1, end - at - 1);
    if (ref.size() >= 4 && ref.find('.') != std::string_view::npos) {
      return std::string(ref);
    }
  }
  return std::nullopt;
}

TEST(RunCommand, EveryStderrTailOfAFailedStartGoesWithItsOwnWorker) {
  // Each worker writes a line of its own, then never answers init.
  ToolProcess tool(run_args({"--workers", "2", "--init-timeout-ms", "1500"},
                            {"/bin/sh", "-c", "echo \"stderr line of pid $$\" >&2; exec sleep 3600"}),
                   false);
  const ToolExit exit = finish(tool);
  EXPECT_TRUE(exit.exited && exit.status == 1) << exit.describe() << "\n" << tool.err();
  const std::string& err = tool.err();
  const std::size_t report = err.find("failed to start");
  ASSERT_NE(report, std::string::npos) << err;

  // Who wrote which line, from the lines forwarded as they came:
  // "[seedpool/w0.1] stderr line of pid 123".
  std::map<std::string, std::string> writer;  // line -> worker
  std::istringstream live(err.substr(0, report));
  for (std::string line; std::getline(live, line);) {
    const std::size_t text = line.find("] stderr line of pid ");
    if (line.starts_with("[seedpool/") && text != std::string::npos) {
      writer[line.substr(text + 2)] = line.substr(10, text - 10);
    }
  }
  ASSERT_GE(writer.size(), 2u) << err;

  // In the report, every tail line sits under the worker it came from: the
  // nearest line above it that names a worker names that one.
  std::set<std::string> reported;
  std::optional<std::string> under;
  std::istringstream lines(err.substr(report));
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("stderr line of pid ")) {
      ASSERT_TRUE(writer.contains(line)) << "a tail line nobody wrote: " << line << "\n" << err;
      EXPECT_EQ(under.value_or("no worker"), writer[line]) << "'" << line << "' is shown under another worker:\n"
                                                           << err;
      reported.insert(writer[line]);
    } else if (std::optional<std::string> named = worker_named(line)) {
      under = named;
    }
  }
  for (const auto& [line, worker] : writer) {
    EXPECT_TRUE(reported.contains(worker)) << "the report lost the tail of " << worker << ":\n" << err;
  }
}

// ---------------------------------------------------------------- options

// A value the command must refuse before it starts any worker: exit status
// 2, and a message naming the option and what it accepts.
struct BadValue {
  std::vector<std::string> options;  // besides --workers 1, unless they set --workers
  std::vector<std::string> message_parts;
};

std::ostream& operator<<(std::ostream& out, const BadValue& bad) {
  for (const std::string& option : bad.options) {
    out << "'" << option << "' ";
  }
  return out;
}

class RunCommandRefuses : public ::testing::TestWithParam<BadValue> {};

TEST_P(RunCommandRefuses, WithExitStatus2AndAMessageNamingTheOptionAndItsRange) {
  const BadValue& bad = GetParam();
  std::vector<std::string> options = bad.options;
  if (std::find(options.begin(), options.end(), "--workers") == options.end()) {
    options.insert(options.begin(), {"--workers", "1"});
  }
  ToolProcess tool(run_args(options), false);
  const ToolExit exit = finish(tool, 30s);
  EXPECT_TRUE(exit.exited && exit.status == 2) << exit.describe() << "\n" << tool.err();
  for (const std::string& part : bad.message_parts) {
    EXPECT_TRUE(contains(tool.err(), part)) << "no '" << part << "' in:\n" << tool.err();
  }
  EXPECT_FALSE(contains(tool.err(), "echo worker")) << "a worker was started:\n" << tool.err();
  EXPECT_EQ(tool.out(), "");
}

const std::string day_ms = "from 1 to 86400000 (milliseconds)";

INSTANTIATE_TEST_SUITE_P(
    EveryNumericOption, RunCommandRefuses,
    ::testing::Values(
        BadValue{{"--workers", "0"}, {"--workers '0'", "from 1 to 4096 (workers)"}},
        BadValue{{"--workers", "4097"}, {"--workers '4097'", "from 1 to 4096"}},
        BadValue{{"--workers", "-1"}, {"--workers '-1'", "from 1 to 4096"}},
        BadValue{{"--workers", "two"}, {"--workers 'two'", "not a decimal integer", "from 1 to 4096"}},
        BadValue{{"--max", "0"}, {"--max '0'", "from 1 to 4096 (workers)"}},
        BadValue{{"--max", "4097"}, {"--max '4097'", "from 1 to 4096"}},
        BadValue{{"--workers", "3", "--max", "2"}, {"--max 2 is below --workers 3"}},
        BadValue{{"--min-ready", "0"}, {"--min-ready '0'", "from 1 to 4096 (workers)"}},
        BadValue{{"--min-ready", "-2"}, {"--min-ready '-2'", "from 1 to 4096"}},
        BadValue{{"--workers", "2", "--min-ready", "3"}, {"--min-ready 3 exceeds --workers 2"}},
        BadValue{{"--init-timeout-ms", "0"}, {"--init-timeout-ms '0'", day_ms}},
        BadValue{{"--init-timeout-ms", "-1"}, {"--init-timeout-ms '-1'", day_ms}},
        BadValue{{"--checkout-timeout-ms", "0"}, {"--checkout-timeout-ms '0'", day_ms}},
        BadValue{{"--checkout-timeout-ms", "1.5"}, {"--checkout-timeout-ms '1.5'", "not a decimal integer", day_ms}},
        BadValue{{"--call-timeout-ms", "-5"}, {"--call-timeout-ms '-5'", "out of range", day_ms}},
        BadValue{{"--call-timeout-ms", "99999999999999999999"},
                 {"--call-timeout-ms '99999999999999999999'", "out of range", day_ms}},
        BadValue{{"--call-timeout-ms", "86400001"}, {"--call-timeout-ms '86400001'", day_ms}},
        BadValue{{"--call-timeout-ms", ""}, {"--call-timeout-ms", "a value is required", day_ms}},
        BadValue{{"--health-interval-ms", "-1"}, {"--health-interval-ms '-1'", "from 0 to 86400000 (milliseconds)"}},
        BadValue{{"--max-lifetime-ms", "-1"}, {"--max-lifetime-ms '-1'", "from 0 to 604800000 (milliseconds)"}},
        BadValue{{"--shutdown-grace-ms", "-1"}, {"--shutdown-grace-ms '-1'", "from 0 to 3600000 (milliseconds)"}},
        BadValue{{"--shutdown-grace-ms", "3600001"}, {"--shutdown-grace-ms '3600001'", "from 0 to 3600000"}},
        BadValue{{"--ready-exit-window-ms", "-1"}, {"--ready-exit-window-ms '-1'", "from 0 to 86400000 (milliseconds)"}},
        BadValue{{"--ready-exit-window-ms", "86400001"}, {"--ready-exit-window-ms '86400001'", "from 0 to 86400000"}},
        BadValue{{"--metrics-interval-ms", "0"}, {"--metrics-interval-ms '0'", "from 100 to 86400000 (milliseconds)"}},
        BadValue{{"--metrics-interval-ms", "-1"}, {"--metrics-interval-ms '-1'", "from 100 to 86400000"}},
        BadValue{{"--max-calls", "-1"}, {"--max-calls '-1'", "from 0 to 1000000000000 (calls)"}},
        BadValue{{"--max-calls", "18446744073709551616"},
                 {"--max-calls '18446744073709551616'", "from 0 to 1000000000000"}},
        BadValue{{"--concurrency", "-1"}, {"--concurrency '-1'", "from 1 to 4096 (callers)"}},
        BadValue{{"--concurrency", "0"}, {"--concurrency '0'", "from 1 to 4096 (callers)"}},
        BadValue{{"--concurrency", "100000"}, {"--concurrency '100000'", "from 1 to 4096 (callers)"}},
        BadValue{{"--load", ""}, {"--load ''", "the spec is empty", "calls=N"}},
        BadValue{{"--load", "calls=5,calls=6"}, {"--load 'calls=5,calls=6'", "'calls' is given twice"}},
        BadValue{{"--concurrency", "4", "--load", "calls=5"},
                 {"--concurrency is for calls read from stdin", "--load calls=5,concurrency=4"}},
        BadValue{{"--load", "calls=3,concurrency=100000000000"},
                 {"--load", "concurrency '100000000000'", "from 1 to 4096 (callers)"}},
        BadValue{{"--load", "calls=-1"}, {"--load", "calls '-1'", "from 1 to 1000000000000 (calls)"}},
        BadValue{{"--load", "calls=0"}, {"--load", "calls '0'", "from 1 to 1000000000000"}},
        BadValue{{"--load", "concurrency=4"}, {"--load", "calls=N is required"}},
        BadValue{{"--load", "calls=3,speed=9"}, {"--load", "unknown key 'speed'"}},
        BadValue{{"--init", ""}, {"unknown init mode ''", "'eager' or 'lazy'"}},
        BadValue{{"--kind", ""}, {"unknown checkout kind ''", "affinity:KEY"}},
        BadValue{{"--metrics", ""}, {"--metrics", "a file path is required"}}));

TEST(RunCommand, AnUnknownOptionIsNamed) {
  for (const std::vector<std::string>& options :
       {std::vector<std::string>{"--workers", "1", "--bogus", "3"}, {"--bogus", "--workers", "1"},
        {"--workers", "1", "--call-timeout-ms", "-5", "-x"}, {"--workers=1", "--bogus=3"}}) {
    ToolProcess tool(run_args(options), false);
    const ToolExit exit = finish(tool, 30s);
    const std::string unknown = options.back() == "-x" ? "-x" : "--bogus";
    EXPECT_TRUE(exit.exited && exit.status == 2) << exit.describe() << "\n" << tool.err();
    EXPECT_TRUE(contains(tool.err(), "unknown option '" + unknown + "'")) << tool.err();
    EXPECT_FALSE(contains(tool.err(), echo_worker)) << "the message blames the worker program:\n" << tool.err();
  }
}

// CLI11 alone reports "--workers: At Most 1 required but received 2".
TEST(RunCommand, AnOptionGivenTwiceIsNamedWithBothValues) {
  struct Case {
    std::vector<std::string> options;
    std::string said;
  };
  for (const Case& c : {Case{{"--workers", "1", "--workers", "2"}, "--workers is given twice ('1' and '2')"},
                        Case{{"--workers=1", "--call-timeout-ms", "5", "--call-timeout-ms=7"},
                             "--call-timeout-ms is given twice ('5' and '7')"}}) {
    ToolProcess tool(run_args(c.options), false);
    const ToolExit exit = finish(tool, 30s);
    EXPECT_TRUE(exit.exited && exit.status == 2) << exit.describe() << "\n" << tool.err();
    EXPECT_TRUE(contains(tool.err(), c.said)) << tool.err();
  }
}

TEST(RunCommand, ValuesAtTheBoundsOfTheirRangesAreAccepted) {
  ToolProcess tool(run_args({"--workers", "1", "--max", "4096", "--min-ready", "1", "--init-timeout-ms", "86400000",
                             "--checkout-timeout-ms", "86400000", "--call-timeout-ms", "86400000",
                             "--health-interval-ms", "0", "--max-lifetime-ms", "0", "--shutdown-grace-ms", "0",
                             "--ready-exit-window-ms", "0", "--metrics-interval-ms", "100", "--max-calls", "0",
                             "--concurrency", "1"}));
  ASSERT_TRUE(tool.write_stdin("one\ntwo\n"));
  tool.close_stdin();
  const ToolExit exit = finish(tool);
  EXPECT_TRUE(exit.exited && exit.status == 0) << exit.describe() << "\n" << tool.err();
  EXPECT_EQ(tool.out(), "one\ntwo\n");
}

TEST(RunCommand, GeneratedLoadWithMoreCallersThanCallsEnds) {
  ToolProcess tool(run_args({"--workers", "1", "--load", "calls=3,concurrency=4096"}), false);
  const ToolExit exit = finish(tool);
  EXPECT_TRUE(exit.exited && exit.status == 0) << exit.describe() << "\n" << tool.err();
  EXPECT_TRUE(contains(tool.err(), "3 calls (3 ok)")) << tool.err();
}


// ---------------------------------------------------------------- signals

// The shutdown grace the signal tests give the command, and the longest a
// stop may take: that grace plus slack for a busy machine. What the bound
// catches is a command that waits for something else: an init timeout of
// ten minutes, or the end of an input that never ends.
constexpr auto shutdown_grace = 1000ms;
constexpr auto stop_bound = shutdown_grace + 20s;
const std::string grace_option = std::to_string(shutdown_grace.count());

// Sends `signo` and waits for the exit; `took` is how long that was.
ToolExit stop_with(ToolProcess& tool, int signo, std::chrono::milliseconds& took) {
  const auto sent = std::chrono::steady_clock::now();
  tool.signal(signo);
  const ToolExit exit = tool.wait(stop_bound);
  took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sent);
  EXPECT_TRUE(tool.none_left()) << "processes of the command outlived it:" << describe(tool.marked_processes());
  tool.kill_left();
  return exit;
}

TEST(RunCommandSignals, SigtermWhileAWorkerNeverGetsReadyStopsWithinTheGrace) {
  ToolProcess tool(run_args({"--workers", "1", "--init-timeout-ms", "600000", "--shutdown-grace-ms", grace_option},
                            {"/bin/sh", "-c", "echo hanging in init >&2; exec sleep 3600"}));
  ASSERT_TRUE(tool.wait_for_stderr("hanging in init")) << tool.err();
  std::chrono::milliseconds took{};
  const ToolExit exit = stop_with(tool, SIGTERM, took);
  EXPECT_LT(took, stop_bound) << tool.err();
  EXPECT_TRUE(exit.exited && exit.status == 128 + SIGTERM) << exit.describe() << "\n" << tool.err();
  EXPECT_TRUE(contains(tool.err(), "signal 15: shutting down")) << tool.err();
}

TEST(RunCommandSignals, SigtermWhileStdinIsOpenAndIdleStopsWithinTheGrace) {
  ToolProcess tool(run_args({"--workers", "2", "--shutdown-grace-ms", grace_option}));
  ASSERT_TRUE(tool.write_stdin("one\n"));
  ASSERT_TRUE(tool.wait_for_stdout("one\n")) << tool.err();
  std::chrono::milliseconds took{};
  const ToolExit exit = stop_with(tool, SIGTERM, took);  // stdin stays open
  EXPECT_LT(took, stop_bound) << tool.err();
  EXPECT_TRUE(exit.exited && exit.status == 128 + SIGTERM) << exit.describe() << "\n" << tool.err();
  EXPECT_EQ(tool.out(), "one\n");
  EXPECT_TRUE(contains(tool.err(), "1 calls (1 ok)")) << tool.err();
}

TEST(RunCommandSignals, SigintUnderGeneratedLoadStopsWithinTheGrace) {
  ToolProcess tool(run_args({"--workers", "2", "--shutdown-grace-ms", grace_option, "--load",
                             "calls=1000000000000,concurrency=8"}),
                   false);
  ASSERT_TRUE(tool.wait_for_stderr("ready in")) << tool.err();
  std::chrono::milliseconds took{};
  const ToolExit exit = stop_with(tool, SIGINT, took);
  EXPECT_LT(took, stop_bound) << tool.err();
  EXPECT_TRUE(exit.exited && exit.status == 128 + SIGINT) << exit.describe() << "\n" << tool.err();
  EXPECT_TRUE(contains(tool.err(), "signal 2: shutting down")) << tool.err();
  EXPECT_TRUE(contains(tool.err(), "worker starts 2")) << "no statistics:\n" << tool.err();
}

// A second interrupt does not wait out the grace: the call hung in its
// lease is ended at once, and the command exits with the first signal's
// status, nothing left running.
TEST(RunCommandSignals, ASecondSigintEndsTheCallsInFlightWithoutWaitingOutTheGrace) {
  ToolProcess tool(run_args({"--workers", "1", "--shutdown-grace-ms", "600000", "--call-timeout-ms", "600000"},
                            {echo_worker, "--hang-after", "1"}));
  ASSERT_TRUE(tool.write_stdin("hangs\n"));
  ASSERT_TRUE(tool.wait_for_stderr("answering nothing from now on")) << tool.err();
  tool.signal(SIGINT);
  ASSERT_TRUE(tool.wait_for_stderr("shutting down")) << tool.err();
  std::chrono::milliseconds took{};
  const ToolExit exit = stop_with(tool, SIGINT, took);
  EXPECT_LT(took, stop_bound) << "waited out the grace of 10 minutes?\n" << tool.err();
  EXPECT_TRUE(exit.exited && exit.status == 128 + SIGINT) << exit.describe() << "\n" << tool.err();
  EXPECT_TRUE(contains(tool.err(), "again: ending the calls in flight now")) << tool.err();
  EXPECT_EQ(tool.out(),
            "ERROR pool_shutting_down: worker w0.1 was stopped under the lease: shutdown grace period over\n");
}

// A hang-up (the terminal went away) is a stop like the others, not the
// default death that would leave no statistics and no clean shutdown.
TEST(RunCommandSignals, SighupWhileStdinIsOpenStopsCleanlyWithinTheGrace) {
  ToolProcess tool(run_args({"--workers", "2", "--shutdown-grace-ms", grace_option}));
  ASSERT_TRUE(tool.wait_for_stderr("ready in")) << tool.err();
  std::chrono::milliseconds took{};
  const ToolExit exit = stop_with(tool, SIGHUP, took);
  EXPECT_LT(took, stop_bound) << tool.err();
  EXPECT_TRUE(exit.exited && exit.status == 128 + SIGHUP) << exit.describe() << "\n" << tool.err();
  EXPECT_TRUE(contains(tool.err(), "worker starts 2")) << "no statistics:\n" << tool.err();
}

// The command killed outright (SIGKILL, as the OOM killer does) while a
// Python worker is inside a call that never returns, having started a child
// process of its own: nothing will read that worker's pipes again, and it
// does not read stdin while it is in the call. It notices that its parent is
// gone and exits with its process group, the handler's child included.
TEST(RunCommandSignals, AKilledCommandLeavesNoPythonWorkerBehindEvenInsideAHungCall) {
  const std::string code = "import subprocess, sys, time\n"
                           "sys.path.insert(0, " + sh_quote(python_workers) + ")\n"
                           "from seedpool_worker import Worker\n"
                           "worker = Worker()\n"
                           "@worker.handler('hang')\n"
                           "def hang(args):\n"
                           "    subprocess.Popen(['sleep', '3600'])\n"
                           "    print('inside the hung call', file=sys.stderr, flush=True)\n"
                           "    time.sleep(3600)\n"
                           "worker.run()\n";
  ToolProcess tool(run_args({"--workers", "2", "--call-timeout-ms", "600000"}, {python, "-c", code, "seedpool-hang"}));
  ASSERT_TRUE(tool.write_stdin("{\"handler\":\"hang\",\"args\":{}}\n"));
  ASSERT_TRUE(tool.wait_for_stderr("inside the hung call")) << tool.err();
  ASSERT_GE(tool.marked_processes().size(), 4U) << "the command, two workers and the handler's child";
  tool.signal(SIGKILL);
  const ToolExit exit = tool.wait();
  EXPECT_TRUE(!exit.exited && exit.signal == SIGKILL) << exit.describe();
  EXPECT_TRUE(tool.none_left(5s)) << "outlived the killed command:" << describe(tool.marked_processes());
  tool.kill_left();
}

// ---------------------------------------------------------------- threads

// Runs the command with pthread_create refusing every thread after the
// first `n`, as the kernel does at its thread or memory limits. In an
// AddressSanitizer build the preloaded library comes before the sanitizer's
// runtime, which it is told to accept.
std::vector<std::string> threads_limited(int n) {
  const char* asan = std::getenv("ASAN_OPTIONS");
  return {"/usr/bin/env", "LD_PRELOAD=" SEEDPOOL_THREAD_LIMIT_PRELOAD,
          "SEEDPOOL_TEST_THREADS_MAX=" + std::to_string(n),
          std::string("ASAN_OPTIONS=") + (asan != nullptr ? std::string(asan) + ":" : "") + "verify_asan_link_order=0"};
}

TEST(RunCommandThreads, ACallerThreadTheKernelRefusesIsReportedAndThePoolStops) {
  ToolProcess tool(run_args({"--workers", "1", "--concurrency", "4096"}), true, threads_limited(40));
  ASSERT_TRUE(tool.write_stdin("one\n"));
  tool.close_stdin();
  const ToolExit exit = finish(tool);
  EXPECT_TRUE(exit.exited && exit.status == 1) << exit.describe() << "\n" << tool.err();
  EXPECT_TRUE(contains(tool.err(), "cannot start the thread of task 'caller-")) << tool.err();
  EXPECT_TRUE(contains(tool.err(), "lower --concurrency")) << tool.err();
  EXPECT_TRUE(contains(tool.err(), "worker starts 1 (1 ok); exits 1")) << "the pool was not shut down:\n" << tool.err();
}

TEST(RunCommandThreads, ALoadThreadTheKernelRefusesIsReportedAndThePoolStops) {
  ToolProcess tool(run_args({"--workers", "1", "--load", "calls=100000,concurrency=4096"}), false,
                   threads_limited(40));
  const ToolExit exit = finish(tool);
  EXPECT_TRUE(exit.exited && exit.status == 1) << exit.describe() << "\n" << tool.err();
  EXPECT_TRUE(contains(tool.err(), "cannot start the thread of task 'load-")) << tool.err();
  EXPECT_TRUE(contains(tool.err(), "lower --load concurrency=")) << tool.err();
  EXPECT_TRUE(contains(tool.err(), "worker starts 1 (1 ok); exits 1")) << "the pool was not shut down:\n" << tool.err();
}

// The pool's own tasks: the pool task, and one per worker started by it.
// Before them the command starts two threads: the I/O loop's and the
// signal watcher's. A refused pool task fails Pool::start; a refused worker
// task is a failed start of that worker (its slot backs off, the breaker
// opens). Each is reported with its reason, never an abort.
constexpr int command_threads_before_the_pool = 2;

TEST(RunCommandThreads, APoolTaskTheKernelRefusesFailsTheStartWithTheReason) {
  ToolProcess tool(run_args({"--workers", "1"}), false, threads_limited(command_threads_before_the_pool));
  const ToolExit exit = finish(tool);
  EXPECT_TRUE(exit.exited && exit.status == 1) << exit.describe() << "\n" << tool.err();
  EXPECT_TRUE(contains(tool.err(), "cannot start the pool task: Resource temporarily unavailable")) << tool.err();
}

TEST(RunCommandThreads, AWorkerTaskTheKernelRefusesFailsTheStartWithTheReason) {
  ToolProcess tool(run_args({"--workers", "1"}), false, threads_limited(command_threads_before_the_pool + 1));
  const ToolExit exit = finish(tool);
  EXPECT_TRUE(exit.exited && exit.status == 1) << exit.describe() << "\n" << tool.err();
  EXPECT_TRUE(contains(tool.err(), "the circuit breaker opened")) << tool.err();
  EXPECT_TRUE(contains(tool.err(), "cannot start task 'seedpool/w0.1': Resource temporarily unavailable"))
      << tool.err();
}

}  // namespace
}  // namespace seedpool::integration
