#include "cyclecast/pipeline/gate_evidence.h"

#include <cmath>

#include "printf_string.h"

namespace cyclecast::pipeline {

namespace {

std::string scoring_text(const GateEvidence& e) {
  if (e.scoring == "k-fold") {
    return printf_string("%lld cells, %lld-fold over cells", static_cast<long long>(e.cells),
                         static_cast<long long>(e.folds));
  }
  return printf_string("%lld held-out test cells", static_cast<long long>(e.cells));
}

std::string reason_of(const GateEvidence& e, const BootstrapOptions& options) {
  const std::string figures = printf_string(
      "MAE %.6f vs %.6f on %s; paired bootstrap over cells (%lld resamples): improvement %.6f, "
      "lower %.0f %% bound ",
      e.candidate_mae, e.best_reference_mae, scoring_text(e).c_str(),
      static_cast<long long>(options.resamples), e.best_reference_mae - e.candidate_mae,
      100.0 * options.level);
  const std::string bound =
      std::isnan(e.lower) ? std::string("unknown from one cell") : printf_string("%.6f", e.lower);
  if (e.beats_references) {
    return e.candidate + " beats the best baseline the node could run, " + e.best_reference + ": " +
           figures + bound + " > 0";
  }
  return e.candidate + " does not beat the best baseline the node could run, " + e.best_reference +
         ": " + figures + bound + (std::isnan(e.lower) ? "" : " <= 0");
}

}  // namespace

Result<GateEvidence> judge_against_references(
    const std::string& candidate, const std::vector<CellError>& candidate_errors,
    const std::vector<std::pair<std::string, std::vector<CellError>>>& references,
    const std::string& scoring, int64_t folds, const BootstrapOptions& options) {
  if (references.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "no baseline to judge " + candidate + " by");
  }
  GateEvidence e;
  e.scoring = scoring;
  e.folds = folds;
  e.candidate = candidate;
  size_t best = 0;
  for (size_t i = 0; i < references.size(); ++i) {
    auto compared = paired_bootstrap(references[i].second, candidate_errors, options);
    if (!compared) return compared.error();
    e.comparisons.push_back({references[i].first, *compared});
    if (compared->reference_mae < e.comparisons[best].result.reference_mae) best = i;
  }
  const PairedBootstrap& decisive = e.comparisons[best].result;
  e.cells = decisive.cells;
  e.candidate_mae = decisive.candidate_mae;
  e.best_reference = e.comparisons[best].reference;
  e.best_reference_mae = decisive.reference_mae;
  e.lower = decisive.lower;
  e.beats_references = decisive.lower > 0.0;  // NaN (one cell) never beats
  e.reason = reason_of(e, options);
  return e;
}

}  // namespace cyclecast::pipeline
