// core/progress.h: the durations of progress lines and ETAs.
#include "core/progress.h"

#include <gtest/gtest.h>

namespace vitrine {
namespace {

TEST(FormatDuration, MinutesSecondsAndHours) {
  EXPECT_EQ(FormatDuration(0), "0:00");
  EXPECT_EQ(FormatDuration(0.4), "0:00");
  EXPECT_EQ(FormatDuration(42.6), "0:43");
  EXPECT_EQ(FormatDuration(725), "12:05");
  EXPECT_EQ(FormatDuration(3599.4), "59:59");
  EXPECT_EQ(FormatDuration(3600), "1:00:00");
  EXPECT_EQ(FormatDuration(10931), "3:02:11");
  // No rate yet or a runaway estimate: unknown, not a garbage number.
  EXPECT_EQ(FormatDuration(-1), "?");
  EXPECT_EQ(FormatDuration(0.0 / 0.0), "?");
  EXPECT_EQ(FormatDuration(1.0 / 0.0), "?");
}

}  // namespace
}  // namespace vitrine
