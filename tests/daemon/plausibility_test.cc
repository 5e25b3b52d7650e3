// Plausibility rules of cyclecastd (docs/reliability.md, "Plausible forecasts"): the physical SOH
// range of host and edge forecasts, the end-of-life threshold of a cell, and when a cell is past
// end of life.
#include "plausibility.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace cyclecast::daemon {
namespace {

TEST(Plausibility, HostForecastsMustStayWithinThePhysicalRangeAtEveryStep) {
  EXPECT_EQ(implausible_host_forecast(std::vector<float>{1.0f, 0.95f, 0.0f, 1.2f}), "");
  EXPECT_EQ(implausible_host_forecast(std::vector<float>{0.9f, 1.25f}),
            "SOH 1.25 at +2 outside [0, 1.2]");
  EXPECT_EQ(implausible_host_forecast(std::vector<float>{0.9f, 0.5f, -0.01f}).substr(0, 19),
            "SOH -0.01 at +3 out");
  EXPECT_NE(implausible_host_forecast(std::vector<float>{std::numeric_limits<float>::quiet_NaN()}),
            "")
      << "the host forecasts every step: NaN is not plausible";
  EXPECT_NE(implausible_host_forecast(std::vector<float>{}), "");
}

TEST(Plausibility, EdgeForecastsAreCheckedAtTheirReportedPoints) {
  EXPECT_EQ(implausible_edge_forecast(0.93, 0.85), "");
  EXPECT_EQ(implausible_edge_forecast(std::nullopt, 0.85), "");
  EXPECT_EQ(implausible_edge_forecast(std::nullopt, 1.7), "SOH 1.7 at +H outside [0, 1.2]");
  EXPECT_EQ(implausible_edge_forecast(-0.5, 0.85), "SOH -0.5 at +10 outside [0, 1.2]");
}

TEST(Plausibility, EndOfLifeThresholdComesFromTheCellsMetadataWhenSensible) {
  storage::CellInfo cell;
  EXPECT_EQ(eol_soh_of(cell), 0.8);
  cell.metadata_json = R"({"eol_soh": 0.7, "batch": "b1"})";
  EXPECT_EQ(eol_soh_of(cell), 0.7);
  for (const char* bad :
       {R"({"eol_soh": 1.5})", R"({"eol_soh": 0})", R"({"eol_soh": "0.7"})", "[1]", "not json"}) {
    cell.metadata_json = bad;
    EXPECT_EQ(eol_soh_of(cell), 0.8) << bad;
  }
}

TEST(Plausibility, PastEndOfLifeTakesTheMedianOfTheLastFiveValues) {
  EXPECT_FALSE(end_of_life(std::vector<double>{0.7, 0.7, 0.7, 0.7}, 0.8).past)
      << "fewer than five values";
  EXPECT_TRUE(std::isnan(end_of_life(std::vector<double>{0.7}, 0.8).median_soh));
  // One glitched low reading among good ones: not past.
  EXPECT_FALSE(end_of_life(std::vector<double>{0.9, 0.85, 0.1, 0.84, 0.83}, 0.8).past);
  // Three of the last five under: past, whatever came before.
  const auto eol = end_of_life(std::vector<double>{0.95, 0.9, 0.81, 0.79, 0.78, 0.82, 0.77}, 0.8);
  EXPECT_TRUE(eol.past);
  EXPECT_DOUBLE_EQ(eol.median_soh, 0.79);
  EXPECT_EQ(eol.eol_soh, 0.8);
  EXPECT_FALSE(end_of_life(std::vector<double>{0.79, 0.78, 0.77, 0.76, 0.75}, 0.7).past)
      << "the cell's own threshold";
  EXPECT_FALSE(
      end_of_life(std::vector<double>{0.5, std::nan(""), 0.5, 0.5, 0.9, 0.9, 0.9}, 0.8).past)
      << "NaN skipped: the last five values are 0.5, 0.5, 0.9, 0.9, 0.9";
}

}  // namespace
}  // namespace cyclecast::daemon
