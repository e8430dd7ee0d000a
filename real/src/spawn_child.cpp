// posix_spawn with everything a worker needs and nothing it should not get:
// no shell, its own process group (so a signal reaches its descendants too),
// default signal dispositions (our SIGPIPE SIG_IGN must not leak into it), an
// empty signal mask, the three pipes as descriptors 0-2 and no other
// descriptor at all. glibc spawns with CLONE_VFORK and reports a failed
// chdir or exec as posix_spawn's return value, reaping the failed child
// itself, so a failure here leaves no zombie.

#include "spawn.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

namespace seedpool::real::detail {
namespace {

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// A close-on-exec pipe. Returns 0 or an errno value.
int make_pipe(Pipe& out) {
  int fds[2] = {-1, -1};
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return errno;
  }
  out.read.reset(fds[0]);
  out.write.reset(fds[1]);
  return 0;
}

// Moves `fd` to a number above 2, so that dup2-ing the three child ends onto
// 0, 1 and 2 in turn cannot overwrite one another (possible only when this
// process runs with one of its standard descriptors closed). Returns 0 or an
// errno value.
int lift_above_stdio(UniqueFd& fd) {
  if (fd.get() > STDERR_FILENO) {
    return 0;
  }
  const int lifted = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  if (lifted < 0) {
    return errno;
  }
  fd.reset(lifted);
  return 0;
}

// Destroys posix_spawn's attribute objects on every path.
struct SpawnObjects {
  SpawnObjects() {
    static_cast<void>(::posix_spawn_file_actions_init(&actions));
    static_cast<void>(::posix_spawnattr_init(&attributes));
  }
  ~SpawnObjects() {
    static_cast<void>(::posix_spawn_file_actions_destroy(&actions));
    static_cast<void>(::posix_spawnattr_destroy(&attributes));
  }
  SpawnObjects(const SpawnObjects&) = delete;
  SpawnObjects& operator=(const SpawnObjects&) = delete;

  posix_spawn_file_actions_t actions{};
  posix_spawnattr_t attributes{};
};

// Fills in the file actions and attributes. Returns 0 or an errno value.
int configure(SpawnObjects& objects, const SpawnRequest& request, const Pipe& in, const Pipe& out, const Pipe& err) {
  int error = ::posix_spawn_file_actions_adddup2(&objects.actions, in.read.get(), STDIN_FILENO);
  error = error != 0 ? error : ::posix_spawn_file_actions_adddup2(&objects.actions, out.write.get(), STDOUT_FILENO);
  error = error != 0 ? error : ::posix_spawn_file_actions_adddup2(&objects.actions, err.write.get(), STDERR_FILENO);
  if (error == 0 && !request.working_dir.empty()) {
    error = ::posix_spawn_file_actions_addchdir_np(&objects.actions, request.working_dir.c_str());
  }
  // Every descriptor of ours is close-on-exec already; this also closes any a
  // library in this process opened without the flag.
  error = error != 0 ? error : ::posix_spawn_file_actions_addclosefrom_np(&objects.actions, STDERR_FILENO + 1);
  sigset_t no_signals;
  sigset_t all_signals;
  sigemptyset(&no_signals);
  sigfillset(&all_signals);
  const auto flags = static_cast<short>(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  error = error != 0 ? error : ::posix_spawnattr_setflags(&objects.attributes, flags);
  error = error != 0 ? error : ::posix_spawnattr_setpgroup(&objects.attributes, 0);
  error = error != 0 ? error : ::posix_spawnattr_setsigmask(&objects.attributes, &no_signals);
  error = error != 0 ? error : ::posix_spawnattr_setsigdefault(&objects.attributes, &all_signals);
  return error;
}

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) {
    out.push_back(const_cast<char*>(s.c_str()));  // posix_spawn's signature; it does not write
  }
  out.push_back(nullptr);
  return out;
}

}  // namespace

Result<SpawnedChild> spawn_child(const SpawnRequest& request) {
  Pipe in;
  Pipe out;
  Pipe err;
  int error = make_pipe(in);
  error = error != 0 ? error : make_pipe(out);
  error = error != 0 ? error : make_pipe(err);
  error = error != 0 ? error : lift_above_stdio(in.read);
  error = error != 0 ? error : lift_above_stdio(out.write);
  error = error != 0 ? error : lift_above_stdio(err.write);
  error = error != 0 ? error : set_nonblocking(in.write.get());
  error = error != 0 ? error : set_nonblocking(out.read.get());
  error = error != 0 ? error : set_nonblocking(err.read.get());
  if (error != 0) {
    return launch_error(request.program, error, "creating its pipes");
  }
  SpawnObjects objects;
  error = configure(objects, request, in, out, err);
  if (error != 0) {
    return launch_error(request.program, error, "preparing posix_spawn");
  }
  std::vector<char*> argv = c_strings(request.argv);
  std::vector<char*> envp = c_strings(request.envp);
  pid_t pid = -1;
  error = ::posix_spawn(&pid, request.path.c_str(), &objects.actions, &objects.attributes, argv.data(), envp.data());
  if (error != 0) {
    std::string detail = request.path == request.program ? std::string{} : fmt::format("resolved to '{}'", request.path);
    if (!request.working_dir.empty()) {
      detail += fmt::format("{}working directory '{}'", detail.empty() ? "" : ", ", request.working_dir);
    }
    return launch_error(request.program, error, detail);
  }
  SEEDPOOL_ASSERT(pid > 0);
  // The child's ends close here, with the Pipe objects: the child holds its
  // own copies, and EOF on stdout and stderr must come when it exits.
  return SpawnedChild{pid, std::move(in.write), std::move(out.read), std::move(err.read)};
}

}  // namespace seedpool::real::detail
