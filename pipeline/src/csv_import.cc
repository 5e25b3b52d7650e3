#include "cyclecast/pipeline/csv_import.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "csv_common.h"
#include "cyclecast/ids.h"

namespace cyclecast::pipeline {

namespace {

Result<std::vector<ParsedFile>> parse_files(std::span<const std::filesystem::path> paths,
                                            const CellCatalog& catalog,
                                            const ImportOptions& options) {
  std::vector<ParsedFile> files;
  for (const std::filesystem::path& path : paths) {
    ParsedFile file{path.string(), {}};
    auto text = csv::read_whole_file(path);
    if (!text) return text.error();
    ParseOptions parse_options;
    parse_options.format = options.format;
    parse_options.cell_id =
        options.cell_id.empty() ? cell_id_from_file_name(path) : options.cell_id;
    parse_options.catalog = &catalog;
    if (options.progress) {
      parse_options.progress = [&](const ParseProgress& p) {
        options.progress(
            ImportProgress{ImportPhase::kParsing, file.name, p.bytes_done, p.bytes_total});
      };
    }
    auto parsed = parse_cycles_csv(text->view(), file.name, parse_options);
    if (!parsed) return parsed.error();
    if (parsed->format == CsvFormat::kCyclecast && !options.cell_id.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        file.name +
                            ": a cell id was given, but this file has a cell_id column "
                            "(a cell id applies to BatteryArchive files only)");
    }
    file.parsed = std::move(*parsed);
    files.push_back(std::move(file));
  }
  return files;
}

// "FILE:LINE: reason (and N more bad rows)": the first bad row of `files` and how many follow.
std::string describe_bad_rows(std::span<const ParsedFile> files) {
  std::size_t bad_rows = 0;
  const ParsedFile* first = nullptr;
  for (const ParsedFile& file : files) {
    bad_rows += file.parsed.rejected.size();
    if (first == nullptr && !file.parsed.rejected.empty()) first = &file;
  }
  if (first == nullptr) return {};
  const RowRejection& bad = first->parsed.rejected.front();
  std::string message = csv::location(first->name, bad.line) + ": " + bad.reason;
  if (bad_rows > 1) message += " (and " + std::to_string(bad_rows - 1) + " more bad rows)";
  return message;
}

Result<std::size_t> upsert_cells(storage::Database& db, const std::vector<ParsedFile>& files,
                                 const CellCatalog& catalog) {
  std::map<std::string, std::string, std::less<>> batches;  // cell -> batch, first file wins
  for (const ParsedFile& file : files) {
    for (std::size_t i = 0; i < file.parsed.cell_ids.size(); ++i) {
      auto [it, inserted] = batches.emplace(file.parsed.cell_ids[i], file.parsed.cell_batches[i]);
      if (!inserted && it->second.empty()) it->second = file.parsed.cell_batches[i];
    }
  }
  std::vector<storage::CellInfo> cells;
  cells.reserve(batches.size());
  for (const auto& [cell_id, batch] : batches) {
    auto info = catalog.resolve(cell_id, batch);
    if (!info) return info.error();
    cells.push_back(std::move(*info));
  }
  if (auto upserted = db.upsert_cells(cells); !upserted) return upserted.error();
  return cells.size();
}

Result<void> write_rejections(storage::Database& db, const ParsedFile& file) {
  std::vector<storage::RejectedRecord> records;
  records.reserve(file.parsed.rejected.size());
  for (const RowRejection& bad : file.parsed.rejected) {
    records.push_back(
        storage::RejectedRecord{csv::location(file.name, bad.line), bad.raw, bad.reason, 0});
  }
  if (records.empty()) return {};
  return db.write_rejected(records);
}

Result<void> write_rows(storage::Database& db, const ParsedFile& file, const ImportOptions& options,
                        std::size_t rows_total, std::size_t& rows_written, ImportSummary& summary) {
  const std::string source = "import:" + file.name;
  const std::vector<CycleRow>& rows = file.parsed.rows;
  std::vector<storage::CycleRecord> batch;
  for (std::size_t begin = 0; begin < rows.size(); begin += options.batch_rows) {
    const std::size_t count = std::min(options.batch_rows, rows.size() - begin);
    batch.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
      cycle_row_to_record(file.parsed, rows[begin + i], source, batch[i]);
    }
    auto result = db.write_cycles(batch);
    if (!result) {
      return make_error(result.error().code, file.name + ": writing rows failed after " +
                                                 std::to_string(rows_written) +
                                                 " rows were stored: " + result.error().message);
    }
    summary.inserted += result->inserted;
    summary.duplicates += result->duplicates;
    summary.conflicts += result->conflicts;
    summary.rejected += result->unknown_cells;
    rows_written += count;
    if (options.progress) {
      options.progress(ImportProgress{ImportPhase::kWriting, {}, rows_written, rows_total});
    }
  }
  return {};
}

}  // namespace

Result<PreparedImport> prepare_import(std::span<const std::filesystem::path> paths,
                                      const ImportOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (options.batch_rows == 0) {
    return make_error(ErrorCode::kInvalidArgument, "batch_rows must be at least 1");
  }
  if (!options.cell_id.empty() && paths.size() > 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a cell id can be given for a single BatteryArchive file only, not for " +
                          std::to_string(paths.size()) + " files");
  }
  if (const std::string problem = check_id(options.defaults.rig_id); !problem.empty()) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "default rig " + csv::quote_for_message(options.defaults.rig_id) + ": rig " + problem);
  }
  PreparedImport prepared{CellCatalog(options.defaults), {}, 0.0};
  if (options.cells_file) {
    auto loaded = CellCatalog::load(*options.cells_file, options.defaults);
    if (!loaded) return loaded.error();
    prepared.catalog = std::move(*loaded);
  }
  auto files = parse_files(paths, prepared.catalog, options);
  if (!files) return files.error();
  prepared.files = std::move(*files);
  prepared.parse_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return prepared;
}

Result<void> refuse_bad_rows(const PreparedImport& prepared, bool skip_bad) {
  if (!skip_bad) {
    std::string first_bad = describe_bad_rows(prepared.files);
    if (first_bad.empty()) return {};
    return make_error(ErrorCode::kParse, std::move(first_bad) + "; nothing was imported");
  }
  // Skipping is for the odd bad row among good ones. A file without a single good row was read
  // with the wrong layout, cells or rated capacity: storing all of it as rejected would hide that.
  for (const ParsedFile& file : prepared.files) {
    if (!file.parsed.rows.empty() || file.parsed.rejected.empty()) continue;
    return make_error(ErrorCode::kParse,
                      file.name + ": every one of its " + std::to_string(file.parsed.data_rows) +
                          " rows is bad, e.g. " +
                          describe_bad_rows(std::span<const ParsedFile>(&file, 1)) +
                          "; nothing was imported (--skip-bad skips bad rows among good ones: "
                          "check the file's format, cells and rated capacity)");
  }
  return {};
}

Result<ImportSummary> write_import(storage::Database& db, const PreparedImport& prepared,
                                   const ImportOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (options.batch_rows == 0) {
    return make_error(ErrorCode::kInvalidArgument, "batch_rows must be at least 1");
  }
  ImportSummary summary;
  summary.files = prepared.files.size();
  std::size_t rows_total = 0;
  for (const ParsedFile& file : prepared.files) {
    summary.rows += file.parsed.data_rows;
    summary.duplicates += file.parsed.duplicate_rows;
    summary.conflicts += file.parsed.conflicting_rows;
    summary.rejected += file.parsed.rejected.size() - file.parsed.conflicting_rows;
    rows_total += file.parsed.rows.size();
  }
  auto cells = upsert_cells(db, prepared.files, prepared.catalog);
  if (!cells) return cells.error();
  summary.cells = *cells;

  std::size_t rows_written = 0;
  for (const ParsedFile& file : prepared.files) {
    if (auto written = write_rows(db, file, options, rows_total, rows_written, summary); !written) {
      return written.error();
    }
    if (auto rejected = write_rejections(db, file); !rejected) return rejected.error();
  }
  summary.write_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary.parse_seconds = prepared.parse_seconds;
  summary.seconds = summary.parse_seconds + summary.write_seconds;
  return summary;
}

Result<ImportSummary> import_csv_files(storage::Database& db,
                                       std::span<const std::filesystem::path> paths,
                                       const ImportOptions& options) {
  auto prepared = prepare_import(paths, options);
  if (!prepared) return prepared.error();
  if (auto refused = refuse_bad_rows(*prepared, options.skip_bad); !refused) {
    return refused.error();
  }
  return write_import(db, *prepared, options);
}

Result<ImportSummary> import_csv_file(storage::Database& db, const std::filesystem::path& path,
                                      const ImportOptions& options) {
  return import_csv_files(db, std::span<const std::filesystem::path>(&path, 1), options);
}

}  // namespace cyclecast::pipeline