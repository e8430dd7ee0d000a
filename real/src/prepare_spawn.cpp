// What a launch runs: the program resolved and checked, the environment and
// the working directory. Checking before posix_spawn turns the usual mistakes
// (a wrong path, a missing execute bit, a bad working directory) into
// messages that name what is wrong; posix_spawn's own error stays the last
// word for whatever changes in between.

#include "spawn.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

namespace seedpool::real::detail {
namespace {

// execvp's search path when PATH is unset.
constexpr std::string_view path_default = "/bin:/usr/bin";

bool is_absolute(std::string_view path) { return !path.empty() && path.front() == '/'; }

// The current directory, or empty when it cannot be read.
std::string current_dir() {
  std::string buffer(4096, '\0');
  if (::getcwd(buffer.data(), buffer.size()) == nullptr) {
    return {};
  }
  buffer.resize(std::char_traits<char>::length(buffer.c_str()));
  return buffer;
}

std::string absolute(const std::string& path) {
  return is_absolute(path) ? path : fmt::format("{}/{}", current_dir(), path);
}

// 0 when `path` is a file this process may execute, else an errno value.
// A directory is EISDIR, although execve says EACCES of it: "Permission
// denied" sends the user to the permissions of what is not a program at all.
int executable_error(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return errno;
  }
  if (S_ISDIR(info.st_mode)) {
    return EISDIR;
  }
  if (::faccessat(AT_FDCWD, path.c_str(), X_OK, AT_EACCESS) != 0) {
    return errno;
  }
  return 0;
}

// The environment's PATH value, or execvp's default.
std::string search_path(const std::vector<std::string>& envp) {
  for (const std::string& entry : envp) {
    if (entry.starts_with("PATH=")) {
      return entry.substr(5);
    }
  }
  return std::string(path_default);
}

// Finds a bare program name on PATH as execvp does: the first executable
// candidate wins; failing that, a candidate that exists but cannot be run is
// reported (EACCES, or EISDIR for a directory) in preference to "not found".
Result<std::string> find_on_path(const std::string& program, const std::vector<std::string>& envp) {
  const std::string path = search_path(envp);
  int error = ENOENT;
  std::string_view rest = path;
  for (;;) {
    const std::size_t colon = rest.find(':');
    const std::string_view dir = rest.substr(0, colon);
    const std::string candidate = absolute(dir.empty() ? program : fmt::format("{}/{}", dir, program));
    const int candidate_error = executable_error(candidate);
    if (candidate_error == 0) {
      return candidate;
    }
    if (candidate_error != ENOENT && candidate_error != ENOTDIR) {
      error = candidate_error;
    }
    if (colon == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(colon + 1);
  }
  return launch_error(program, error, fmt::format("searched PATH={}", path));
}

Result<std::string> resolve_program(const ProcessSpec& spec, const std::vector<std::string>& envp) {
  if (spec.program.find('/') == std::string::npos) {
    return find_on_path(spec.program, envp);
  }
  const std::string relative_base = is_absolute(spec.program) || spec.working_dir.empty() ? std::string{}
                                                                                            : spec.working_dir + "/";
  const std::string path = absolute(relative_base + spec.program);
  if (const int error = executable_error(path); error != 0) {
    const std::string where = path == spec.program ? std::string{} : fmt::format("resolved to '{}'", path);
    return launch_error(spec.program, error, where);
  }
  return path;
}

Status check_working_dir(const ProcessSpec& spec) {
  if (spec.working_dir.empty()) {
    return {};
  }
  struct stat info {};
  int error = 0;
  if (::stat(spec.working_dir.c_str(), &info) != 0) {
    error = errno;
  } else if (!S_ISDIR(info.st_mode)) {
    error = ENOTDIR;
  } else if (::faccessat(AT_FDCWD, spec.working_dir.c_str(), X_OK, AT_EACCESS) != 0) {
    error = errno;
  }
  if (error != 0) {
    return launch_error(spec.program, error, fmt::format("working directory '{}'", spec.working_dir));
  }
  return {};
}

// The inherited environment with `overrides` applied. Fails for a name that
// is empty or contains '='.
Result<std::vector<std::string>> build_environment(const ProcessSpec& spec) {
  const auto& overrides = spec.env;
  for (const auto& [name, value] : overrides) {
    if (name.empty() || name.find('=') != std::string::npos || name.find('\0') != std::string::npos) {
      return Error{ErrorCode::launch_failed,
                   fmt::format("cannot launch '{}': environment variable name '{}' is not valid (it must be "
                               "non-empty and contain no '=')",
                               spec.program, name),
                   {}};
    }
  }
  const auto overridden = [&](std::string_view name, std::size_t from) {
    return std::any_of(overrides.begin() + static_cast<std::ptrdiff_t>(from), overrides.end(),
                       [&](const auto& entry) { return entry.first == name; });
  };
  std::vector<std::string> envp;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    if (!overridden(text.substr(0, text.find('=')), 0)) {
      envp.emplace_back(text);
    }
  }
  for (std::size_t i = 0; i < overrides.size(); ++i) {
    if (!overridden(overrides[i].first, i + 1)) {
      envp.push_back(fmt::format("{}={}", overrides[i].first, overrides[i].second));
    }
  }
  return envp;
}

}  // namespace

Error launch_error(const std::string& program, int error, const std::string& detail) {
  std::string message = fmt::format("cannot launch '{}': {}", program, errno_text(error));
  if (!detail.empty()) {
    message += fmt::format(" ({})", detail);
  }
  return Error{ErrorCode::launch_failed, std::move(message), {}};
}

Result<SpawnRequest> prepare_spawn(const ProcessSpec& spec) {
  if (spec.program.empty()) {
    return Error{ErrorCode::launch_failed, "cannot launch a worker: ProcessSpec::program is empty", {}};
  }
  Result<std::vector<std::string>> envp = build_environment(spec);
  if (!envp) {
    return envp.error();
  }
  if (Status dir = check_working_dir(spec); !dir) {
    return dir.error();
  }
  Result<std::string> path = resolve_program(spec, envp.value());
  if (!path) {
    return path.error();
  }
  SpawnRequest request;
  request.program = spec.program;
  request.path = std::move(path).value();
  request.argv.reserve(spec.args.size() + 1);
  request.argv.push_back(spec.program);
  request.argv.insert(request.argv.end(), spec.args.begin(), spec.args.end());
  request.envp = std::move(envp).value();
  request.working_dir = spec.working_dir;
  return request;
}

}  // namespace seedpool::real::detail
