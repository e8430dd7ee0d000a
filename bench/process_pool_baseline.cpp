// The ProcessPoolExecutor baseline; see process_pool_baseline.hpp.

#include "process_pool_baseline.hpp"

#include "piped_child.hpp"

#include <fmt/format.h>

#include <charconv>
#include <sys/wait.h>
#include <unistd.h>

namespace seedpool::bench {

double json_number(const std::string& json, const std::string& key) {
  const std::string quoted = "\"" + key + "\"";
  std::size_t at = json.find(quoted);
  if (at == std::string::npos) {
    return -1.0;
  }
  at = json.find_first_not_of(" \t", at + quoted.size());
  if (at == std::string::npos || json[at] != ':') {
    return -1.0;
  }
  at = json.find_first_not_of(" \t", at + 1);
  if (at == std::string::npos) {
    return -1.0;
  }
  double value = -1.0;
  const auto [end, error] = std::from_chars(json.data() + at, json.data() + json.size(), value);
  return error == std::errc() && end != json.data() + at ? value : -1.0;
}

Result<BaselineFigures> run_process_pool_baseline(const BaselineRun& run) {
  const std::vector<std::string> argv{run.python, run.script, "--workers", std::to_string(run.workers), "--calls",
                                      std::to_string(run.calls)};
  // The script's stderr (a traceback, if it fails) stays visible.
  Result<PipedChild> child = spawn_piped(argv, PipedChildOptions{.stdin_pipe = false, .stderr_to_null = false});
  if (!child) {
    return child.error();
  }
  BaselineFigures figures;
  const bool read = read_to_end(child.value().stdout_fd, figures.report);
  ::close(child.value().stdout_fd);
  const int status = wait_or_kill(child.value().pid, baseline_wait_ms_max);
  while (!figures.report.empty() && (figures.report.back() == '\n' || figures.report.back() == '\r')) {
    figures.report.pop_back();
  }
  figures.calls_per_second = json_number(figures.report, "calls_per_second");
  figures.seconds = json_number(figures.report, "seconds");
  if (!read || status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || figures.calls_per_second <= 0) {
    return Error{ErrorCode::io_error,
                 fmt::format("{} {} failed (wait status {}); it printed: '{}'", run.python, run.script, status,
                             figures.report),
                 {}};
  }
  return figures;
}

}  // namespace seedpool::bench
