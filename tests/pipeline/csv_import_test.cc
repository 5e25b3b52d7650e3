#include "cyclecast/pipeline/csv_import.h"

#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cyclecast/storage/database.h"
#include "temp_dir.h"

namespace cyclecast::pipeline {
namespace {

using cyclecast::testing::TempDir;
using cyclecast::testing::write_file;

constexpr const char* kHeader =
    "cell_id,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c,chargetime_min";

CellDefaults defaults_rated(double rated_capacity_ah) {
  CellDefaults defaults;
  defaults.rated_capacity_ah = rated_capacity_ah;
  return defaults;
}

// Parses `text` as "test.csv" with every cell rated 1.1 Ah; fails the test on a hard error.
ParsedCycles parse_ok(const std::string& text, CsvFormat format = CsvFormat::kAuto,
                      const std::string& cell_id = "") {
  const CellCatalog catalog(defaults_rated(1.1));
  ParseOptions options;
  options.format = format;
  options.cell_id = cell_id;
  options.catalog = &catalog;
  auto parsed = parse_cycles_csv(text, "test.csv", options);
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message);
  return parsed.ok() ? std::move(parsed).value() : ParsedCycles{};
}

Error parse_error(const std::string& text) {
  const CellCatalog catalog(defaults_rated(1.1));
  ParseOptions options;
  options.catalog = &catalog;
  auto parsed = parse_cycles_csv(text, "test.csv", options);
  EXPECT_FALSE(parsed.ok());
  return parsed.ok() ? Error{} : parsed.error();
}

// The reason a one-row file's row was rejected ("" when it was not).
std::string rejection_of(const std::string& header, const std::string& row) {
  const ParsedCycles parsed = parse_ok(header + "\n" + row + "\n");
  if (parsed.rejected.size() != 1) return "";
  EXPECT_EQ(parsed.rejected[0].line, 2U);
  EXPECT_EQ(parsed.rejected[0].raw, row);
  return parsed.rejected[0].reason;
}

TEST(CsvImportParse, ReadsEveryColumnOfTheCyclecastFormat) {
  const ParsedCycles parsed = parse_ok(
      "cell_id,batch,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c,chargetime_min,measured_at\n"
      "b2c0,2017-06-30,1,1.068,1.0675,0.0175,31.5,30.4,29.0,10.33,2026-01-01T00:00:00Z\n");
  ASSERT_EQ(parsed.rows.size(), 1U);
  EXPECT_EQ(parsed.format, CsvFormat::kCyclecast);
  EXPECT_EQ(parsed.cell_ids, std::vector<std::string>{"b2c0"});
  EXPECT_EQ(parsed.cell_batches, std::vector<std::string>{"2017-06-30"});
  const CycleRow& row = parsed.rows[0];
  EXPECT_EQ(row.line, 2U);
  EXPECT_EQ(row.cycle, 1);
  EXPECT_DOUBLE_EQ(row.qd_ah, 1.068);
  EXPECT_DOUBLE_EQ(row.qc_ah, 1.0675);
  EXPECT_DOUBLE_EQ(row.ir_ohm, 0.0175);
  EXPECT_DOUBLE_EQ(row.tmax_c, 31.5);
  EXPECT_DOUBLE_EQ(row.tavg_c, 30.4);
  EXPECT_DOUBLE_EQ(row.tmin_c, 29.0);
  EXPECT_DOUBLE_EQ(row.chargetime_min, 10.33);
  ASSERT_TRUE(row.has_measured_at);
  EXPECT_EQ(row.measured_at_ms, 1'767'225'600'000);  // 2026-01-01T00:00:00Z
}

TEST(CsvImportParse, AcceptsColumnsInAnyOrder) {
  const ParsedCycles parsed = parse_ok("qd_ah,cycle,cell_id\n1.05,7,x1\n");
  ASSERT_EQ(parsed.rows.size(), 1U);
  EXPECT_EQ(parsed.rows[0].cycle, 7);
  EXPECT_DOUBLE_EQ(parsed.rows[0].qd_ah, 1.05);
  EXPECT_EQ(parsed.cell_ids[0], "x1");
}

TEST(CsvImportParse, EmptyOptionalFieldMeansNotMeasured) {
  const ParsedCycles parsed = parse_ok(std::string(kHeader) + "\nc,1,1.0,,,,,,\n");
  ASSERT_EQ(parsed.rows.size(), 1U);
  EXPECT_TRUE(std::isnan(parsed.rows[0].qc_ah));
  EXPECT_TRUE(std::isnan(parsed.rows[0].ir_ohm));
  EXPECT_TRUE(std::isnan(parsed.rows[0].chargetime_min));
  EXPECT_FALSE(parsed.rows[0].has_measured_at);
  storage::CycleRecord record;
  cycle_row_to_record(parsed, parsed.rows[0], "import:test.csv", record);
  EXPECT_EQ(record.cell_id, "c");
  EXPECT_FALSE(record.charge_capacity_ah.has_value());
  EXPECT_FALSE(record.internal_resistance_ohm.has_value());
  EXPECT_FALSE(record.measured_at_ms.has_value());
  EXPECT_EQ(record.source, "import:test.csv");
}

TEST(CsvImportParse, RejectsEmptyRequiredFieldNamingTheColumn) {
  EXPECT_EQ(rejection_of(kHeader, "c,1,,1.0,,,,,"),
            "column 'qd_ah' (3): required value is empty; expected a number in (0, 2.2] Ah (2 x "
            "rated capacity 1.1 Ah)");
  EXPECT_EQ(rejection_of(kHeader, "c,,1.0,,,,,,"), "column 'cycle' (2): required value is empty");
  EXPECT_EQ(rejection_of(kHeader, ",1,1.0,,,,,,"), "column 'cell_id' (1): required value is empty");
}

TEST(CsvImportParse, RejectsNaNAndInfinity) {
  EXPECT_EQ(rejection_of(kHeader, "c,1,nan,,,,,,"),
            "column 'qd_ah' (3): NaN is not a measurement; leave the field empty if it was not "
            "measured");
  EXPECT_EQ(rejection_of(kHeader, "c,1,1.0,NaN,,,,,"),
            "column 'qc_ah' (4): NaN is not a measurement; leave the field empty if it was not "
            "measured");
  EXPECT_EQ(rejection_of(kHeader, "c,1,inf,,,,,,"),
            "column 'qd_ah' (3): expected a finite number in (0, 2.2] Ah (2 x rated capacity 1.1 "
            "Ah), found 'inf'");
  EXPECT_EQ(rejection_of(kHeader, "c,1,1.0,,,1e999,,,"),
            "column 'tmax_c' (6): expected a finite number in [-60, 150] degC, found '1e999'");
}

TEST(CsvImportParse, RejectsNegativeValues) {
  EXPECT_EQ(rejection_of(kHeader, "c,1,-0.5,,,,,,"),
            "column 'qd_ah' (3): expected a number in (0, 2.2] Ah (2 x rated capacity 1.1 Ah), "
            "found '-0.5'");
  EXPECT_EQ(rejection_of(kHeader, "c,1,1.0,,-0.01,,,,"),
            "column 'ir_ohm' (5): expected a number in [0, 100] ohm, found '-0.01'");
  EXPECT_EQ(rejection_of(kHeader, "c,1,1.0,,,,,,-3"),
            "column 'chargetime_min' (9): expected a number in [0, 10080] min, found '-3'");
}

TEST(CsvImportParse, RejectsAbsurdValues) {
  EXPECT_EQ(rejection_of(kHeader, "c,1,2.3,,,,,,"),
            "column 'qd_ah' (3): expected a number in (0, 2.2] Ah (2 x rated capacity 1.1 Ah), "
            "found '2.3'");
  EXPECT_EQ(rejection_of(kHeader, "c,1,0,,,,,,"),
            "column 'qd_ah' (3): expected a number in (0, 2.2] Ah (2 x rated capacity 1.1 Ah), "
            "found '0'");
  EXPECT_NE(rejection_of(kHeader, "c,1,1.0,5,,,,,"), "");
  EXPECT_NE(rejection_of(kHeader, "c,1,1.0,,250,,,,"), "");
  EXPECT_NE(rejection_of(kHeader, "c,1,1.0,,,400,,,"), "");
  EXPECT_NE(rejection_of(kHeader, "c,1,1.0,,,,,-100,"), "");
  EXPECT_NE(rejection_of(kHeader, "c,1,1.0,,,,,,20000"), "");
  EXPECT_EQ(rejection_of(kHeader, "c,1,1.0,abc,,,,,"),
            "column 'qc_ah' (4): expected a number in [0, 2.2] Ah (2 x rated capacity 1.1 Ah), "
            "found 'abc'");
}

// The reference data's known glitches are physical readings: they must import (cleaning comes
// later in the pipeline), so plausibility must not refuse them.
TEST(CsvImportParse, AcceptsTheKnownGlitchesOfRealRigs) {
  const ParsedCycles parsed = parse_ok(std::string(kHeader) +
                                       "\n"
                                       "c,1,1.54,1.43,0,31,30,29,20.0\n"
                                       "c,2,1.49,1.1,0.017,31,30,29,500.5\n");
  EXPECT_EQ(parsed.rows.size(), 2U);
  EXPECT_TRUE(parsed.rejected.empty());
}

class CsvImportCycleNumber : public ::testing::TestWithParam<const char*> {};

TEST_P(CsvImportCycleNumber, RejectsCycleNumbersThatAreNotPositiveIntegers) {
  const std::string cycle = GetParam();
  EXPECT_EQ(rejection_of("cell_id,cycle,qd_ah", "c," + cycle + ",1.0"),
            "column 'cycle' (2): expected a cycle number, an integer in [1, 1000000], found '" +
                cycle + "'");
}

INSTANTIATE_TEST_SUITE_P(NotPositiveIntegers, CsvImportCycleNumber,
                         ::testing::Values("0", "-1", "1.5", "1e3", "abc", "1.0", "1000001",
                                           "99999999999999999999"));

TEST(CsvImportParse, RejectsTemperaturesOutOfOrder) {
  EXPECT_EQ(rejection_of(kHeader, "c,1,1.0,,,30,31,29,"),
            "temperatures out of order: the mean temperature is above the maximum (expected "
            "tmin_c <= tavg_c <= tmax_c)");
  EXPECT_NE(rejection_of("cell_id,cycle,qd_ah,tmin_c,tmax_c", "c,1,1.0,35,30"), "");
}

TEST(CsvImportParse, RejectsMeasuredAtThatIsNotAnIsoUtcTime) {
  const std::string header = "cell_id,cycle,qd_ah,measured_at";
  EXPECT_EQ(rejection_of(header, "c,1,1.0,2026-01-01T00:00:00.250Z"), "");
  EXPECT_NE(rejection_of(header, "c,1,1.0,2026-02-30T00:00:00Z"), "");
  EXPECT_NE(rejection_of(header, "c,1,1.0,2026-01-01 00:00:00"), "");
  EXPECT_NE(rejection_of(header, "c,1,1.0,2026-01-01T00:00:00+02:00"), "");
  EXPECT_EQ(parse_ok(header + "\nc,1,1.0,2026-01-01T00:00:00.250Z\n").rows.at(0).measured_at_ms,
            1'767'225'600'250);
}

TEST(CsvImportParse, RejectsAFileWithAnUnknownColumnNamingIt) {
  const Error error = parse_error("cell_id,cycle,qd_ah,voltage_v\nc,1,1.0,3.3\n");
  EXPECT_EQ(error.code, ErrorCode::kParse);
  EXPECT_EQ(error.message.rfind("test.csv:1: unknown column 'voltage_v' (column 4)", 0), 0U)
      << error.message;
}

// What a header that import does not know is told: the layouts there are and what each requires.
constexpr const char* kKnownLayouts =
    "import reads two layouts, told apart by the header: cyclecast (required columns: cell_id, "
    "cycle, qd_ah) and batteryarchive (required columns: Cycle_Index, Discharge_Capacity (Ah)); "
    "docs/csv-format.md lists all their columns";

TEST(CsvImportParse, RejectsMissingRequiredColumn) {
  EXPECT_EQ(parse_error("cell_id,cycle\nc,1\n").message,
            "test.csv:1: missing required column 'qd_ah'; " + std::string(kKnownLayouts));
}

TEST(CsvImportParse, AnUnnamedColumnNamesTheLayoutsImportReads) {
  // A NASA-style export: pandas wrote its index as a first column without a name.
  EXPECT_EQ(parse_error(",cycle,ambient_temperature,capacity\n0,1,24,1.856\n").message,
            "test.csv:1: column 1 has no name (an index column written by a spreadsheet or "
            "pandas?); " +
                std::string(kKnownLayouts));
  EXPECT_EQ(parse_error("\"\",Cycle_Index,Discharge_Capacity (Ah)\n0,1,1.0\n").message,
            "test.csv:1: column 1 has no name (an index column written by a spreadsheet or "
            "pandas?); " +
                std::string(kKnownLayouts));
}

TEST(CsvImportParse, AHeaderOfAnotherToolNamesTheLayoutsImportReads) {
  EXPECT_EQ(parse_error("type,start_time,ambient_temperature,battery_id,Capacity\n"
                        "discharge,2008-04-02,24,B0005,1.856\n")
                .message,
            "test.csv:1: unknown column 'type' (column 1); " + std::string(kKnownLayouts));
}

TEST(CsvImportParse, AForcedFormatNamesItsColumnsAndTheRequiredOnes) {
  const CellCatalog catalog(defaults_rated(1.1));
  ParseOptions options;
  options.catalog = &catalog;
  options.format = CsvFormat::kCyclecast;
  auto parsed = parse_cycles_csv("cell_id,cycle\nc,1\n", "t.csv", options);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message,
            "t.csv:1: missing required column 'qd_ah'; the cyclecast format has the columns: "
            "cell_id, batch, cycle, qd_ah, qc_ah, ir_ohm, tmax_c, tavg_c, tmin_c, chargetime_min, "
            "measured_at (required: cell_id, cycle, qd_ah)");
}

TEST(CsvImportParse, SaysSoWhenTheDelimiterIsASemicolonOrTab) {
  EXPECT_EQ(parse_error("cell_id;cycle;qd_ah\nc;1;1.0\n").message,
            "test.csv:1: the header has no ',' but contains ';': fields must be separated by "
            "commas, not semicolons");
  EXPECT_EQ(parse_error("cell_id\tcycle\tqd_ah\nc\t1\t1.0\n").message,
            "test.csv:1: the header has no ',' but contains tabs: fields must be separated by "
            "commas, not tabs");
}

TEST(CsvImportParse, AcceptsUtf8ByteOrderMark) {
  const ParsedCycles parsed = parse_ok(
      "\xEF\xBB\xBF"
      "cell_id,cycle,qd_ah\nc,1,1.0\n");
  EXPECT_EQ(parsed.rows.size(), 1U);
}

TEST(CsvImportParse, AcceptsCrlfLineEndings) {
  const ParsedCycles parsed = parse_ok("cell_id,cycle,qd_ah,qc_ah\r\nc,1,1.0,\r\nc,2,0.9,0.95\r\n");
  ASSERT_EQ(parsed.rows.size(), 2U);
  EXPECT_TRUE(std::isnan(parsed.rows[0].qc_ah));
  EXPECT_DOUBLE_EQ(parsed.rows[1].qc_ah, 0.95);
}

TEST(CsvImportParse, AcceptsQuotedFields) {
  const ParsedCycles parsed = parse_ok(
      "\"cell_id\",batch,cycle,qd_ah\n"
      "\"c1\",\"run \"\"A\"\", rig 2\",\"3\",\"1.0\"\n"
      "\"multi\nline\",,4,1.0\n"
      "c,,5,1.0\n");
  ASSERT_EQ(parsed.rows.size(), 2U);
  EXPECT_EQ(parsed.cell_ids[0], "c1");
  EXPECT_EQ(parsed.cell_batches[0], "run \"A\", rig 2");
  EXPECT_EQ(parsed.rows[0].cycle, 3);
  // The quoted line break is read as data (and refused in a cell id)...
  ASSERT_EQ(parsed.rejected.size(), 1U);
  EXPECT_EQ(parsed.rejected[0].line, 3U);
  EXPECT_EQ(parsed.rejected[0].raw, "\"multi\nline\",,4,1.0");
  EXPECT_EQ(parsed.rejected[0].reason,
            "column 'cell_id' (1): cell id contains a character outside [A-Za-z0-9_.-] (byte 10)");
  // ...and still counts as a line, so later rows keep their true line numbers.
  EXPECT_EQ(parsed.rows[1].line, 5U);
}

TEST(CsvImportParse, ShowsControlCharactersOfAFieldEscaped) {
  EXPECT_EQ(rejection_of("cell_id,cycle,qd_ah", "c,1,\x1b]0;owned\x07"),
            "column 'qd_ah' (3): expected a number in (0, 2.2] Ah (2 x rated capacity 1.1 Ah), "
            "found '\\x1B]0;owned\\x07'");
}

// A cell is named by its id in the API's paths and in MQTT topics: import stores no id that
// either would refuse (cyclecast::check_id), and every id it stores, they accept.
class CsvImportCellId : public ::testing::TestWithParam<const char*> {};

TEST_P(CsvImportCellId, RefusesIdsThatTheApiAndMqttRefuse) {
  const std::string id = GetParam();
  const std::string reason = rejection_of("cell_id,cycle,qd_ah", "\"" + id + "\",1,1.0");
  EXPECT_EQ(reason.rfind("column 'cell_id' (1): cell id", 0), 0U) << "'" << id << "': " << reason;
}

INSTANTIATE_TEST_SUITE_P(
    OutsideTheIdAlphabet, CsvImportCellId,
    ::testing::Values("SNL_18650_LFP_25C_0-100_0.5/1C_a", "a b", "..", ".", ".hidden", "../etc",
                      "b\xC3\xA9", "\xEF\xBC\x8F", "a+b", "a#b", "a%2Fb", "a?b", "a\\b", "a\tb",
                      "b2c0\x7F", "\xFF\xFE",
                      "0123456789012345678901234567890123456789012345678901234567890123x"));

TEST(CsvImportParse, AcceptsEveryIdOfTheIdAlphabet) {
  const std::string longest(64, 'x');
  const ParsedCycles parsed = parse_ok(
      "cell_id,cycle,qd_ah\nb2c0,1,1.0\na..b,1,1.0\nA-Z_0.9,1,1.0\n" + longest + ",1,1.0\n");
  EXPECT_TRUE(parsed.rejected.empty()) << parsed.rejected.at(0).reason;
  EXPECT_EQ(parsed.cell_ids, (std::vector<std::string>{"b2c0", "a..b", "A-Z_0.9", longest}));
}

TEST(CsvImportParse, BatteryArchiveFileNameThatIsNoIdIsRefusedSayingSo) {
  const CellCatalog catalog(defaults_rated(1.1));
  ParseOptions options;
  options.catalog = &catalog;
  options.cell_id = "cell 7";
  auto parsed =
      parse_cycles_csv("Cycle_Index,Discharge_Capacity (Ah)\n1,1.0\n", "cell 7.csv", options);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(parsed.error().message,
            "cell 7.csv: 'cell 7': cell id contains a character outside [A-Za-z0-9_.-] (byte 32); "
            "a BatteryArchive file's cell id is its file name without '_cycle_data.csv' unless "
            "one is given (--cell)");
}

TEST(CsvImportParse, RejectsAQuoteThatIsNeverClosed) {
  EXPECT_EQ(parse_error("cell_id,cycle,qd_ah\nc,1,1.0\n\"c,2,1.0\n").message,
            "test.csv:3: quoted field is never closed (missing '\"')");
}

TEST(CsvImportParse, RejectsAFileWithoutHeader) {
  EXPECT_EQ(parse_error("b2c0,1,1.07\nb2c0,2,1.06\n").message,
            "test.csv:1: no header row: the first line holds data ('b2c0,1,1.07'); expected "
            "column names, e.g. cell_id,cycle,qd_ah");
}

TEST(CsvImportParse, RejectsShortAndLongRows) {
  EXPECT_EQ(rejection_of("cell_id,cycle,qd_ah", "c,1"), "row has 2 fields, the header has 3");
  EXPECT_EQ(rejection_of("cell_id,cycle,qd_ah", "c,1,1.0,7"), "row has 4 fields, the header has 3");
}

TEST(CsvImportParse, RejectsAnEmptyFile) {
  EXPECT_EQ(parse_error("").message, "test.csv:1: empty file: expected a header row");
  EXPECT_EQ(parse_error("\xEF\xBB\xBF").message, "test.csv:1: empty file: expected a header row");
}

TEST(CsvImportParse, SaysSoWhenTheFileIsUtf16OrHasBareCrLineEndings) {
  const std::string utf16_message =
      "test.csv:1: the header holds NUL bytes or a UTF-16 byte-order mark: the file looks UTF-16 "
      "(or binary); save it as UTF-8 CSV";
  // "cell_id,cycle,qd_ah" as UTF-16LE, with and without its byte-order mark.
  std::string utf16;
  for (const char c : std::string("cell_id,cycle,qd_ah\n")) {
    utf16 += c;
    utf16 += '\0';
  }
  EXPECT_EQ(parse_error("\xFF\xFE" + utf16).message, utf16_message);
  EXPECT_EQ(parse_error(utf16).message, utf16_message);
  EXPECT_EQ(parse_error("cell_id,cycle,qd_ah\rc,1,1.0\r").message,
            "test.csv:1: the header row holds a carriage return: lines must end in LF or CRLF, "
            "not a bare CR (convert the file, e.g. with tr '\\r' '\\n')");
  EXPECT_EQ(parse_ok("cell_id,cycle,qd_ah\r\nc,1,1.0\r\n").rows.size(), 1U);
}

TEST(CsvImportParse, HeaderOnlyFileHasNoRows) {
  const ParsedCycles parsed = parse_ok("cell_id,cycle,qd_ah\n");
  EXPECT_EQ(parsed.data_rows, 0U);
  EXPECT_TRUE(parsed.rows.empty());
}

TEST(CsvImportParse, SkipsBlankLines) {
  const ParsedCycles parsed = parse_ok("cell_id,cycle,qd_ah\n\nc,1,1.0\n\n");
  EXPECT_EQ(parsed.data_rows, 1U);
  ASSERT_EQ(parsed.rows.size(), 1U);
  EXPECT_EQ(parsed.rows[0].line, 3U);
}

TEST(CsvImportParse, CountsAnIdenticalRepeatAsDuplicate) {
  const ParsedCycles parsed = parse_ok("cell_id,cycle,qd_ah\nc,1,1.0\nc,2,0.9\nc,1,1.0\n");
  EXPECT_EQ(parsed.rows.size(), 2U);
  EXPECT_EQ(parsed.duplicate_rows, 1U);
  EXPECT_EQ(parsed.conflicting_rows, 0U);
  EXPECT_TRUE(parsed.rejected.empty());
}

TEST(CsvImportParse, RejectsAConflictingRepeatKeepingTheFirst) {
  const ParsedCycles parsed = parse_ok("cell_id,cycle,qd_ah\nc,1,1.0\nd,1,0.5\nc,1,0.99\n");
  ASSERT_EQ(parsed.rows.size(), 2U);
  EXPECT_DOUBLE_EQ(parsed.rows[0].qd_ah, 1.0);
  EXPECT_EQ(parsed.conflicting_rows, 1U);
  ASSERT_EQ(parsed.rejected.size(), 1U);
  EXPECT_EQ(parsed.rejected[0].line, 4U);
  EXPECT_EQ(parsed.rejected[0].raw, "c,1,0.99");
  EXPECT_EQ(parsed.rejected[0].reason,
            "conflicting duplicate: cycle 1 of cell 'c' is on line 2 with other values");
}

TEST(CsvImportParse, RejectsACellChangingBatch) {
  const ParsedCycles parsed =
      parse_ok("cell_id,batch,cycle,qd_ah\nc,b1,1,1.0\nc,,2,1.0\nc,b2,3,1.0\n");
  EXPECT_EQ(parsed.rows.size(), 2U);
  ASSERT_EQ(parsed.rejected.size(), 1U);
  EXPECT_EQ(parsed.rejected[0].reason,
            "column 'batch' (2): cell 'c' was in batch 'b1' on an earlier row, found 'b2'");
}

TEST(CsvImportParse, CellWithoutRatedCapacityIsAnErrorNamingTheCell) {
  const CellCatalog catalog;  // no defaults, no cells file
  ParseOptions options;
  options.catalog = &catalog;
  auto parsed = parse_cycles_csv("cell_id,cycle,qd_ah\nb9,1,1.0\n", "test.csv", options);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(parsed.error().message,
            "test.csv:2: no rated capacity known for cell 'b9' (neither the cells file nor the "
            "defaults give one)");
}

TEST(CsvImportParse, RatedCapacityOfEachCellScalesItsCapacityLimit) {
  auto catalog = CellCatalog::parse("cell_id,rated_capacity_ah\nbig,10\nsmall,1\n", "cells.csv");
  ASSERT_TRUE(catalog.ok()) << catalog.error().message;
  ParseOptions options;
  options.catalog = &*catalog;
  auto parsed =
      parse_cycles_csv("cell_id,cycle,qd_ah\nbig,1,15\nsmall,1,1.5\nsmall,2,2.5\n", "t", options);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->rows.size(), 2U);
  ASSERT_EQ(parsed->rejected.size(), 1U);
  EXPECT_EQ(parsed->rejected[0].line, 4U);
}

constexpr const char* kBatteryArchiveHeader =
    "Cycle_Index,Start_Time,End_Time,Test_Time (s),Min_Current (A),Max_Current (A),"
    "Min_Voltage (V),Max_Voltage (V),Charge_Capacity (Ah),Discharge_Capacity (Ah),"
    "Charge_Energy (Wh),Discharge_Energy (Wh)";

TEST(CsvImportParse, ReadsBatteryArchiveCycleSummaries) {
  const ParsedCycles parsed = parse_ok(std::string(kBatteryArchiveHeader) +
                                           "\n"
                                           "1.0,2020-01-01 00:00:00,2020-01-01 02:00:00,7200,-1.1,"
                                           "1.1,2.0,3.6,1.08,1.07,3.5,3.3\n"
                                           "2,,,14400,-1.1,1.1,2.0,3.6,1.07,1.06,3.5,3.3\n",
                                       CsvFormat::kAuto, "SNL_a");
  EXPECT_EQ(parsed.format, CsvFormat::kBatteryArchive);
  EXPECT_EQ(parsed.cell_ids, std::vector<std::string>{"SNL_a"});
  ASSERT_EQ(parsed.rows.size(), 2U);
  EXPECT_EQ(parsed.rows[0].cycle, 1);
  EXPECT_DOUBLE_EQ(parsed.rows[0].qd_ah, 1.07);
  EXPECT_DOUBLE_EQ(parsed.rows[0].qc_ah, 1.08);
  EXPECT_EQ(parsed.rows[1].cycle, 2);
}

TEST(CsvImportParse, BatteryArchiveStillRefusesFractionalCycleIndex) {
  const ParsedCycles parsed =
      parse_ok("Cycle_Index,Discharge_Capacity (Ah)\n1.5,1.0\n", CsvFormat::kAuto, "x");
  ASSERT_EQ(parsed.rejected.size(), 1U);
  EXPECT_EQ(parsed.rejected[0].reason,
            "column 'Cycle_Index' (1): expected a cycle number, an integer in [1, 1000000], "
            "found '1.5'");
}

TEST(CsvImportParse, ForcedFormatRefusesTheOtherFormatsColumns) {
  const CellCatalog catalog(defaults_rated(1.1));
  ParseOptions options;
  options.catalog = &catalog;
  options.format = CsvFormat::kBatteryArchive;
  options.cell_id = "x";
  auto parsed = parse_cycles_csv("cell_id,cycle,qd_ah\nc,1,1.0\n", "t.csv", options);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message.rfind("t.csv:1: unknown column 'cell_id' (column 1)", 0), 0U);
}

TEST(CsvImportParse, DerivesBatteryArchiveCellIdFromTheFileName) {
  EXPECT_EQ(cell_id_from_file_name("/data/SNL_18650_LFP_25C_0-100_0.5-1C_a_cycle_data.csv"),
            "SNL_18650_LFP_25C_0-100_0.5-1C_a");
  EXPECT_EQ(cell_id_from_file_name("cellB.csv"), "cellB");
}

TEST(CellCatalogTest, FileValuesOverDefaultsAndOtherColumnsAsMetadata) {
  CellDefaults defaults = defaults_rated(1.1);
  defaults.rig_id = "rig-default";
  defaults.chemistry = "LFP";
  auto catalog = CellCatalog::parse(
      "cell_id,batch,policy,cycle_life,rig_id,rated_capacity_ah,note\n"
      "b1c0,2017-05-12,3.6C(80%)-3.6C,1852.0,rig-7,,\"says \"\"hi\"\"\"\n"
      "b1c1,,4C,007,,2.5,\n",
      "cells.csv", defaults);
  ASSERT_TRUE(catalog.ok()) << catalog.error().message;
  EXPECT_EQ(catalog->size(), 2U);

  auto first = catalog->resolve("b1c0", "ignored-batch");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->rig_id, "rig-7");
  EXPECT_EQ(first->chemistry, "LFP");
  EXPECT_DOUBLE_EQ(first->rated_capacity_ah, 1.1);
  EXPECT_EQ(first->charge_policy, "3.6C(80%)-3.6C");
  EXPECT_EQ(first->metadata_json,
            R"({"batch":"2017-05-12","cycle_life":1852.0,"note":"says \"hi\""})");

  auto second = catalog->resolve("b1c1", "2017-06-30");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->rig_id, "rig-default");
  EXPECT_DOUBLE_EQ(second->rated_capacity_ah, 2.5);
  EXPECT_EQ(second->metadata_json, R"({"cycle_life":"007","batch":"2017-06-30"})");

  auto unlisted = catalog->resolve("zz");
  ASSERT_TRUE(unlisted.ok());
  EXPECT_EQ(unlisted->metadata_json, "{}");
  EXPECT_EQ(unlisted->rig_id, "rig-default");
}

TEST(CellCatalogTest, RefusesBadCellsFiles) {
  EXPECT_EQ(CellCatalog::parse("rig_id\nr\n", "cells.csv").error().message,
            "cells.csv:1: missing required column 'cell_id'");
  EXPECT_EQ(CellCatalog::parse("cell_id\na\na\n", "cells.csv").error().message,
            "cells.csv:3: cell 'a' is listed twice");
  EXPECT_EQ(CellCatalog::parse("cell_id,rated_capacity_ah\na,-1\n", "cells.csv").error().message,
            "cells.csv:2: column 'rated_capacity_ah' (2): expected a rated capacity in (0, "
            "10000] Ah, found '-1'");
  EXPECT_EQ(CellCatalog::parse("", "cells.csv").error().message,
            "cells.csv:1: empty file: expected a header row starting with cell_id");
  EXPECT_EQ(CellCatalog::parse("cell_id\na b\n", "cells.csv").error().message,
            "cells.csv:2: column 'cell_id' (1): cell id contains a character outside "
            "[A-Za-z0-9_.-] (byte 32)");
  EXPECT_EQ(CellCatalog::parse("rig_id,cell_id\nrig/7,a\n", "cells.csv").error().message,
            "cells.csv:2: column 'rig_id' (1): rig id contains a character outside "
            "[A-Za-z0-9_.-] (byte 47)");
  EXPECT_EQ(CellCatalog::parse("cell_id,note\na/b,1\na-b,2\n", "cells.csv").error().message,
            "cells.csv:3: cell 'a-b' is listed twice");
  EXPECT_EQ(
      CellCatalog::parse("cell_id,rated_capacity_ah,capacity_ah\na,1.1,1.1\n", "cells.csv")
          .error()
          .message,
      "cells.csv:1: columns 'rated_capacity_ah' and 'capacity_ah' both give the rated capacity: "
      "keep one");
}

// batteryarchive.org's metadata.csv: its capacity_ah is the rated capacity, and its ids write
// as '/' what its file names (and so the cell ids import derives from them) write as '-'.
TEST(CellCatalogTest, ReadsBatteryArchiveMetadata) {
  auto catalog = CellCatalog::parse(
      "\"cell_id\",\"study\",\"cathode\",\"anode\",\"temperature\",\"min_soc\",\"max_soc\","
      "\"charge_crate\",\"discharge_crate\",\"capacity_ah\",\"form_factor\"\n"
      "\"SNL_18650_NCA_25C_0-100_0.5/1C_a\",\"snl\",\"NCA\",\"graphite\",\"25\",\"0\",\"100\","
      "\"0.5\",\"1\",\"3.2\",\"18650\"\n",
      "metadata.csv");
  ASSERT_TRUE(catalog.ok()) << catalog.error().message;
  auto cell = catalog->resolve("SNL_18650_NCA_25C_0-100_0.5-1C_a");
  ASSERT_TRUE(cell.ok()) << cell.error().message;
  EXPECT_DOUBLE_EQ(cell->rated_capacity_ah, 3.2);
  EXPECT_EQ(cell->metadata_json,
            R"({"study":"snl","cathode":"NCA","anode":"graphite","temperature":25,"min_soc":0,)"
            R"("max_soc":100,"charge_crate":0.5,"discharge_crate":1,"form_factor":18650})");
  EXPECT_EQ(CellCatalog::parse("cell_id,capacity_ah\na,-1\n", "m.csv").error().message,
            "m.csv:2: column 'capacity_ah' (2): expected a rated capacity in (0, 10000] Ah, found "
            "'-1'");
}

// --- import into a real database -------------------------------------------------------------

class CsvImportDb : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = storage::Database::open(dir_ / "test.db");
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    db_.emplace(std::move(opened).value());
    options_.defaults = defaults_rated(1.1);
  }

  std::filesystem::path write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    write_file(path, text);
    return path;
  }

  std::int64_t stored_cycles() {
    auto counts = db_->counts();
    EXPECT_TRUE(counts.ok());
    return counts.ok() ? counts->cycles : -1;
  }

  TempDir dir_;
  std::optional<storage::Database> db_;
  ImportOptions options_;
};

TEST_F(CsvImportDb, RegistersCellsAndStoresEveryCycle) {
  const auto path = write("a.csv",
                          "cell_id,batch,cycle,qd_ah,ir_ohm\n"
                          "a,B1,1,1.05,0.02\na,B1,2,1.04,\nb,B1,1,1.06,0.021\n");
  auto summary = import_csv_file(*db_, path, options_);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->files, 1U);
  EXPECT_EQ(summary->rows, 3U);
  EXPECT_EQ(summary->inserted, 3U);
  EXPECT_EQ(summary->cells, 2U);
  EXPECT_EQ(summary->rejected, 0U);

  auto cell = db_->find_cell("a");
  ASSERT_TRUE(cell.ok());
  ASSERT_TRUE(cell->has_value());
  EXPECT_DOUBLE_EQ((*cell)->rated_capacity_ah, 1.1);
  EXPECT_EQ((*cell)->rig_id, "default");
  EXPECT_EQ((*cell)->metadata_json, R"({"batch":"B1"})");

  auto cycles = db_->cycles_of("a");
  ASSERT_TRUE(cycles.ok());
  ASSERT_EQ(cycles->size(), 2U);
  EXPECT_EQ((*cycles)[1].cycle, 2);
  EXPECT_DOUBLE_EQ((*cycles)[1].discharge_capacity_ah, 1.04);
  EXPECT_FALSE((*cycles)[1].internal_resistance_ohm.has_value());
  EXPECT_EQ((*cycles)[0].source, "import:" + path.string());
}

TEST_F(CsvImportDb, ByDefaultAFileWithABadRowImportsNothing) {
  const auto good = write("good.csv", "cell_id,cycle,qd_ah\na,1,1.0\n");
  const auto bad = write("bad.csv", "cell_id,cycle,qd_ah\na,2,1.0\na,3,-1\na,4,x\n");
  const std::vector<std::filesystem::path> paths{good, bad};
  auto summary = import_csv_files(*db_, paths, options_);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.error().code, ErrorCode::kParse);
  EXPECT_EQ(summary.error().message,
            bad.string() +
                ":3: column 'qd_ah' (3): expected a number in (0, 2.2] Ah (2 x rated capacity "
                "1.1 Ah), found '-1' (and 1 more bad rows); nothing was imported");
  EXPECT_EQ(stored_cycles(), 0);
  auto cells = db_->cells();
  ASSERT_TRUE(cells.ok());
  EXPECT_TRUE(cells->empty());
}

TEST_F(CsvImportDb, SkipBadImportsGoodRowsAndRecordsEachBadRow) {
  const auto path =
      write("mixed.csv", "cell_id,cycle,qd_ah\na,1,1.0\na,0,1.0\na,2,nan\na,3,0.98\na,1,0.5\n");
  options_.skip_bad = true;
  auto summary = import_csv_file(*db_, path, options_);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->rows, 5U);
  EXPECT_EQ(summary->inserted, 2U);
  EXPECT_EQ(summary->rejected, 2U);
  EXPECT_EQ(summary->conflicts, 1U);
  EXPECT_EQ(summary->rows,
            summary->inserted + summary->duplicates + summary->conflicts + summary->rejected);
  EXPECT_EQ(stored_cycles(), 2);

  auto rejected = db_->rejected(100);
  ASSERT_TRUE(rejected.ok());
  ASSERT_EQ(rejected->size(), 3U);
  std::vector<std::string> sources;
  for (const auto& record : *rejected)
    sources.push_back(record.source);
  std::sort(sources.begin(), sources.end());
  EXPECT_EQ(sources, (std::vector<std::string>{path.string() + ":3", path.string() + ":4",
                                               path.string() + ":6"}));
  for (const auto& record : *rejected) {
    if (record.source == path.string() + ":4") {
      EXPECT_EQ(record.payload, "a,2,nan");
      EXPECT_EQ(record.reason,
                "column 'qd_ah' (3): NaN is not a measurement; leave the field empty if it was "
                "not measured");
    }
  }
}

TEST_F(CsvImportDb, ImportingTheSameFileTwiceCountsDuplicates) {
  const auto path = write("a.csv", "cell_id,cycle,qd_ah\na,1,1.0\na,2,0.99\na,2,0.99\n");
  auto first = import_csv_file(*db_, path, options_);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->inserted, 2U);
  EXPECT_EQ(first->duplicates, 1U);
  auto second = import_csv_file(*db_, path, options_);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->inserted, 0U);
  EXPECT_EQ(second->duplicates, 3U);
  EXPECT_EQ(stored_cycles(), 2);
}

TEST_F(CsvImportDb, ConflictWithStoredRowKeepsTheStoredOne) {
  ASSERT_TRUE(import_csv_file(*db_, write("a.csv", "cell_id,cycle,qd_ah\na,1,1.0\n"), options_));
  auto summary = import_csv_file(*db_, write("b.csv", "cell_id,cycle,qd_ah\na,1,0.7\n"), options_);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->conflicts, 1U);
  auto cycles = db_->cycles_of("a");
  ASSERT_TRUE(cycles.ok());
  ASSERT_EQ(cycles->size(), 1U);
  EXPECT_DOUBLE_EQ((*cycles)[0].discharge_capacity_ah, 1.0);
}

TEST_F(CsvImportDb, WritesInBatchesSmallerThanTheFile) {
  std::string text = "cell_id,cycle,qd_ah\n";
  for (int cycle = 1; cycle <= 25; ++cycle)
    text += "a," + std::to_string(cycle) + ",1.0\n";
  options_.batch_rows = 4;
  std::size_t progress_calls = 0;
  std::size_t last_written = 0;
  options_.progress = [&](const ImportProgress& p) {
    if (p.phase != ImportPhase::kWriting) return;
    ++progress_calls;
    EXPECT_GT(p.done, last_written);
    EXPECT_EQ(p.total, 25U);
    last_written = p.done;
  };
  auto summary = import_csv_file(*db_, write("a.csv", text), options_);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->inserted, 25U);
  EXPECT_EQ(progress_calls, 7U);  // ceil(25 / 4)
  EXPECT_EQ(last_written, 25U);
  EXPECT_EQ(stored_cycles(), 25);
}

TEST_F(CsvImportDb, CellsFileGivesRatedCapacityAndMetadata) {
  options_.defaults = CellDefaults{};
  options_.cells_file = write("cells.csv",
                              "cell_id,rated_capacity_ah,chemistry,dlnet_id\n"
                              "a,2.0,NMC,Bat001\n");
  auto summary = import_csv_file(*db_, write("a.csv", "cell_id,cycle,qd_ah\na,1,3.9\n"), options_);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  auto cell = db_->find_cell("a");
  ASSERT_TRUE(cell.ok());
  ASSERT_TRUE(cell->has_value());
  EXPECT_DOUBLE_EQ((*cell)->rated_capacity_ah, 2.0);
  EXPECT_EQ((*cell)->chemistry, "NMC");
  EXPECT_EQ((*cell)->metadata_json, R"({"dlnet_id":"Bat001"})");
}

TEST_F(CsvImportDb, BatteryArchiveFileTakesItsCellFromTheFileName) {
  const auto path = write("MICH_01R_cycle_data.csv",
                          "Cycle_Index,Test_Time (s),Charge_Capacity (Ah),Discharge_Capacity "
                          "(Ah)\n1,10,1.0,0.99\n2,20,1.0,0.98\n");
  auto summary = import_csv_file(*db_, path, options_);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->inserted, 2U);
  auto cycles = db_->cycles_of("MICH_01R");
  ASSERT_TRUE(cycles.ok());
  EXPECT_EQ(cycles->size(), 2U);
}

TEST_F(CsvImportDb, CellIdOptionIsRefusedForCyclecastFiles) {
  options_.cell_id = "x";
  auto summary = import_csv_file(*db_, write("a.csv", "cell_id,cycle,qd_ah\na,1,1.0\n"), options_);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(stored_cycles(), 0);
}

TEST_F(CsvImportDb, SkipBadRefusesAFileWithoutAGoodRow) {
  const auto good = write("good.csv", "cell_id,cycle,qd_ah\na,1,1.0\n");
  const auto wrong = write("wrong.csv", "cell_id,cycle,qd_ah\nb,1,5.0\nb,2,4.9\n");
  options_.skip_bad = true;
  const std::vector<std::filesystem::path> paths{good, wrong};
  auto summary = import_csv_files(*db_, paths, options_);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.error().code, ErrorCode::kParse);
  EXPECT_EQ(summary.error().message,
            wrong.string() + ": every one of its 2 rows is bad, e.g. " + wrong.string() +
                ":2: column 'qd_ah' (3): expected a number in (0, 2.2] Ah (2 x rated capacity "
                "1.1 Ah), found '5.0' (and 1 more bad rows); nothing was imported (--skip-bad "
                "skips bad rows among good ones: check the file's format, cells and rated "
                "capacity)");
  EXPECT_EQ(stored_cycles(), 0);
  auto rejected = db_->rejected(10);
  ASSERT_TRUE(rejected.ok());
  EXPECT_TRUE(rejected->empty());
}

TEST_F(CsvImportDb, SkipBadAcceptsAHeaderOnlyFileAndDuplicates) {
  options_.skip_bad = true;
  ASSERT_TRUE(import_csv_file(*db_, write("a.csv", "cell_id,cycle,qd_ah\na,1,1.0\n"), options_));
  auto again = import_csv_file(*db_, write("b.csv", "cell_id,cycle,qd_ah\na,1,1.0\n"), options_);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->duplicates, 1U);
  auto empty = import_csv_file(*db_, write("c.csv", "cell_id,cycle,qd_ah\n"), options_);
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_EQ(empty->rows, 0U);
}

// The command line tells a header error (which --skip-bad cannot skip) from bad rows (which it
// can) by the step that refuses them: prepare_import or refuse_bad_rows.
TEST_F(CsvImportDb, HeaderErrorsFailPreparationAndBadRowsFailTheCheck) {
  const auto header = write("h.csv", "cell_id,cycle,qd_ah,volts\na,1,1.0,3.3\n");
  auto unprepared = prepare_import(std::vector<std::filesystem::path>{header}, options_);
  ASSERT_FALSE(unprepared.ok());
  EXPECT_EQ(unprepared.error().code, ErrorCode::kParse);

  const auto rows = write("r.csv", "cell_id,cycle,qd_ah\na,1,1.0\na,2,-1\n");
  auto prepared = prepare_import(std::vector<std::filesystem::path>{rows}, options_);
  ASSERT_TRUE(prepared.ok()) << prepared.error().message;
  EXPECT_FALSE(refuse_bad_rows(*prepared, false).ok());
  EXPECT_TRUE(refuse_bad_rows(*prepared, true).ok());
}

TEST_F(CsvImportDb, ADefaultRigThatIsNoIdIsRefused) {
  options_.defaults.rig_id = "rig 1";
  auto summary = import_csv_file(*db_, write("a.csv", "cell_id,cycle,qd_ah\na,1,1.0\n"), options_);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(summary.error().message,
            "default rig 'rig 1': rig id contains a character outside [A-Za-z0-9_.-] (byte 32)");
}

TEST_F(CsvImportDb, BatteryArchiveMetadataGivesTheRatedCapacityOfItsFiles) {
  options_.defaults = CellDefaults{};
  options_.cells_file = write("metadata.csv",
                              "\"cell_id\",\"study\",\"capacity_ah\"\n"
                              "\"SNL_18650_NCA_25C_0-100_0.5/1C_a\",\"snl\",\"3.2\"\n");
  const auto path = write("SNL_18650_NCA_25C_0-100_0.5-1C_a_cycle_data.csv",
                          "Cycle_Index,Discharge_Capacity (Ah)\n1,3.1\n2,3.09\n");
  auto summary = import_csv_file(*db_, path, options_);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->inserted, 2U);
  auto cell = db_->find_cell("SNL_18650_NCA_25C_0-100_0.5-1C_a");
  ASSERT_TRUE(cell.ok());
  ASSERT_TRUE(cell->has_value());
  EXPECT_DOUBLE_EQ((*cell)->rated_capacity_ah, 3.2);
  EXPECT_EQ((*cell)->metadata_json, R"({"study":"snl"})");
}

// A write that fails part-way (here the database's size limit) says how many rows it stored.
TEST_F(CsvImportDb, AWriteFailingPartWaySaysHowManyRowsWereStored) {
  storage::OpenOptions limited;
  limited.max_size_bytes = 256 * 1024;
  auto small = storage::Database::open(dir_ / "small.db", limited);
  ASSERT_TRUE(small.ok()) << small.error().message;
  std::string text = "cell_id,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c\n";
  for (int cycle = 1; cycle <= 20000; ++cycle) {
    text += "a," + std::to_string(cycle) + ",1.0,1.01,0.017,31.5,30.2,29.1\n";
  }
  options_.batch_rows = 500;
  auto summary = import_csv_file(*small, write("big.csv", text), options_);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.error().code, ErrorCode::kFull);
  EXPECT_NE(summary.error().message.find(": writing rows failed after "), std::string::npos)
      << summary.error().message;
  EXPECT_EQ(summary.error().message.find("after 0 rows"), std::string::npos)
      << summary.error().message;
}

TEST_F(CsvImportDb, MissingFileIsAnIoError) {
  auto summary = import_csv_file(*db_, dir_ / "absent.csv", options_);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.error().code, ErrorCode::kIo);
}

}  // namespace
}  // namespace cyclecast::pipeline
