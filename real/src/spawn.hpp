#pragma once

// Starting a child process: what to run (prepare_spawn, which checks the
// program and working directory first so that the common mistakes get a clear
// message) and running it (spawn_child: posix_spawn, no shell, its own
// process group, pipes for stdin, stdout and stderr).

#include "fd.hpp"

#include <seedpool/core/process.hpp>
#include <seedpool/core/result.hpp>

#include <string>
#include <sys/types.h>
#include <vector>

namespace seedpool::real::detail {

// A launch with every name resolved.
struct SpawnRequest {
  std::string program;            // as the spec gave it; for messages and argv[0]
  std::string path;               // absolute path of the executable to run
  std::vector<std::string> argv;  // argv[0] is `program`
  std::vector<std::string> envp;  // "NAME=value" entries
  std::string working_dir;        // empty: inherit
};

// A started child. The descriptors are the parent's ends of the three pipes,
// close-on-exec and non-blocking.
struct SpawnedChild {
  pid_t pid = -1;  // also its process group id
  UniqueFd stdin_fd;
  UniqueFd stdout_fd;
  UniqueFd stderr_fd;
};

// Resolves the program (PATH lookup for a bare name), checks that it is an
// executable file and that the working directory is a searchable directory,
// and builds the environment: the inherited one with spec.env overriding and
// adding entries (the last of duplicate names wins). Fails with launch_failed:
// "cannot launch '<program>': <errno text>" plus what was checked.
Result<SpawnRequest> prepare_spawn(const ProcessSpec& spec);

// Spawns the child in its own process group with default signal dispositions,
// an empty signal mask, no descriptor but the three pipes, and the request's
// working directory. Fails with launch_failed naming the program and errno.
Result<SpawnedChild> spawn_child(const SpawnRequest& request);

// "cannot launch '<program>': <errno text>".
Error launch_error(const std::string& program, int error, const std::string& detail = {});

}  // namespace seedpool::real::detail
