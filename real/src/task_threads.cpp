// RealWorld's task threads; see task_threads.hpp.

#include "task_threads.hpp"

#include <seedpool/core/assert.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <pthread.h>

namespace seedpool::real::detail {
namespace {

// The kernel's limit on a thread name, without the terminating NUL.
constexpr std::size_t thread_name_bytes_max = 15;

[[noreturn]] void task_failed(const std::string& name, const char* what) {
  fmt::print(stderr, "seedpool: task '{}' ended with an exception: {}; terminating\n", name, what);
  std::fflush(stderr);
  std::terminate();
}

}  // namespace

void set_thread_name(std::string_view name) {
  const std::string cut(name.substr(0, thread_name_bytes_max));
  static_cast<void>(::pthread_setname_np(::pthread_self(), cut.c_str()));
}

std::string thread_name() {
  char name[thread_name_bytes_max + 1] = {};
  if (::pthread_getname_np(::pthread_self(), name, sizeof name) != 0) {
    return "?";
  }
  return name;
}

TaskThreads::~TaskThreads() {
  std::lock_guard<std::mutex> lock(mutex_);
  SEEDPOOL_ASSERT_MSG(threads_.empty(), "TaskThreads destroyed with tasks not joined");
}

void TaskThreads::spawn(std::string name, std::function<void()> body) {
  join_finished();
  std::lock_guard<std::mutex> lock(mutex_);
  const std::uint64_t id = next_id_++;
  // Created under the lock, so the thread is in threads_ before it can
  // report itself finished.
  threads_.emplace(id, std::thread([this, id, name = std::move(name), body = std::move(body)] {
                     run(id, name, body);
                   }));
}

void TaskThreads::run(std::uint64_t id, const std::string& name, const std::function<void()>& body) {
  set_thread_name(name);
  try {
    body();
  } catch (const std::exception& e) {
    task_failed(name, e.what());
  } catch (...) {
    task_failed(name, "an exception not derived from std::exception");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  finished_.push_back(id);
}

void TaskThreads::join_finished() {
  std::vector<std::thread> done;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const std::uint64_t id : finished_) {
      const auto it = threads_.find(id);
      if (it == threads_.end()) {
        continue;  // join_all() took it and joins it
      }
      done.push_back(std::move(it->second));
      threads_.erase(it);
    }
    finished_.clear();
  }
  for (std::thread& thread : done) {
    thread.join();  // its body has returned; only the thread's exit is left
  }
}

void TaskThreads::join_all() {
  for (;;) {
    std::vector<std::thread> running;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (threads_.empty()) {
        finished_.clear();
        return;
      }
      for (auto& [id, thread] : threads_) {
        running.push_back(std::move(thread));
      }
      threads_.clear();
      finished_.clear();
    }
    for (std::thread& thread : running) {
      SEEDPOOL_ASSERT_MSG(thread.get_id() != std::this_thread::get_id(), "a task destroyed its own RealWorld");
      thread.join();
    }
  }
}

}  // namespace seedpool::real::detail
