#pragma once

// The process table as /proc shows it, for tests that check that no process,
// zombie or descriptor is left behind. Shared by the real-backend and the
// integration tests.

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <fcntl.h>
#include <optional>
#include <sstream>
#include <string>
#include <sys/types.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace seedpool::testing {

struct ProcInfo {
  pid_t pid = 0;
  char state = '?';
  pid_t ppid = 0;
  pid_t pgrp = 0;
};

// The contents of a /proc file; empty when it cannot be read. Plain read()
// rather than a stream: reading the file of a process that is exiting fails
// with ESRCH, which libstdc++'s stream iterators report by throwing.
inline std::string read_text(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return {};
  }
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      break;
    }
    text.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(fd);
  return text;
}

// Fields 3-5 of /proc/<pid>/stat; nullopt when the process is gone.
inline std::optional<ProcInfo> proc_info(pid_t pid) {
  const std::string text = read_text("/proc/" + std::to_string(pid) + "/stat");
  const std::size_t paren = text.rfind(')');
  if (paren == std::string::npos) {
    return std::nullopt;
  }
  std::istringstream rest(text.substr(paren + 1));
  ProcInfo info;
  info.pid = pid;
  rest >> info.state >> info.ppid >> info.pgrp;
  return rest ? std::optional<ProcInfo>(info) : std::nullopt;
}

// The command line of `pid` with NULs turned into spaces; empty when gone.
inline std::string proc_cmdline(pid_t pid) {
  std::string text = read_text("/proc/" + std::to_string(pid) + "/cmdline");
  std::replace(text.begin(), text.end(), '\0', ' ');
  return text;
}

inline std::vector<ProcInfo> all_processes() {
  std::vector<ProcInfo> out;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    if (std::optional<ProcInfo> info = proc_info(static_cast<pid_t>(std::stol(name)))) {
      out.push_back(*info);
    }
  }
  return out;
}

// Neither a zombie nor dead.
inline bool is_live(const ProcInfo& info) { return info.state != 'Z' && info.state != 'X'; }

// Descriptors open in this process (the directory listing's own included,
// the same every time).
inline std::size_t open_fd_count() {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++count;
  }
  return count;
}

}  // namespace seedpool::testing
