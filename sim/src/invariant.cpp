#include <seedpool/core/assert.hpp>
#include <seedpool/sim/invariant.hpp>

#include "name_registry.hpp"

#include <algorithm>

namespace seedpool::sim {

namespace detail {

bool valid_registered_name(std::string_view name, std::size_t bytes_max) noexcept {
  if (name.empty() || name.size() > bytes_max) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-' || c == '/';
  });
}

}  // namespace detail

namespace {

detail::NameRegistry& invariant_registry() {
  static auto* registry = new detail::NameRegistry(invariants_max);  // never destroyed: used during static init
  return *registry;
}

}  // namespace

bool valid_invariant_name(std::string_view name) noexcept {
  return detail::valid_registered_name(name, invariant_name_bytes_max);
}

Invariant Invariant::named(std::string_view name) {
  SEEDPOOL_ASSERT_MSG(valid_invariant_name(name), "an invariant name is 1 to 64 of [A-Za-z0-9._/-]");
  const auto [index, stored] = invariant_registry().find_or_add(name);
  return Invariant(index, stored);
}

}  // namespace seedpool::sim
