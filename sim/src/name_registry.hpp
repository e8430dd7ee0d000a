#pragma once

// A process-wide list of names, each at a fixed index from its first use on:
// what fault sites and invariants are registered in. Use sites resolve a name
// once, so a lock per lookup costs nothing that matters.

#include <seedpool/core/assert.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace seedpool::sim::detail {

// Whether `name` can name a fault site or an invariant: 1 to `bytes_max`
// letters, digits, '.', '_', '-' or '/'. Such names appear in coverage keys,
// in "name=ppm" descriptions and in "[name] message" failures, so they hold
// no spaces, no '=' and no brackets.
bool valid_registered_name(std::string_view name, std::size_t bytes_max) noexcept;

class NameRegistry {
 public:
  explicit NameRegistry(std::size_t names_max) : names_max_(names_max) {}

  // The index of `name`, added when new. Returns the index and the
  // registry's copy of the name, valid for the whole process.
  std::pair<std::uint32_t, std::string_view> find_or_add(std::string_view name) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (const auto it = indices_.find(name); it != indices_.end()) {
      return {it->second, names_[it->second]};
    }
    SEEDPOOL_ASSERT_MSG(names_.size() < names_max_, "more registered names than the registry's maximum");
    const auto index = static_cast<std::uint32_t>(names_.size());
    const std::string& stored = names_.emplace_back(name);  // a deque: earlier names never move
    indices_.emplace(stored, index);
    return {index, stored};
  }

  // The name at `index`; empty when none.
  std::string_view name(std::uint32_t index) {
    const std::lock_guard<std::mutex> lock(mutex_);
    return index < names_.size() ? std::string_view(names_[index]) : std::string_view();
  }

 private:
  const std::size_t names_max_;
  std::mutex mutex_;
  std::deque<std::string> names_;
  std::map<std::string_view, std::uint32_t, std::less<>> indices_;  // views of names_
};

}  // namespace seedpool::sim::detail
