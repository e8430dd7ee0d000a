#pragma once

// Fiber stacks for the simulator, reused across tasks and across runs. A sweep
// runs thousands of short simulations, each spawning dozens of tasks; mapping
// a fresh stack for each would dominate its cost.

#include <boost/context/stack_context.hpp>

#include <cstddef>
#include <memory>
#include <vector>

namespace seedpool::sim {

class StackPool {
 public:
  // Stacks of `stack_bytes` (rounded up to whole pages) plus one guard page
  // below, so an overflow faults instead of corrupting a neighbour. At most
  // `cached_max` free stacks are kept; the rest are unmapped.
  StackPool(std::size_t stack_bytes, std::size_t cached_max);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // Throws std::bad_alloc when the system refuses memory.
  boost::context::stack_context allocate();
  void deallocate(boost::context::stack_context& stack) noexcept;
  // Takes back a stack of this pool whose frames were never unwound (a
  // fiber abandoned mid-run), to be reused as it is. The caller guarantees
  // that nothing will touch the old frames again.
  void reclaim(boost::context::stack_context& stack) noexcept;

  std::size_t stack_bytes() const noexcept { return stack_bytes_; }
  std::size_t cached() const noexcept { return free_.size(); }

  // The calling thread's pool for stacks of this size, shared by every
  // SimWorld on the thread.
  static std::shared_ptr<StackPool> for_this_thread(std::size_t stack_bytes);

  static constexpr std::size_t cached_max_default = 4'096;

 private:
  void unmap(void* stack_top) noexcept;

  std::size_t stack_bytes_;
  std::size_t page_bytes_;
  std::size_t cached_max_;
  std::vector<void*> free_;  // stack tops (highest address) of free stacks
};

// The allocator handed to boost::context::fiber; a thin reference to a pool.
class PooledStack {
 public:
  explicit PooledStack(StackPool& pool) noexcept : pool_(&pool) {}
  boost::context::stack_context allocate() { return pool_->allocate(); }
  void deallocate(boost::context::stack_context& stack) noexcept { pool_->deallocate(stack); }

 private:
  StackPool* pool_;
};

}  // namespace seedpool::sim
