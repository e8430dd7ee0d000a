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

#include <chrono>
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

}  // namespace
}  // namespace seedpool::integration
