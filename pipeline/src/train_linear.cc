// The linear candidate and the cell-level scores the promotion gate's evidence is built from
// (train_steps.h; docs/pipeline.md, "Gate evidence").
#include <algorithm>
#include <cmath>
#include <random>

#include "cyclecast/pipeline/baselines.h"
#include "train_steps.h"

namespace cyclecast::pipeline::training {

StudentRun linear_student(const LinearInit& init, int64_t encoded_size, int64_t features,
                          int64_t horizon, uint64_t seed) {
  StudentRun run;
  run.name = kLinearCandidate;
  run.stage = "linear";
  run.config = {encoded_size, features, 1, 1, horizon, true};
  const models::StudentModel<float> model(run.config);
  run.params = init_student(model, init, seed);
  // init_student leaves the head G at zero already; zeroing the lift and the liquid weights too
  // makes h exactly 0 for every input, so G h adds nothing and no gradient ever moves them.
  const models::StudentTensors& t = model.tensors();
  const int64_t width = run.config.width;
  const auto zero = [&](int64_t offset, int64_t count) {
    std::fill_n(run.params.data() + offset, count, 0.0f);
  };
  zero(t.lift, width * features);
  zero(t.lift_bias, width);
  zero(t.recurrent, width * width);
  zero(t.liquid_bias, width);
  zero(t.head, horizon * width);
  return run;
}

bool is_linear(const StudentRun& run) {
  return run.name == kLinearCandidate;
}

const std::vector<CellError>* CellScores::find(const std::string& name) const {
  for (const auto& [model, errors] : models) {
    if (model == name) return &errors;
  }
  return nullptr;
}

namespace {

std::vector<std::string> window_cells(const Windows& windows, const SeriesSet& data) {
  std::vector<std::string> out;
  out.reserve(windows.refs.size());
  for (const WindowRef& ref : windows.refs)
    out.push_back(data.cells[static_cast<size_t>(ref.cell)].cell_id);
  return out;
}

// The node's extrapolation baselines on `windows`, in kNodeBaselines' order.
std::vector<Eigen::MatrixXd> baseline_forecasts(const Windows& windows, int64_t horizon) {
  return {forecast_last_value(windows.input_soh, horizon),
          forecast_polynomial(windows.input_soh, horizon, 10, 1),
          forecast_polynomial(windows.input_soh, horizon, 50, 2)};
}

Result<Eigen::MatrixXd> int8_soh(const StudentRun& student, const Windows& windows,
                                 const FeatureSpec& spec) {
  auto out = forecast_int8(*student.int8, windows.inputs);
  if (!out) return out.error();
  return to_soh(*out, windows.last_soh, spec);
}

void append(std::vector<CellError>& to, const std::vector<CellError>& errors) {
  to.insert(to.end(), errors.begin(), errors.end());
}

// Every model's errors on `windows` appended to `scores` (students first, as given).
Result<void> add_scores(const std::vector<const StudentRun*>& students, const Windows& windows,
                        const EvalProtocol& protocol, CellScores& scores) {
  const std::vector<std::string> cells = window_cells(windows, protocol.data);
  size_t m = 0;
  for (const StudentRun* student : students) {
    auto soh = int8_soh(*student, windows, protocol.spec);
    if (!soh) return soh.error();
    append(scores.models[m++].second, errors_by_cell(windows.truth_soh, *soh, cells));
  }
  for (const Eigen::MatrixXd& soh : baseline_forecasts(windows, protocol.spec.horizon))
    append(scores.models[m++].second, errors_by_cell(windows.truth_soh, soh, cells));
  return {};
}

CellScores empty_scores(const std::vector<const StudentRun*>& students) {
  CellScores scores;
  for (const StudentRun* student : students)
    scores.models.emplace_back(student->name, std::vector<CellError>{});
  for (const char* name : kNodeBaselines)
    scores.models.emplace_back(name, std::vector<CellError>{});
  return scores;
}

// --- k-fold over cells ----------------------------------------------------------------------

// The cells long enough for one window, in an order shuffled by `seed` (Fisher-Yates on
// std::mt19937_64's bits, the same on every standard library, unlike std::shuffle).
std::vector<int64_t> shuffled_cells(const EvalProtocol& protocol, uint64_t seed) {
  std::vector<int64_t> cells;
  const int64_t needed = protocol.spec.input_len + protocol.spec.horizon;
  for (size_t i = 0; i < protocol.data.cells.size(); ++i) {
    if (static_cast<int64_t>(protocol.data.cells[i].rows.size()) >= needed) {
      cells.push_back(static_cast<int64_t>(i));
    }
  }
  std::mt19937_64 rng(seed);
  for (size_t i = cells.size(); i > 1; --i) {
    const auto j = static_cast<size_t>(rng() % i);
    std::swap(cells[i - 1], cells[j]);
  }
  return cells;
}

// Fold `fold` of `k`: its cells are tested, ~15 % of the others validate, the rest train. The
// normalization (FeatureSpec) stays the run's: refitting it per fold would change the encoding of
// every window for a few statistics of level and amplitude.
Result<EvalProtocol> fold_protocol(const EvalProtocol& protocol, const std::vector<int64_t>& cells,
                                   int64_t fold, int64_t k) {
  std::vector<int64_t> test, rest;
  for (size_t p = 0; p < cells.size(); ++p)
    (static_cast<int64_t>(p) % k == fold ? test : rest).push_back(cells[p]);
  const auto validation_count = std::max<size_t>(
      1, static_cast<size_t>(std::lround(0.15 * static_cast<double>(rest.size()))));
  std::vector<int64_t> validation(rest.begin(),
                                  rest.begin() + static_cast<std::ptrdiff_t>(validation_count));
  std::vector<int64_t> train(rest.begin() + static_cast<std::ptrdiff_t>(validation_count),
                             rest.end());
  for (auto* list : {&test, &validation, &train})
    std::sort(list->begin(), list->end());
  EvalProtocol f;
  f.name = "fold";
  f.spec = protocol.spec;
  f.ridge_lambda = protocol.ridge_lambda;
  f.train = make_windows(protocol.data.cells, f.spec, protocol.train_stride, train);
  f.validation = make_windows(protocol.data.cells, f.spec, protocol.train_stride, validation);
  f.test = make_windows(protocol.data.cells, f.spec, protocol.test_stride, test);
  if (f.train.size() == 0 || f.validation.size() == 0 || f.test.size() == 0) {
    return make_error(ErrorCode::kInvalidArgument, "fold " + std::to_string(fold + 1) +
                                                       " has no training, validation or test "
                                                       "window");
  }
  return f;
}

// `like`'s architecture fitted on the fold from scratch, without a teacher (one per fold is the
// expensive part of a run): the truth stands in for the teacher's forecasts, so distillation is
// training on the truth with the run's epochs and loss, then the same int8 quantization.
Result<StudentRun> refit(const StudentRun& like, const EvalProtocol& fold, const LinearInit& init,
                         const TrainingOptions& options, double jitter, int64_t epochs,
                         RunContext& ctx, double fraction_start, double fraction_span) {
  models::Dataset<float> train_set = dataset(fold.train);
  train_set.teacher = train_set.targets;
  const models::Dataset<float> validation_set = dataset(fold.validation);
  StudentRun student;
  if (is_linear(like)) {
    student = linear_student(init, like.config.input_size, like.config.features,
                             like.config.horizon, options.seed);
  } else {
    student.name = like.name;
    student.stage = like.stage;
    student.config = like.config;
    student.params = init_student(models::StudentModel<float>(student.config), init, options.seed);
    auto done = distill(student, train_set, validation_set,
                        distill_config(options, epochs, kLearningRate, ctx), jitter, ctx,
                        fraction_start, fraction_span);
    if (!done) return done.error();
  }
  auto quantized = quantize(student, calibration_inputs(fold.train, options.calibration_windows),
                            fold, train_set, validation_set, jitter, options, ctx);
  if (!quantized) return quantized.error();
  return student;
}

Result<CellScores> kfold_scores(const std::vector<const StudentRun*>& students,
                                const EvalProtocol& protocol, const TrainingOptions& options,
                                double jitter, int64_t epochs, RunContext& ctx) {
  const std::vector<int64_t> cells = shuffled_cells(protocol, options.seed);
  if (cells.size() < 3) {
    return make_error(ErrorCode::kInvalidArgument,
                      "k-fold needs at least 3 cells long enough "
                      "for a window");
  }
  const int64_t k = std::min<int64_t>(options.kfold_folds, static_cast<int64_t>(cells.size()));
  CellScores scores = empty_scores(students);
  scores.scoring = "k-fold";
  scores.folds = k;
  const double steps = static_cast<double>(k * static_cast<int64_t>(students.size()));
  for (int64_t fold = 0; fold < k; ++fold) {
    if (ctx.cancelled()) return cancelled_error();
    auto f = fold_protocol(protocol, cells, fold, k);
    if (!f) return f.error();
    auto init = fit_linear_init(*f);
    if (!init) return init.error();
    std::vector<StudentRun> refitted;
    for (const StudentRun* student : students) {
      const double start = static_cast<double>(fold * static_cast<int64_t>(students.size()) +
                                               static_cast<int64_t>(refitted.size())) /
                           steps;
      ctx.report(start, "k-fold " + std::to_string(fold + 1) + "/" + std::to_string(k) + ", " +
                            student->name);
      auto fitted = refit(*student, *f, *init, options, jitter, epochs, ctx, start, 1.0 / steps);
      if (!fitted) return fitted.error();
      refitted.push_back(std::move(*fitted));
    }
    std::vector<const StudentRun*> pointers;
    for (const StudentRun& r : refitted)
      pointers.push_back(&r);
    // The fold's windows index the run's cells (its spec is the run's too).
    if (auto added = add_scores(pointers, f->test, protocol, scores); !added) return added.error();
  }
  return scores;
}

}  // namespace

Result<CellScores> score_cells(const std::vector<const StudentRun*>& students,
                               const EvalProtocol& protocol, const TrainingOptions& options,
                               double jitter, int64_t epochs, RunContext& ctx) {
  std::string note;
  const bool few_cells =
      protocol.name == "split" && options.kfold_below_cells > 0 && options.kfold_folds >= 2 &&
      static_cast<int64_t>(protocol.data.cells.size()) < options.kfold_below_cells;
  if (few_cells) {
    auto scores = kfold_scores(students, protocol, options, jitter, epochs, ctx);
    if (scores || scores.error().code == ErrorCode::kCancelled) return scores;
    note = "k-fold was not possible (" + scores.error().message + ")";
  }
  CellScores scores = empty_scores(students);
  scores.scoring = "held-out";
  scores.note = note;
  if (auto added = add_scores(students, protocol.test, protocol, scores); !added)
    return added.error();
  return scores;
}

}  // namespace cyclecast::pipeline::training
