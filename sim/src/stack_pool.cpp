#include <seedpool/core/assert.hpp>
#include <seedpool/sim/stack_pool.hpp>

#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <map>
#include <new>

namespace seedpool::sim {
namespace {

std::size_t round_up(std::size_t value, std::size_t unit) { return (value + unit - 1) / unit * unit; }

}  // namespace

StackPool::StackPool(std::size_t stack_bytes, std::size_t cached_max)
    : page_bytes_(static_cast<std::size_t>(::sysconf(_SC_PAGESIZE))), cached_max_(cached_max) {
  SEEDPOOL_ASSERT(stack_bytes >= 4 * 1024);
  stack_bytes_ = round_up(stack_bytes, page_bytes_);
}

StackPool::~StackPool() {
  for (void* top : free_) {
    unmap(top);
  }
}

boost::context::stack_context StackPool::allocate() {
  boost::context::stack_context stack;
  stack.size = stack_bytes_;
  if (!free_.empty()) {
    stack.sp = free_.back();
    free_.pop_back();
    return stack;
  }
  const std::size_t mapped = stack_bytes_ + page_bytes_;
  void* base = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) {
    throw std::bad_alloc();
  }
  if (::mprotect(base, page_bytes_, PROT_NONE) != 0) {
    ::munmap(base, mapped);
    throw std::bad_alloc();
  }
  stack.sp = static_cast<char*>(base) + mapped;
  return stack;
}

void StackPool::deallocate(boost::context::stack_context& stack) noexcept {
  SEEDPOOL_ASSERT(stack.size == stack_bytes_);
  if (free_.size() < cached_max_) {
    free_.push_back(stack.sp);
  } else {
    unmap(stack.sp);
  }
  stack.sp = nullptr;
}

void StackPool::reclaim(boost::context::stack_context& stack) noexcept {
  SEEDPOOL_ASSERT(stack.sp != nullptr);
#if defined(__SANITIZE_ADDRESS__)
  // The old frames' redzones are still poisoned: nothing returned through
  // them. Fresh frames would trip over them.
  ASAN_UNPOISON_MEMORY_REGION(static_cast<char*>(stack.sp) - stack.size, stack.size);
#endif
  deallocate(stack);
}

void StackPool::unmap(void* stack_top) noexcept {
  const std::size_t mapped = stack_bytes_ + page_bytes_;
  ::munmap(static_cast<char*>(stack_top) - mapped, mapped);
}

std::shared_ptr<StackPool> StackPool::for_this_thread(std::size_t stack_bytes) {
  thread_local std::map<std::size_t, std::shared_ptr<StackPool>> pools;
  std::shared_ptr<StackPool>& pool = pools[stack_bytes];
  if (!pool) {
    pool = std::make_shared<StackPool>(stack_bytes, cached_max_default);
  }
  return pool;
}

}  // namespace seedpool::sim
