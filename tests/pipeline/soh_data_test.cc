// Tests of the SOH series readers: the severson-soh and severson-raw folder formats, the
// database reader and the detection of which one a path is. Fixtures are written by hand.
#include "cyclecast/pipeline/soh_data.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "cyclecast/storage/database.h"
#include "temp_dir.h"

namespace cyclecast::pipeline {
namespace {

namespace fs = std::filesystem;
using cyclecast::testing::TempDir;
using cyclecast::testing::write_file;

constexpr const char* kSegments =
    R"([{"series":"Bat001","input_rows":[0,2],"target_rows":[2,4],"band":"high"}])";

void write_soh(const fs::path& dir, const std::string& csv, const std::string& segments) {
  write_file(dir / "soh.csv", csv);
  write_file(dir / "segments.json", segments);
}

TEST(ReadSeversonSoh, ReadsSeriesInFileOrderWithCyclesFromRowsAndTheSegments) {
  TempDir tmp;
  write_soh(tmp.path(),
            "series,cell_id,row,soh\nBat002,b1c1,0,1.0\nBat002,b1c1,1,0.99\n"
            "Bat001,b1c0,0,1.01\nBat001,b1c0,1,1.0\nBat001,b1c0,2,0.98\nBat001,b1c0,3,0.97\n",
            kSegments);
  auto set = read_severson_soh(tmp.path());
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->source, "severson-soh");
  ASSERT_EQ(set->cells.size(), 2u);
  EXPECT_EQ(set->cells[0].cell_id, "Bat002");
  EXPECT_EQ(set->cells[1].cell_id, "Bat001");
  ASSERT_EQ(set->cells[1].rows.size(), 4u);
  EXPECT_EQ(set->cells[1].rows[2].cycle, 3);
  EXPECT_DOUBLE_EQ(set->cells[1].rows[2].soh, 0.98);
  EXPECT_TRUE(std::isnan(set->cells[1].rows[2].ir_ohm));
  EXPECT_DOUBLE_EQ(set->cells[0].rated_capacity_ah, 1.1);
  ASSERT_EQ(set->segments.size(), 1u);
  EXPECT_EQ(set->segments[0].series, "Bat001");
  EXPECT_EQ(set->segments[0].input_begin, 0);
  EXPECT_EQ(set->segments[0].target_begin, 2);
  EXPECT_EQ(set->segments[0].target_end, 4);
  EXPECT_EQ(set->segments[0].band, "high");
  EXPECT_EQ(find_cell(*set, "Bat001"), 1);
  EXPECT_EQ(find_cell(*set, "Bat999"), -1);
}

TEST(ReadSeversonSoh, RefusesRowsOutOfSequenceNamingTheLine) {
  TempDir tmp;
  write_soh(tmp.path(), "series,cell_id,row,soh\nBat001,x,0,1.0\nBat001,x,2,0.9\n", "[]");
  auto set = read_severson_soh(tmp.path());
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.error().code, ErrorCode::kParse);
  EXPECT_NE(set.error().message.find("line 3"), std::string::npos) << set.error().message;
}

TEST(ReadSeversonSoh, RefusesANonNumericSoh) {
  TempDir tmp;
  write_soh(tmp.path(), "series,cell_id,row,soh\nBat001,x,0,abc\n", "[]");
  auto set = read_severson_soh(tmp.path());
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.error().code, ErrorCode::kParse);
}

TEST(ReadSeversonSoh, RefusesASegmentOutsideItsSeriesOrOfAnUnknownSeries) {
  TempDir tmp;
  const std::string csv = "series,cell_id,row,soh\nBat001,x,0,1.0\nBat001,x,1,0.9\n";
  write_soh(tmp.path(), csv, kSegments);  // target rows end at 4 > 2 rows
  auto outside = read_severson_soh(tmp.path());
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.error().code, ErrorCode::kInvalidArgument);
  write_soh(tmp.path(), csv, R"([{"series":"Bat009","input_rows":[0,1],"target_rows":[1,2]}])");
  auto unknown = read_severson_soh(tmp.path());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidArgument);
}

TEST(ReadSeversonSoh, RefusesMalformedSegments) {
  TempDir tmp;
  const std::string csv = "series,cell_id,row,soh\nBat001,x,0,1.0\n";
  for (const char* bad :
       {"{}", "[1]", R"([{"series":"Bat001","input_rows":[0,1]}])",
        R"([{"series":"Bat001","input_rows":[0,1],"target_rows":[2,3]}])",
        R"([{"series":"Bat001","input_rows":[1,0],"target_rows":[0,1]}])", "[{"}) {
    write_soh(tmp.path(), csv, bad);
    auto set = read_severson_soh(tmp.path());
    ASSERT_FALSE(set.ok()) << bad;
    EXPECT_EQ(set.error().code, ErrorCode::kParse) << bad;
  }
}

constexpr const char* kRawCells =
    "cell_id,batch,policy,cycle_life,in_paper_124,paper_split,continuation_of,continued_in,"
    "dlnet_id\n"
    "a0,x,p,3,1,train,,a2,\n"
    "a1,x,p,3,1,test1,,,\n"
    "a2,x,p,,0,,a0,,\n"
    "a3,x,p,,0,,gone,,\n"
    "gone,x,p,5,1,test1,,a3,\n";
constexpr const char* kRawHeader =
    "cell_id,batch,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c,chargetime_min\n";

TEST(ReadSeversonRaw, ComputesSohFromCapacityAndTakesTheSplitAndFeatures) {
  TempDir tmp;
  write_file(tmp / "cells.csv", kRawCells);
  write_file(tmp / "cycles.csv", std::string(kRawHeader) +
                                     "a1,x,1,1.045,1.0,0.02,33,31.5,29,10.5\n"
                                     "a1,x,2,1.034,1.0,,33,nan,29,20.0\n");
  auto set = read_severson_raw(tmp.path());
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->source, "severson-raw");
  ASSERT_EQ(set->cells.size(), 1u);
  const CellSeries& cell = set->cells[0];
  EXPECT_EQ(cell.split, "test1");
  ASSERT_EQ(cell.rows.size(), 2u);
  EXPECT_DOUBLE_EQ(cell.rows[0].soh, 1.045 / 1.1);
  EXPECT_DOUBLE_EQ(cell.rows[0].ir_ohm, 0.02);
  EXPECT_DOUBLE_EQ(cell.rows[0].temperature_c, 31.5);
  EXPECT_DOUBLE_EQ(cell.rows[0].charge_time_min, 10.5);
  // Values are as recorded: empty and "nan" are NaN, the 20.0 fill value is kept for cleaning.
  EXPECT_TRUE(std::isnan(cell.rows[1].ir_ohm));
  EXPECT_TRUE(std::isnan(cell.rows[1].temperature_c));
  EXPECT_DOUBLE_EQ(cell.rows[1].charge_time_min, 20.0);
}

TEST(ReadSeversonRaw, AppendsAContinuationCellToItsParentRenumberingItsCycles) {
  TempDir tmp;
  write_file(tmp / "cells.csv", kRawCells);
  write_file(tmp / "cycles.csv", std::string(kRawHeader) +
                                     "a0,x,1,1.0,1,0.02,1,30,1,10\n"
                                     "a0,x,2,0.99,1,0.02,1,30,1,10\n"
                                     "a2,x,1,0.98,1,0.02,1,30,1,10\n"
                                     "a2,x,2,0.97,1,0.02,1,30,1,10\n"
                                     "a3,x,1,0.9,1,0.02,1,30,1,10\n");
  auto set = read_severson_raw(tmp.path());
  ASSERT_TRUE(set.ok()) << set.error().message;
  ASSERT_EQ(set->cells.size(), 2u);
  const CellSeries& joined = set->cells[0];
  EXPECT_EQ(joined.cell_id, "a0");
  ASSERT_EQ(joined.rows.size(), 4u);
  EXPECT_EQ(joined.rows[2].cycle, 3);
  EXPECT_EQ(joined.rows[3].cycle, 4);
  EXPECT_DOUBLE_EQ(joined.rows[3].soh, 0.97 / 1.1);
  // a3's parent has no cycles here: a3 stays on its own with the parent's split.
  EXPECT_EQ(set->cells[1].cell_id, "a3");
  EXPECT_EQ(set->cells[1].split, "test1");
}

TEST(ReadSeversonRaw, ReadsTheApproximateFileOnlyWhenAskedAndOnlyForCellsTheExactOneLacks) {
  TempDir tmp;
  write_file(tmp / "cells.csv", kRawCells);
  write_file(tmp / "cycles.csv", std::string(kRawHeader) + "a1,x,1,1.0,1,0.02,1,30,1,10\n");
  write_file(tmp / "cycles_qd_approx.csv",
             std::string(kRawHeader) + "a1,x,1,0.5,,,,,,\ngone,x,1,1.05,,,,,,\n");
  auto plain = read_severson_raw(tmp.path());
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->cells.size(), 1u);
  RawReadOptions options;
  options.include_approx = true;
  auto with_approx = read_severson_raw(tmp.path(), options);
  ASSERT_TRUE(with_approx.ok()) << with_approx.error().message;
  ASSERT_EQ(with_approx->cells.size(), 2u);
  EXPECT_DOUBLE_EQ(with_approx->cells[0].rows[0].soh, 1.0 / 1.1);  // exact file wins
  EXPECT_EQ(with_approx->cells[1].cell_id, "gone");
  EXPECT_TRUE(std::isnan(with_approx->cells[1].rows[0].ir_ohm));
}

TEST(ReadSeversonRaw, RefusesAMissingColumnNamingIt) {
  TempDir tmp;
  write_file(tmp / "cells.csv", kRawCells);
  write_file(tmp / "cycles.csv", "cell_id,cycle,qd_ah\na1,1,1.0\n");
  auto set = read_severson_raw(tmp.path());
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.error().code, ErrorCode::kParse);
  EXPECT_NE(set.error().message.find("ir_ohm"), std::string::npos) << set.error().message;
}

TEST(ReadDatabase, ReadsCellsWithRatedCapacityAndTheirCyclesInOrder) {
  TempDir tmp;
  const fs::path path = tmp / "c.db";
  {
    auto db = storage::Database::open(path);
    ASSERT_TRUE(db.ok()) << db.error().message;
    storage::CellInfo cell;
    cell.cell_id = "cellA";
    cell.rig_id = "rig";
    cell.rated_capacity_ah = 2.0;
    ASSERT_TRUE(db->upsert_cell(cell).ok());
    std::vector<storage::CycleRecord> records(2);
    records[0].cell_id = records[1].cell_id = "cellA";
    records[0].cycle = 2;
    records[0].discharge_capacity_ah = 1.9;
    records[1].cycle = 1;
    records[1].discharge_capacity_ah = 1.95;
    records[1].internal_resistance_ohm = 0.03;
    records[1].temperature_avg_c = 25.0;
    records[1].charge_time_min = 40.0;
    auto written = db->write_cycles(records);
    ASSERT_TRUE(written.ok()) << written.error().message;
  }
  auto set = read_series(path);
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->source, "database");
  ASSERT_EQ(set->cells.size(), 1u);
  const CellSeries& cell = set->cells[0];
  EXPECT_EQ(cell.split, "");
  ASSERT_EQ(cell.rows.size(), 2u);
  EXPECT_EQ(cell.rows[0].cycle, 1);
  EXPECT_DOUBLE_EQ(cell.rows[0].soh, 1.95 / 2.0);
  EXPECT_DOUBLE_EQ(cell.rows[0].ir_ohm, 0.03);
  EXPECT_DOUBLE_EQ(cell.rows[0].temperature_c, 25.0);
  EXPECT_DOUBLE_EQ(cell.rows[0].charge_time_min, 40.0);
  EXPECT_TRUE(std::isnan(cell.rows[1].ir_ohm));
}

TEST(ReadSeries, DetectsTheKindOfSourceAndRefusesAnythingElse) {
  TempDir tmp;
  fs::create_directories(tmp / "soh");
  write_soh(tmp / "soh", "series,cell_id,row,soh\nBat001,x,0,1.0\n", "[]");
  fs::create_directories(tmp / "raw");
  write_file(tmp / "raw" / "cells.csv", kRawCells);
  write_file(tmp / "raw" / "cycles.csv", std::string(kRawHeader) + "a1,x,1,1.0,1,1,1,1,1,1\n");
  fs::create_directories(tmp / "empty");
  write_file(tmp / "notes.txt", "hello");

  auto soh = read_series(tmp / "soh");
  auto raw = read_series(tmp / "raw");
  ASSERT_TRUE(soh.ok()) << soh.error().message;
  ASSERT_TRUE(raw.ok()) << raw.error().message;
  EXPECT_EQ(soh->source, "severson-soh");
  EXPECT_EQ(raw->source, "severson-raw");
  auto empty = read_series(tmp / "empty");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, ErrorCode::kUnsupported);
  auto text = read_series(tmp / "notes.txt");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().code, ErrorCode::kUnsupported);
  auto missing = read_series(tmp / "nothing");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace cyclecast::pipeline
