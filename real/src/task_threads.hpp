#pragma once

// RealWorld's tasks: one OS thread each. Finished threads are joined by the
// next spawn, so a long-lived pool that keeps starting worker tasks does not
// accumulate them; join_all() joins the rest.

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace seedpool::real::detail {

// Names the calling thread for ps, top and debuggers, cut to the kernel's
// 15 bytes.
void set_thread_name(std::string_view name);

// The calling thread's name as set_thread_name left it (cut to 15 bytes),
// for failure messages.
std::string thread_name();

class TaskThreads {
 public:
  TaskThreads() = default;
  // Requires join_all() to have returned.
  ~TaskThreads();
  TaskThreads(const TaskThreads&) = delete;
  TaskThreads& operator=(const TaskThreads&) = delete;

  // Starts `body` on a new thread named `name`. An exception escaping `body`
  // is printed to stderr with the name and terminates the program. Throws
  // std::system_error when the thread cannot be created.
  void spawn(std::string name, std::function<void()> body);

  // Joins every task, including tasks spawned while it waits.
  void join_all();

 private:
  void run(std::uint64_t id, const std::string& name, const std::function<void()>& body);
  void join_finished();

  std::mutex mutex_;  // guards the members below
  std::unordered_map<std::uint64_t, std::thread> threads_;
  std::vector<std::uint64_t> finished_;  // ids whose body has returned
  std::uint64_t next_id_ = 0;
};

}  // namespace seedpool::real::detail
