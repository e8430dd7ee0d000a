// EarlyReplies: whether a caller waiting for a reply reads the worker's
// stdout before it polls it, learnt from what its first reads found.

#include "process_shared.hpp"

#include <gtest/gtest.h>

namespace seedpool::real::detail {
namespace {

TEST(EarlyReplies, ReadsFirstUntilTwoFirstReadsInARowFindNothing) {
  EarlyReplies early;
  EXPECT_TRUE(early.read_first());
  early.note(false);
  EXPECT_TRUE(early.read_first()) << "one miss is not a pattern";
  early.note(false);
  EXPECT_FALSE(early.read_first());
}

TEST(EarlyReplies, WhilePollingFirstItLooksAgainEveryEighthCallAndOneFoundReplyIsNotEnoughToSwitchBack) {
  EarlyReplies early;
  early.note(false);
  early.note(false);
  early.note(false);
  for (int round = 0; round < 3; ++round) {
    for (int call = 1; call < EarlyReplies::look_every; ++call) {
      EXPECT_FALSE(early.read_first()) << "round " << round << ", call " << call;
    }
    EXPECT_TRUE(early.read_first()) << "round " << round << ": the look";
    early.note(false);
  }
  // From the floor, two looks that find the reply bring reading first back.
  for (int call = 1; call < EarlyReplies::look_every; ++call) {
    EXPECT_FALSE(early.read_first());
  }
  ASSERT_TRUE(early.read_first());
  early.note(true);
  for (int call = 1; call < EarlyReplies::look_every; ++call) {
    EXPECT_FALSE(early.read_first());
  }
  ASSERT_TRUE(early.read_first());
  early.note(true);
  EXPECT_TRUE(early.read_first());
  EXPECT_TRUE(early.read_first());
}

}  // namespace
}  // namespace seedpool::real::detail
