// The model registry on PostgreSQL (registry.h, docs/storage.md "Backends"): the statements of
// registry.cc in PostgreSQL's dialect, with the same semantics. registry.cc checks what needs no
// database (an empty trigger or version, a failed run without its error) and forwards here when
// the handle is on PostgreSQL.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cyclecast/result.h"
#include "cyclecast/storage/registry.h"
#include "pg_backend.h"

namespace cyclecast::storage::detail {

// The stored names back as enums (registry.cc): unknown text reads as running / candidate.
RunStatus run_status_of(const std::string& text);
ModelStatus model_status_of(const std::string& text);

Result<std::int64_t> pg_create_run(PgBackend& pg, const NewRun& run);
Result<void> pg_update_run(PgBackend& pg, std::int64_t run_id, const RunUpdate& update);
Result<void> pg_finish_run(PgBackend& pg, std::int64_t run_id, RunStatus status,
                           const std::string& error, const std::string& summary_json);
Result<std::int64_t> pg_fail_unfinished_runs(PgBackend& pg, const std::string& error);
Result<std::vector<TrainingRunRecord>> pg_list_runs(PgBackend& pg, std::int64_t limit);
Result<TrainingRunRecord> pg_get_run(PgBackend& pg, std::int64_t run_id);

Result<ModelRecord> pg_register_model(PgBackend& pg, const NewModel& model,
                                      const std::string& actor, const std::string& reason,
                                      AfterRegister then, const std::string& then_reason);
Result<std::vector<ModelRecord>> pg_list_models(PgBackend& pg);
Result<ModelRecord> pg_get_model(PgBackend& pg, const std::string& version);
Result<std::optional<ModelRecord>> pg_champion(PgBackend& pg);
Result<void> pg_promote(PgBackend& pg, const std::string& version, const std::string& actor,
                        const std::string& reason);
Result<void> pg_record_not_promoted(PgBackend& pg, const std::string& version,
                                    const std::string& actor, const std::string& reason);
Result<void> pg_record_drift_detected(PgBackend& pg, const std::string& version,
                                      const std::string& actor, const std::string& reason,
                                      const std::string& detail_json);
Result<std::string> pg_rollback(PgBackend& pg, const std::string& actor, const std::string& reason);
Result<std::vector<ModelEvent>> pg_events_of(PgBackend& pg, const std::string& version);
Result<std::vector<ModelEvent>> pg_recent_events(PgBackend& pg, std::int64_t limit);

}  // namespace cyclecast::storage::detail
