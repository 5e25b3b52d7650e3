// Structured pruning of a StudentModel (student.h): whole hidden units and whole bypass
// features are removed, so the matrices physically shrink and the smaller student runs (and
// quantizes, and flashes) as an ordinary StudentModel of the smaller configuration.
//
// A hidden unit u owns: row u of A and a[u]; row u and column u of Wr, b[u], alpha[u], beta[u];
// column u of G. A feature f owns: row f of E, column f of A, column f of D. Units (and features)
// are ranked by the L2 norm of everything they own, and the floor(ratio * n) smallest are removed
// (ties: the lower index goes first; a 1e-9 slack makes 2.0 / 6.0 of 6 units remove 2), always
// keeping at least one. The norms are taken on the
// unpruned model for both rankings, so the order in which the two cuts are applied does not
// matter.
//
// Removing a unit whose column of G and column of Wr are zero (no path to the output) leaves the
// outputs unchanged; removing a feature whose row of E is zero likewise. Anything else changes the
// model, and the pipeline fine-tunes the result.
#pragma once

#include <cstdint>
#include <vector>

#include "cyclecast/models/student.h"
#include "cyclecast/result.h"

namespace cyclecast::models {

struct PrunedStudent {
  StudentConfig config;
  Vector<float> params;                // laid out as StudentModel<float>(config)
  std::vector<int64_t> kept_units;     // original indices of the remaining units, ascending
  std::vector<int64_t> kept_features;  // original indices of the remaining features, ascending
};

// params: StudentModel<float>(config).layout().size() values. Ratios must lie in [0, 1].
// Errors: kInvalidArgument for a bad configuration or ratio.
Result<PrunedStudent> prune_student(const StudentConfig& config, const float* params,
                                    double width_ratio, double feature_ratio);

// The L2 norm of each hidden unit's and each feature's weight group (the ranking keys), exposed
// for reports and tests.
std::vector<double> student_unit_norms(const StudentConfig& config, const float* params);
std::vector<double> student_feature_norms(const StudentConfig& config, const float* params);

}  // namespace cyclecast::models
