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

std::string bound_text(double lower) {
  return std::isnan(lower) ? std::string("unknown from one cell") : printf_string("%.6f", lower);
}

std::string reason_of(const GateEvidence& e, const BootstrapOptions& options) {
  const std::string method =
      printf_string(" on %s (paired bootstrap over cells, %lld resamples)", scoring_text(e).c_str(),
                    static_cast<long long>(options.resamples));
  const std::string best = printf_string("MAE %.6f vs %.6f", e.candidate_mae, e.best_reference_mae);
  const std::string level = printf_string("lower %.0f %% bound", 100.0 * options.level);
  if (e.beats_references) {
    return e.candidate + " beats every baseline the node could run" + method + ": the best, " +
           e.best_reference + ", " + best + "; the smallest " + level + " of the improvement, " +
           bound_text(e.lower) + " > 0 (vs " + e.weakest_reference + ")";
  }
  const BaselineComparison* weakest = nullptr;
  for (const BaselineComparison& c : e.comparisons) {
    if (c.reference == e.weakest_reference) weakest = &c;
  }
  const double weakest_mae = weakest ? weakest->result.reference_mae : e.best_reference_mae;
  return e.candidate + " does not beat the baselines the node could run" + method + ": " +
         e.weakest_reference + printf_string(" MAE %.6f vs %.6f, ", e.candidate_mae, weakest_mae) +
         level + " of the improvement " + bound_text(e.lower) +
         (std::isnan(e.lower) ? "" : " <= 0") + "; the best, " + e.best_reference + ", " + best;
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
  e.candidate_errors = candidate_errors;
  size_t best = 0;
  size_t weakest = 0;
  for (size_t i = 0; i < references.size(); ++i) {
    auto compared = paired_bootstrap(references[i].second, candidate_errors, options);
    if (!compared) return compared.error();
    e.comparisons.push_back({references[i].first, *compared});
    if (compared->reference_mae < e.comparisons[best].result.reference_mae) best = i;
    // NaN (one cell) is the weakest of all.
    const double lower = compared->lower;
    if (std::isnan(lower) || lower < e.comparisons[weakest].result.lower) weakest = i;
  }
  e.cells = e.comparisons[best].result.cells;
  e.candidate_mae = e.comparisons[best].result.candidate_mae;
  e.best_reference = e.comparisons[best].reference;
  e.best_reference_mae = e.comparisons[best].result.reference_mae;
  e.weakest_reference = e.comparisons[weakest].reference;
  e.lower = e.comparisons[weakest].result.lower;
  e.beats_references = e.lower > 0.0;  // NaN never beats
  e.reason = reason_of(e, options);
  return e;
}

}  // namespace cyclecast::pipeline
