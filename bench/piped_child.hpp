#pragma once

// Child processes for the benchmark's baselines, started without a shell and
// without the RealWorld: the raw-pipe echo worker and the ProcessPoolExecutor
// script. Linux and glibc only, like the real backend.

#include <seedpool/core/result.hpp>

#include <sys/types.h>

#include <string>
#include <vector>

namespace seedpool::bench {

struct PipedChild {
  pid_t pid = -1;
  int stdin_fd = -1;   // the write end of the child's stdin; -1 when it reads /dev/null
  int stdout_fd = -1;  // the read end of the child's stdout
};

// Where a child's stdin and stderr go; stdout is always a pipe to the parent.
struct PipedChildOptions {
  bool stdin_pipe = true;       // false: /dev/null
  bool stderr_to_null = true;   // false: inherited from this process
};

// posix_spawnp of argv[0] with argv[1..], stdout (and stdin when asked) on
// pipes. Every descriptor this process opens here is close-on-exec, so
// children started concurrently by other threads inherit none of them. Fails
// with launch_failed naming the program and the errno text.
Result<PipedChild> spawn_piped(const std::vector<std::string>& argv, PipedChildOptions options = {});

// Waits for `pid` to exit, polling; SIGKILLs it after `wait_ms_max` and then
// waits for that. Returns the wait status, or -1 when waitpid failed.
int wait_or_kill(pid_t pid, int wait_ms_max);

// Reads `fd` to end of stream, retrying EINTR; false on a read error.
bool read_to_end(int fd, std::string& out);

}  // namespace seedpool::bench
