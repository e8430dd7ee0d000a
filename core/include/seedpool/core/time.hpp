#pragma once

// Time in seedpool is an integer count of nanoseconds. There is no floating
// point time anywhere: a simulated run must replay bit for bit, and doubles
// accumulated over hours of virtual time do not.

#include <compare>
#include <cstdint>
#include <limits>

namespace seedpool {

// A span of time in nanoseconds. Arithmetic saturates at the representable
// range so that "no deadline" (Duration::max()) survives additions.
class Duration {
 public:
  constexpr Duration() = default;
  static constexpr Duration from_ns(std::int64_t ns) { return Duration(ns); }
  static constexpr Duration zero() { return Duration(0); }
  static constexpr Duration max() { return Duration(std::numeric_limits<std::int64_t>::max()); }

  constexpr std::int64_t ns() const { return ns_; }

  friend constexpr Duration operator+(Duration a, Duration b) { return Duration(saturating_add(a.ns_, b.ns_)); }
  friend constexpr Duration operator-(Duration a, Duration b) { return Duration(saturating_sub(a.ns_, b.ns_)); }
  friend constexpr Duration operator*(Duration a, std::int64_t k) {
    std::int64_t out = 0;
    if (__builtin_mul_overflow(a.ns_, k, &out)) {
      return (a.ns_ < 0) != (k < 0) ? Duration(std::numeric_limits<std::int64_t>::min()) : max();
    }
    return Duration(out);
  }
  friend constexpr auto operator<=>(Duration, Duration) = default;

  // Adds two nanosecond counts, clamping instead of overflowing.
  static constexpr std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
    std::int64_t out = 0;
    if (__builtin_add_overflow(a, b, &out)) {
      return b > 0 ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min();
    }
    return out;
  }

  // Subtracts two nanosecond counts, clamping instead of overflowing (also
  // when b is the most negative count, whose negation does not exist).
  static constexpr std::int64_t saturating_sub(std::int64_t a, std::int64_t b) {
    std::int64_t out = 0;
    if (__builtin_sub_overflow(a, b, &out)) {
      return b < 0 ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min();
    }
    return out;
  }

 private:
  constexpr explicit Duration(std::int64_t ns) : ns_(ns) {}
  std::int64_t ns_ = 0;
};

constexpr Duration nanoseconds(std::int64_t n) { return Duration::from_ns(n); }
constexpr Duration microseconds(std::int64_t n) { return Duration::from_ns(n) * 1'000; }
constexpr Duration milliseconds(std::int64_t n) { return Duration::from_ns(n) * 1'000'000; }
constexpr Duration seconds(std::int64_t n) { return Duration::from_ns(n) * 1'000'000'000; }
constexpr Duration minutes(std::int64_t n) { return seconds(n) * 60; }
constexpr Duration hours(std::int64_t n) { return minutes(n) * 60; }

// A point on a World's clock: nanoseconds since that World's epoch. The epoch
// is the World's own (virtual zero in sim, an arbitrary steady point in real),
// so instants from different Worlds must not be compared. Instant::max() is
// "never" and is the deadline of a wait that has none.
class Instant {
 public:
  constexpr Instant() = default;
  static constexpr Instant from_ns(std::int64_t ns) { return Instant(ns); }
  static constexpr Instant zero() { return Instant(0); }
  static constexpr Instant max() { return Instant(std::numeric_limits<std::int64_t>::max()); }

  constexpr std::int64_t ns() const { return ns_; }
  constexpr bool is_max() const { return ns_ == std::numeric_limits<std::int64_t>::max(); }

  friend constexpr Instant operator+(Instant t, Duration d) {
    return Instant(Duration::saturating_add(t.ns_, d.ns()));
  }
  friend constexpr Instant operator-(Instant t, Duration d) {
    return Instant(Duration::saturating_sub(t.ns_, d.ns()));
  }
  friend constexpr Duration operator-(Instant a, Instant b) {
    return Duration::from_ns(Duration::saturating_sub(a.ns_, b.ns_));
  }
  friend constexpr auto operator<=>(Instant, Instant) = default;

 private:
  constexpr explicit Instant(std::int64_t ns) : ns_(ns) {}
  std::int64_t ns_ = 0;
};

}  // namespace seedpool
