#pragma once

// The command line of `seedpool run`: every option with its range, parsed
// into a PoolConfig and a job. A value outside its range, a value that does
// not parse, an empty value and an unknown option are all refused (exit
// status 2) with a message that names the option and what it accepts.

#include <seedpool/core/pool.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}

namespace seedpool::tool {

// Workers: --workers, --max and --min-ready.
inline constexpr std::uint64_t workers_max = 4096;
// Callers at once, one thread each: --concurrency and --load concurrency=.
inline constexpr std::uint64_t concurrency_max = 4096;
// Calls: --load calls= and --max-calls.
inline constexpr std::uint64_t calls_max = 1'000'000'000'000;
// The timeouts and intervals, in milliseconds: one day.
inline constexpr std::uint64_t interval_ms_max = 86'400'000;
// --max-lifetime-ms: one week.
inline constexpr std::uint64_t lifetime_ms_max = 604'800'000;
// --shutdown-grace-ms: one hour.
inline constexpr std::uint64_t shutdown_grace_ms_max = 3'600'000;
// --metrics-interval-ms: the file is rewritten at most this often.
inline constexpr std::uint64_t metrics_interval_ms_min = 100;

struct LoadSpec {
  std::uint64_t calls = 0;        // 0: no generated load; read payloads from stdin
  std::uint64_t concurrency = 8;  // callers making calls at once
  std::string payload = R"({"handler": "echo", "args": {"n": 1}})";
};

struct RunOptions {
  PoolConfig pool;
  CheckoutOptions kind;           // anonymous or affinity
  LoadSpec load;
  std::uint64_t concurrency = 0;  // stdin mode: calls in flight (default: the pool's size.max)
  std::string metrics_path;       // Prometheus text, rewritten every metrics_interval
  Duration metrics_interval = seconds(5);
  bool status_line = false;       // a live status line on stderr
  bool quiet_workers = false;     // do not forward worker stderr
};

// An integer an option takes: where it is written, its range and its unit.
struct IntegerRule {
  std::string_view name;  // "--call-timeout-ms", or "concurrency" inside --load
  std::uint64_t min = 0;
  std::uint64_t max = 0;
  std::string_view unit;  // "milliseconds", "workers", ...
};

// Parses `text` as a decimal integer within the rule's range. The error
// names the option, the text and the range.
Result<std::uint64_t> parse_integer(const IntegerRule& rule, std::string_view text);

// Parses "calls=100000,concurrency=32[,payload=TEXT]"; errors name the bad
// key and the range of its value.
Result<LoadSpec> parse_load(const std::string& text);

// The command line as written, every value a string, so that a negative,
// overflowing or empty value reaches the checks as the user typed it.
struct RunArguments {
  std::map<std::string, std::string, std::less<>> values;  // by option name
  std::vector<std::string> command;                        // PROGRAM ARGS...
  bool status_line = false;
  bool quiet_workers = false;
};

// Declares every option of `seedpool run` on `run`, storing into `arguments`.
void add_run_options(CLI::App& run, RunArguments& arguments);

// What is wrong with the first option between "run" and "--" in `argv`
// that `run` does not declare, or that takes a value and is given twice.
// CLI11 reports the first as an unexpected argument far from it (the
// worker program), and the second as "At Most 1 required but received 2",
// so the command looks for both first.
std::optional<std::string> misused_option(const CLI::App& run, int argc, const char* const* argv);

// Checks every option `run` parsed into `arguments` and builds the options.
Result<RunOptions> finish_run_options(const CLI::App& run, const RunArguments& arguments);

}  // namespace seedpool::tool
