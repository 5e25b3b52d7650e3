#include "cyclecast/pipeline/paired_bootstrap.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

namespace cyclecast::pipeline {

std::vector<CellError> errors_by_cell(const Eigen::MatrixXd& truth,
                                      const Eigen::MatrixXd& prediction,
                                      std::span<const std::string> window_cells) {
  std::vector<CellError> out;
  std::map<std::string, size_t> position;
  for (Eigen::Index i = 0; i < truth.cols(); ++i) {
    const std::string& cell = window_cells[static_cast<size_t>(i)];
    auto [it, added] = position.emplace(cell, out.size());
    if (added) out.push_back(CellError{cell, 0.0, 0});
    CellError& e = out[it->second];
    e.abs_error_sum += (prediction.col(i) - truth.col(i)).cwiseAbs().sum();
    e.values += truth.rows();
  }
  return out;
}

double pooled_mae(std::span<const CellError> errors) {
  double sum = 0.0;
  int64_t values = 0;
  for (const CellError& e : errors) {
    sum += e.abs_error_sum;
    values += e.values;
  }
  return values > 0 ? sum / static_cast<double>(values) : PairedBootstrap::kNaN;
}

namespace {

Result<void> check_pairs(std::span<const CellError> reference, std::span<const CellError> candidate,
                         const BootstrapOptions& options) {
  const auto bad = [](const std::string& message) {
    return make_error(ErrorCode::kInvalidArgument, "paired bootstrap: " + message);
  };
  if (reference.empty()) return bad("no cell to compare on");
  if (reference.size() != candidate.size())
    return bad("the two models were scored on different cells");
  for (size_t i = 0; i < reference.size(); ++i) {
    if (reference[i].cell != candidate[i].cell || reference[i].values != candidate[i].values) {
      return bad("cell " + reference[i].cell + " is not scored on the same windows by both models");
    }
    if (reference[i].values <= 0) return bad("cell " + reference[i].cell + " has no forecast");
  }
  if (options.resamples < 1) return bad("at least one resample is needed");
  if (!(options.level > 0.0 && options.level < 1.0)) return bad("the level must lie in (0, 1)");
  return {};
}

// An index below n from 64 random bits. std::mt19937_64 is specified bit for bit, unlike
// std::uniform_int_distribution, so a seed gives the same bound on every standard library; the
// modulo's bias is below n / 2^64.
size_t draw(std::mt19937_64& rng, size_t n) {
  return static_cast<size_t>(rng() % n);
}

}  // namespace

Result<PairedBootstrap> paired_bootstrap(std::span<const CellError> reference,
                                         std::span<const CellError> candidate,
                                         const BootstrapOptions& options) {
  if (auto ok = check_pairs(reference, candidate, options); !ok) return ok.error();
  PairedBootstrap out;
  out.cells = static_cast<int64_t>(reference.size());
  out.reference_mae = pooled_mae(reference);
  out.candidate_mae = pooled_mae(candidate);
  out.improvement = out.reference_mae - out.candidate_mae;
  if (reference.size() < 2) return out;
  std::mt19937_64 rng(options.seed);
  std::vector<double> improvements(static_cast<size_t>(options.resamples));
  const size_t n = reference.size();
  for (double& improvement : improvements) {
    double difference = 0.0;  // summed reference minus candidate error of the drawn cells
    int64_t values = 0;
    for (size_t k = 0; k < n; ++k) {
      const size_t c = draw(rng, n);
      difference += reference[c].abs_error_sum - candidate[c].abs_error_sum;
      values += reference[c].values;
    }
    improvement = difference / static_cast<double>(values);
  }
  // The lower empirical quantile, rounded down: with 2000 resamples and level 0.9, the 200th
  // smallest improvement.
  const auto rank = static_cast<size_t>(
      std::floor((1.0 - options.level) * static_cast<double>(improvements.size())));
  const size_t index = rank > 0 ? rank - 1 : 0;
  std::nth_element(improvements.begin(), improvements.begin() + static_cast<std::ptrdiff_t>(index),
                   improvements.end());
  out.lower = improvements[index];
  return out;
}

}  // namespace cyclecast::pipeline
