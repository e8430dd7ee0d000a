#pragma once

// Invariants by identity. A run that breaks one fails with
// SimWorld::fail(invariant, message): the message reads "[name] message", and
// the result carries the invariant itself (RunResult::invariant), by which
// sweeps, shrinking, seed files and reports classify the failure. Nothing
// reads the name back out of the message.
//
//   if (late) {
//     ctx.world.fail(SEEDPOOL_INVARIANT("fenced-order"), "client 2 wrote under an old token");
//   }
//
// The name is resolved once per use site to an Invariant, a small index in a
// process-wide registry. The same name is the same invariant wherever it is
// used, as with fault sites (faults.hpp).

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace seedpool::sim {

// Distinct invariant names one process may declare.
inline constexpr std::size_t invariants_max = 4096;
// The longest invariant name, in bytes.
inline constexpr std::size_t invariant_name_bytes_max = 64;

// Whether `name` can name an invariant: 1 to invariant_name_bytes_max
// letters, digits, '.', '_', '-' or '/' (it appears as "[name]" in messages
// and as a failure kind in reports and seed files).
bool valid_invariant_name(std::string_view name) noexcept;

class Invariant {
 public:
  // The invariant named `name` (asserted valid), registered on its first
  // use. Thread-safe; meant to be called once per use site
  // (SEEDPOOL_INVARIANT) or kept in a static.
  static Invariant named(std::string_view name);

  constexpr std::uint32_t index() const noexcept { return index_; }
  // The registry's copy: valid for the whole process.
  constexpr std::string_view name() const noexcept { return name_; }

  friend constexpr bool operator==(Invariant a, Invariant b) noexcept { return a.index_ == b.index_; }

 private:
  constexpr Invariant(std::uint32_t index, std::string_view name) noexcept : index_(index), name_(name) {}

  std::uint32_t index_;
  std::string_view name_;
};

}  // namespace seedpool::sim

// The Invariant named `name` (a string literal), resolved once per use site.
#define SEEDPOOL_INVARIANT(name)                                                                          \
  ([]() -> ::seedpool::sim::Invariant {                                                                   \
    static const ::seedpool::sim::Invariant seedpool_invariant_ = ::seedpool::sim::Invariant::named(name); \
    return seedpool_invariant_;                                                                           \
  }())
