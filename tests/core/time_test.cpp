// Tests for Duration and Instant: unit helpers, exact integer arithmetic,
// ordering, and saturation at the ends of the range, because "no deadline"
// (Instant::max()) must survive every addition a caller may apply to it.

#include <seedpool/core/time.hpp>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <limits>
#include <ostream>

namespace seedpool {

// Let GoogleTest print times as numbers in failure messages. Static, so that
// other test files may define their own.
static void PrintTo(Duration duration, std::ostream* out) { *out << duration.ns() << "ns"; }
static void PrintTo(Instant instant, std::ostream* out) { *out << "@" << instant.ns() << "ns"; }

namespace {

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t int64_min = std::numeric_limits<std::int64_t>::min();

// GCC and Clang provide a 128-bit integer; it is the reference the saturating
// arithmetic is checked against, since it cannot overflow on two int64 operands.
__extension__ using Int128 = __int128;

std::int64_t clamp_to_int64(Int128 value) {
  if (value > int64_max) {
    return int64_max;
  }
  if (value < int64_min) {
    return int64_min;
  }
  return static_cast<std::int64_t>(value);
}

TEST(DurationUnits, HelpersCountNanoseconds) {
  EXPECT_EQ(nanoseconds(7).ns(), 7);
  EXPECT_EQ(microseconds(1).ns(), 1'000);
  EXPECT_EQ(milliseconds(1).ns(), 1'000'000);
  EXPECT_EQ(seconds(1).ns(), 1'000'000'000);
  EXPECT_EQ(minutes(1).ns(), 60'000'000'000);
  EXPECT_EQ(hours(1).ns(), 3'600'000'000'000);
  EXPECT_EQ(hours(24 * 30).ns(), 2'592'000'000'000'000);
}

TEST(DurationUnits, HelpersAgreeWithEachOther) {
  EXPECT_EQ(microseconds(3), nanoseconds(3'000));
  EXPECT_EQ(milliseconds(3), microseconds(3'000));
  EXPECT_EQ(seconds(3), milliseconds(3'000));
  EXPECT_EQ(minutes(3), seconds(180));
  EXPECT_EQ(hours(3), minutes(180));
  EXPECT_EQ(milliseconds(-2).ns(), -2'000'000);
}

TEST(DurationUnits, HelpersSaturateInsteadOfOverflowing) {
  // 2^63 ns is about 292 years; asking for more must clamp, not wrap negative.
  EXPECT_EQ(hours(int64_max / 1'000), Duration::max());
  EXPECT_EQ(seconds(300LL * 365 * 24 * 3600), Duration::max());
  EXPECT_EQ(hours(-(int64_max / 1'000)).ns(), int64_min);
}

TEST(DurationArithmetic, AddSubtractMultiply) {
  EXPECT_EQ(milliseconds(2) + milliseconds(3), milliseconds(5));
  EXPECT_EQ(milliseconds(2) - milliseconds(3), milliseconds(-1));
  EXPECT_EQ(milliseconds(2) * 4, milliseconds(8));
  EXPECT_EQ(milliseconds(2) * -4, milliseconds(-8));
  EXPECT_EQ(milliseconds(2) * 0, Duration::zero());
  EXPECT_EQ(Duration(), Duration::zero());
}

TEST(DurationArithmetic, Ordering) {
  EXPECT_LT(nanoseconds(1), microseconds(1));
  EXPECT_GT(seconds(1), milliseconds(999));
  EXPECT_LT(milliseconds(-1), Duration::zero());
  EXPECT_LT(hours(24 * 365 * 200), Duration::max());
}

TEST(DurationArithmetic, SaturatesAtBothEnds) {
  EXPECT_EQ(Duration::max() + nanoseconds(1), Duration::max());
  EXPECT_EQ(Duration::max() + Duration::max(), Duration::max());
  EXPECT_EQ(Duration::max() * 2, Duration::max());
  EXPECT_EQ(Duration::max() * -2, Duration::from_ns(int64_min));
  EXPECT_EQ(Duration::from_ns(int64_min) - nanoseconds(1), Duration::from_ns(int64_min));
  EXPECT_EQ(Duration::from_ns(int64_min) * 2, Duration::from_ns(int64_min));
  EXPECT_EQ(Duration::from_ns(int64_min) * -1, Duration::max());
  EXPECT_EQ(Duration::from_ns(int64_min) + Duration::from_ns(int64_min), Duration::from_ns(int64_min));
  EXPECT_EQ(Duration::zero() - Duration::max(), Duration::from_ns(-int64_max));
}

// The true difference 0 - (-2^63) is 2^63, one more than the largest count,
// so the saturating result is Duration::max(). Negating the most negative
// count before adding (as saturating subtraction by "a + -b" does) overflows.
TEST(DurationArithmetic, SubtractingTheMostNegativeDurationSaturates) {
  const Duration most_negative = Duration::from_ns(int64_min);
  EXPECT_EQ((Duration::zero() - most_negative).ns(), int64_max);
  EXPECT_EQ((seconds(1) - most_negative).ns(), int64_max);
  EXPECT_EQ((Duration::from_ns(-1) - most_negative).ns(), int64_max);
}

TEST(InstantArithmetic, MaxIsNeverAndStaysNever) {
  EXPECT_TRUE(Instant::max().is_max());
  EXPECT_FALSE(Instant::zero().is_max());
  EXPECT_EQ(Instant::max() + nanoseconds(1), Instant::max());
  EXPECT_EQ(Instant::max() + hours(1), Instant::max());
  EXPECT_EQ(Instant::max() + Duration::max(), Instant::max());
  EXPECT_TRUE((Instant::max() + seconds(5)).is_max());
  EXPECT_EQ(Instant::zero() + Duration::max(), Instant::max());
  EXPECT_EQ(Instant::from_ns(1) + Duration::max(), Instant::max());
}

TEST(InstantArithmetic, OffsetsAndDifferences) {
  const Instant start = Instant::zero() + milliseconds(10);
  EXPECT_EQ(start.ns(), 10'000'000);
  EXPECT_EQ(start + milliseconds(5), Instant::from_ns(15'000'000));
  EXPECT_EQ(start - milliseconds(5), Instant::from_ns(5'000'000));
  EXPECT_EQ((start + seconds(2)) - start, seconds(2));
  EXPECT_EQ(start - (start + seconds(2)), seconds(-2));
  EXPECT_EQ(Instant(), Instant::zero());
  EXPECT_LT(start, start + nanoseconds(1));
  EXPECT_LT(start + hours(1000), Instant::max());
}

TEST(InstantArithmetic, DifferencesSaturate) {
  EXPECT_EQ(Instant::max() - Instant::from_ns(-1), Duration::max());
  EXPECT_EQ(Instant::from_ns(-1) - Instant::max(), Duration::from_ns(int64_min));
  EXPECT_EQ(Instant::max() - Instant::zero(), Duration::max());
  EXPECT_EQ(Instant::from_ns(int64_min) - seconds(1), Instant::from_ns(int64_min));
}

// The same overflow as for Duration, reached through Instant: subtracting an
// instant at the most negative count from a non-negative one saturates.
TEST(InstantArithmetic, SubtractingTheMostNegativeInstantSaturates) {
  EXPECT_EQ((Instant::zero() - Instant::from_ns(int64_min)).ns(), int64_max);
  EXPECT_EQ((Instant::zero() - Duration::from_ns(int64_min)).ns(), int64_max);
}

RC_GTEST_PROP(TimeProperty, DurationAdditionIsClampedExactSum, (std::int64_t a, std::int64_t b)) {
  const Int128 exact = static_cast<Int128>(a) + static_cast<Int128>(b);
  RC_ASSERT((Duration::from_ns(a) + Duration::from_ns(b)).ns() == clamp_to_int64(exact));
}

RC_GTEST_PROP(TimeProperty, DurationSubtractionIsClampedExactDifference, (std::int64_t a, std::int64_t b)) {
  // The most negative count is covered by its own test above; here the
  // property holds for every other pair.
  RC_PRE(b != int64_min);
  const Int128 exact = static_cast<Int128>(a) - static_cast<Int128>(b);
  RC_ASSERT((Duration::from_ns(a) - Duration::from_ns(b)).ns() == clamp_to_int64(exact));
}

RC_GTEST_PROP(TimeProperty, DurationMultiplicationIsClampedExactProduct, (std::int64_t a, std::int64_t k)) {
  const Int128 exact = static_cast<Int128>(a) * static_cast<Int128>(k);
  RC_ASSERT((Duration::from_ns(a) * k).ns() == clamp_to_int64(exact));
}

RC_GTEST_PROP(TimeProperty, NeverPlusAnyNonNegativeDurationIsNever, (std::int64_t ns)) {
  const Duration d = Duration::from_ns(ns == int64_min ? 0 : (ns < 0 ? -ns : ns));
  RC_ASSERT((Instant::max() + d).is_max());
}

RC_GTEST_PROP(TimeProperty, InstantPlusDifferenceRoundTrips, (std::int32_t a_ms, std::int32_t b_ms)) {
  // Within a few centuries nothing saturates, so the algebra must be exact.
  const Instant a = Instant::zero() + milliseconds(a_ms);
  const Instant b = Instant::zero() + milliseconds(b_ms);
  RC_ASSERT(a + (b - a) == b);
  RC_ASSERT(b - (b - a) == a);
  RC_ASSERT((a < b) == ((b - a) > Duration::zero()));
}

}  // namespace
}  // namespace seedpool
