// A library the integration tests preload into the seedpool command: its
// pthread_create refuses (EAGAIN, as the kernel's thread or memory limits
// make it) every thread after the first SEEDPOOL_TEST_THREADS_MAX of the
// process. A limit that refuses exactly the n-th thread, where a resource
// limit would refuse some thread or allocation near it.

#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>

namespace {

using CreateFn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);

long threads_max() {
  const char* text = std::getenv("SEEDPOOL_TEST_THREADS_MAX");
  return text == nullptr ? -1 : std::strtol(text, nullptr, 10);
}

}  // namespace

extern "C" int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  static const auto next = reinterpret_cast<CreateFn>(::dlsym(RTLD_NEXT, "pthread_create"));
  static const long max = threads_max();
  static std::atomic<long> created{0};
  if (max >= 0 && created.fetch_add(1) >= max) {
    return EAGAIN;
  }
  return next(thread, attr, start, arg);
}
