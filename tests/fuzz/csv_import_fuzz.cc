// libFuzzer target for the CSV import parsers: cycles files of either format and companion cells
// files. The first byte picks the parser. Beyond "no crash, no out-of-bounds read": every row the
// parser accepts satisfies the documented rules (cycle >= 1, positive finite capacity, a cell id
// the API and MQTT topics take), and no row is both accepted and rejected.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cyclecast/ids.h"
#include "cyclecast/pipeline/csv_import.h"

namespace pipeline = cyclecast::pipeline;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

void fuzz_cycles(std::string_view text, pipeline::CsvFormat format) {
  pipeline::CellDefaults defaults;
  defaults.rated_capacity_ah = 1.1;
  const pipeline::CellCatalog catalog(defaults);
  pipeline::ParseOptions options;
  options.format = format;
  options.cell_id = "fuzz";
  options.catalog = &catalog;
  auto parsed = pipeline::parse_cycles_csv(text, "fuzz.csv", options);
  if (!parsed.ok()) return;
  for (const std::string& cell_id : parsed->cell_ids) {
    check(cyclecast::is_valid_id(cell_id));
  }
  for (const pipeline::CycleRow& row : parsed->rows) {
    check(row.cell < parsed->cell_ids.size());
    check(row.cycle >= 1);
    check(std::isfinite(row.qd_ah) && row.qd_ah > 0.0);
  }
  // Every data row is written, rejected (conflicting repeats included) or an identical repeat.
  check(parsed->rows.size() + parsed->rejected.size() + parsed->duplicate_rows ==
        parsed->data_rows);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      fuzz_cycles(text, pipeline::CsvFormat::kAuto);
      break;
    case 1:
      fuzz_cycles(text, pipeline::CsvFormat::kCyclecast);
      break;
    case 2:
      fuzz_cycles(text, pipeline::CsvFormat::kBatteryArchive);
      break;
    default:
      (void)pipeline::CellCatalog::parse(text, "cells.csv");
      break;
  }
  return 0;
}
