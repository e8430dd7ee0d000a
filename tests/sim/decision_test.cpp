// Tests for the decision stream: the generator is ours and stable, bounded
// draws are in range and unbiased, a seeded source is reproducible, and the
// replay rules (clamp, default past the end, budget) that shrinking relies on.

#include <seedpool/sim/decision.hpp>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace seedpool::sim {
namespace {

constexpr std::uint64_t uint64_max = std::numeric_limits<std::uint64_t>::max();

// xoshiro256** and SplitMix64 written out from the published reference code,
// independently of the library, so that a change to the generator (which would
// silently change what every recorded seed means) fails here.
struct ReferenceXoshiro {
  std::uint64_t s[4];

  explicit ReferenceXoshiro(std::uint64_t seed) {
    std::uint64_t x = seed;
    for (std::uint64_t& word : s) {
      x += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }

  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  std::uint64_t next() {
    const std::uint64_t result = rotl(s[1] * 5, 7) * 9;
    const std::uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
};

TEST(Splitmix64, MatchesPublishedFirstOutputs) {
  // The first outputs of SplitMix64 from state 0, as published with the
  // reference implementation.
  std::uint64_t state = 0;
  EXPECT_EQ(splitmix64(state), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(splitmix64(state), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(splitmix64(state), 0x06c45d188009454fULL);
}

TEST(Rng, MatchesReferenceXoshiro256StarStar) {
  for (const std::uint64_t seed : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{42}, uint64_max}) {
    Rng rng(seed);
    ReferenceXoshiro reference(seed);
    for (int i = 0; i < 1'000; ++i) {
      ASSERT_EQ(rng.next(), reference.next()) << "seed " << seed << " draw " << i;
    }
  }
}

TEST(Rng, SameSeedSameSequenceDifferentSeedDifferentSequence) {
  Rng a(7);
  Rng b(7);
  Rng c(8);
  int differences = 0;
  for (int i = 0; i < 100; ++i) {
    const std::uint64_t x = a.next();
    ASSERT_EQ(x, b.next());
    differences += x != c.next() ? 1 : 0;
  }
  EXPECT_EQ(differences, 100);
}

TEST(Rng, BelowOneIsAlwaysZero) {
  Rng rng(3);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(rng.below(1), 0U);
  }
}

TEST(Rng, BelowStaysInRangeForAwkwardBounds) {
  // Bounds just above powers of two reject the most draws in Lemire's method;
  // the largest bounds exercise the 128-bit product.
  const std::array<std::uint64_t, 9> bounds = {2, 3, 7, 1'000'003, (std::uint64_t{1} << 32) + 1,
                                               (std::uint64_t{1} << 63) + 1, uint64_max - 1, uint64_max,
                                               std::uint64_t{1} << 63};
  Rng rng(11);
  for (const std::uint64_t bound : bounds) {
    for (int i = 0; i < 2'000; ++i) {
      ASSERT_LT(rng.below(bound), bound) << "bound " << bound;
    }
  }
}

// Pearson's chi-square statistic of `draws` values below `bound` from a fixed
// seed. The seed is fixed, so the statistic is a constant: the test cannot
// flake, yet a biased or broken generator moves it far past the bound.
double chi_square(std::uint64_t seed, std::uint64_t bound, int draws) {
  std::vector<int> counts(static_cast<std::size_t>(bound), 0);
  Rng rng(seed);
  for (int i = 0; i < draws; ++i) {
    ++counts[static_cast<std::size_t>(rng.below(bound))];
  }
  const double expected = static_cast<double>(draws) / static_cast<double>(bound);
  double statistic = 0;
  for (const int count : counts) {
    const double diff = count - expected;
    statistic += diff * diff / expected;
  }
  return statistic;
}

TEST(Rng, BelowIsRoughlyUniform) {
  // The 0.1% critical values are 27.9 (9 degrees of freedom), 20.5 (5) and
  // 149.4 (99); the bounds below are looser still.
  EXPECT_LT(chi_square(42, 10, 100'000), 40.0);
  EXPECT_LT(chi_square(43, 6, 60'000), 30.0);
  EXPECT_LT(chi_square(44, 100, 200'000), 180.0);
}

TEST(Rng, BelowHugeBoundSplitsEvenly) {
  // With bound 3 * 2^62 a modulo-biased method would put about half the draws,
  // not two thirds, below 2^63; an unbiased one puts two thirds there.
  const std::uint64_t bound = 3 * (std::uint64_t{1} << 62);
  Rng rng(5);
  int low = 0;
  const int draws = 30'000;
  for (int i = 0; i < draws; ++i) {
    low += rng.below(bound) < (std::uint64_t{1} << 63) ? 1 : 0;
  }
  EXPECT_NEAR(static_cast<double>(low) / draws, 2.0 / 3.0, 0.02);
}

TEST(DecisionSource, SeededIsReproducibleAndRecordsEveryChoice) {
  auto first = DecisionSource::seeded(99, 1'000);
  auto second = DecisionSource::seeded(99, 1'000);
  std::vector<std::uint64_t> values;
  for (std::uint64_t i = 0; i < 200; ++i) {
    const std::uint64_t bound = 2 + i % 17;
    const std::uint64_t value = first.decide(bound);
    ASSERT_LT(value, bound);
    ASSERT_EQ(value, second.decide(bound));
    values.push_back(value);
  }
  EXPECT_FALSE(first.replaying());
  EXPECT_FALSE(first.overflowed());
  EXPECT_EQ(first.recorded(), values);
  EXPECT_EQ(second.recorded(), values);
}

TEST(DecisionSource, DifferentSeedsMakeDifferentChoices) {
  auto first = DecisionSource::seeded(1, 1'000);
  auto second = DecisionSource::seeded(2, 1'000);
  for (int i = 0; i < 64; ++i) {
    (void)first.decide(1'000'000);
    (void)second.decide(1'000'000);
  }
  EXPECT_NE(first.recorded(), second.recorded());
}

TEST(DecisionSource, BoundOneIsNoChoiceInBothModes) {
  auto seeded = DecisionSource::seeded(5, 1'000);
  auto plain = DecisionSource::seeded(5, 1'000);
  // A bound-1 choice between two real ones must neither be recorded nor shift
  // the stream, or a seeded run and its replay would fall out of step.
  const std::uint64_t a = seeded.decide(100);
  EXPECT_EQ(seeded.decide(1), 0U);
  EXPECT_EQ(seeded.decide(1), 0U);
  const std::uint64_t b = seeded.decide(100);
  EXPECT_EQ(seeded.recorded().size(), 2U);
  EXPECT_EQ(a, plain.decide(100));
  EXPECT_EQ(b, plain.decide(100));

  auto replaying = DecisionSource::replay({4, 5}, 1'000);
  EXPECT_EQ(replaying.decide(1), 0U);
  EXPECT_EQ(replaying.decide(10), 4U);
  EXPECT_EQ(replaying.decide(1), 0U);
  EXPECT_EQ(replaying.decide(10), 5U);
  EXPECT_EQ(replaying.recorded(), (std::vector<std::uint64_t>{4, 5}));
}

TEST(DecisionSource, ReplayReturnsTheScriptThenZeros) {
  auto source = DecisionSource::replay({3, 1, 4}, 1'000);
  EXPECT_TRUE(source.replaying());
  EXPECT_EQ(source.decide(10), 3U);
  EXPECT_EQ(source.decide(10), 1U);
  EXPECT_EQ(source.decide(10), 4U);
  EXPECT_EQ(source.decide(10), 0U);
  EXPECT_EQ(source.decide(10), 0U);
  EXPECT_EQ(source.recorded(), (std::vector<std::uint64_t>{3, 1, 4, 0, 0}));
  EXPECT_FALSE(source.overflowed());
}

TEST(DecisionSource, ReplayClampsOutOfRangeValuesToZero) {
  auto source = DecisionSource::replay({5, 5, 9, uint64_max, 2}, 1'000);
  EXPECT_EQ(source.decide(6), 5U);  // in range: kept
  EXPECT_EQ(source.decide(5), 0U);  // equal to the bound: out of range
  EXPECT_EQ(source.decide(3), 0U);
  EXPECT_EQ(source.decide(uint64_max), 0U);
  EXPECT_EQ(source.decide(3), 2U);
  // What is recorded is what was used, so replaying the record gives the
  // same choices again.
  EXPECT_EQ(source.recorded(), (std::vector<std::uint64_t>{5, 0, 0, 0, 2}));
}

TEST(DecisionSource, EmptyReplayIsAllDefaults) {
  auto source = DecisionSource::replay({}, 1'000);
  for (std::uint64_t bound = 2; bound < 50; ++bound) {
    ASSERT_EQ(source.decide(bound), 0U);
  }
  EXPECT_EQ(source.recorded(), std::vector<std::uint64_t>(48, 0));
}

TEST(DecisionSource, OverflowsAfterDecisionsMax) {
  auto source = DecisionSource::seeded(8, 3);
  for (int i = 0; i < 3; ++i) {
    (void)source.decide(1'000);
    EXPECT_FALSE(source.overflowed());
  }
  // No choice needs no budget, even when the budget is spent.
  EXPECT_EQ(source.decide(1), 0U);
  EXPECT_FALSE(source.overflowed());
  EXPECT_EQ(source.decide(1'000), 0U);
  EXPECT_TRUE(source.overflowed());
  EXPECT_EQ(source.decide(1'000), 0U);
  EXPECT_EQ(source.recorded().size(), 3U);

  auto replaying = DecisionSource::replay({7, 7, 7, 7}, 2);
  EXPECT_EQ(replaying.decide(10), 7U);
  EXPECT_EQ(replaying.decide(10), 7U);
  EXPECT_EQ(replaying.decide(10), 0U);
  EXPECT_TRUE(replaying.overflowed());
  EXPECT_EQ(replaying.recorded().size(), 2U);
}

RC_GTEST_PROP(DecisionSourceProperty, ReplayOfRecordReproducesEveryChoice,
              (std::uint64_t seed, std::vector<std::uint64_t> raw_bounds)) {
  auto seeded = DecisionSource::seeded(seed, 1'000);
  std::vector<std::uint64_t> bounds;
  std::vector<std::uint64_t> values;
  for (const std::uint64_t raw : raw_bounds) {
    // Mix tiny bounds (including the no-choice bound 1) with huge ones.
    const std::uint64_t bound = raw % 3 == 0 ? 1 + raw % 5 : 1 + raw;
    bounds.push_back(bound == 0 ? 1 : bound);
    values.push_back(seeded.decide(bounds.back()));
    RC_ASSERT(values.back() < bounds.back());
  }
  auto replaying = DecisionSource::replay(seeded.recorded(), 1'000);
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    RC_ASSERT(replaying.decide(bounds[i]) == values[i]);
  }
  RC_ASSERT(replaying.recorded() == seeded.recorded());
}

}  // namespace
}  // namespace seedpool::sim
