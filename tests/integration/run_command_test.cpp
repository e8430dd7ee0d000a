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

#include <algorithm>
#include <chrono>
#include <ostream>
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
        BadValue{{"--metrics-interval-ms", "0"}, {"--metrics-interval-ms '0'", "from 100 to 86400000 (milliseconds)"}},
        BadValue{{"--metrics-interval-ms", "-1"}, {"--metrics-interval-ms '-1'", "from 100 to 86400000"}},
        BadValue{{"--max-calls", "-1"}, {"--max-calls '-1'", "from 0 to 1000000000000 (calls)"}},
        BadValue{{"--max-calls", "18446744073709551616"},
                 {"--max-calls '18446744073709551616'", "from 0 to 1000000000000"}},
        BadValue{{"--concurrency", "-1"}, {"--concurrency '-1'", "from 1 to 4096 (callers)"}},
        BadValue{{"--concurrency", "0"}, {"--concurrency '0'", "from 1 to 4096 (callers)"}},
        BadValue{{"--concurrency", "100000"}, {"--concurrency '100000'", "from 1 to 4096 (callers)"}},
        BadValue{{"--load", ""}, {"--load ''", "the spec is empty", "calls=N"}},
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

TEST(RunCommand, TheBoundsOfEveryRangeAreAccepted) {
  ToolProcess tool(run_args({"--workers", "1", "--max", "2", "--min-ready", "1", "--init-timeout-ms", "86400000",
                             "--checkout-timeout-ms", "1000", "--call-timeout-ms", "86400000",
                             "--health-interval-ms", "0", "--max-lifetime-ms", "0", "--shutdown-grace-ms", "0",
                             "--metrics-interval-ms", "100", "--max-calls", "0", "--concurrency", "1"}));
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

}  // namespace
}  // namespace seedpool::integration
