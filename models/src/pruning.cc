#include "cyclecast/models/pruning.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace cyclecast::models {
namespace {

// Views of one student's tensors in a flat float vector.
struct Views {
  ConstMatrixMap<float> e, a_w, wr, d, g;
  ConstVectorMap<float> a_b, alpha, beta, b, c;

  Views(const StudentModel<float>& model, const float* p)
      : e(p + model.tensors().encoder, model.config().features, model.config().input_size),
        a_w(p + model.tensors().lift, model.config().width, model.config().features),
        wr(p + model.tensors().recurrent, model.config().width, model.config().width),
        d(p + model.tensors().bypass, model.config().horizon, model.config().features),
        g(p + model.tensors().head, model.config().horizon, model.config().width),
        a_b(p + model.tensors().lift_bias, model.config().width),
        alpha(p + model.tensors().alpha, model.config().width),
        beta(p + model.tensors().beta, model.config().width),
        b(p + model.tensors().liquid_bias, model.config().width),
        c(p + model.tensors().head_bias, model.config().horizon) {}
};

std::vector<double> unit_norms(const Views& v) {
  std::vector<double> norms(static_cast<size_t>(v.a_b.size()));
  for (Eigen::Index u = 0; u < v.a_b.size(); ++u) {
    // Wr(u, u) is in both its row and its column; count it once.
    const double self = v.wr(u, u);
    const double scalars =
        v.a_b[u] * v.a_b[u] + v.b[u] * v.b[u] + v.alpha[u] * v.alpha[u] + v.beta[u] * v.beta[u];
    const double sq = v.a_w.row(u).cast<double>().squaredNorm() +
                      v.wr.row(u).cast<double>().squaredNorm() +
                      v.wr.col(u).cast<double>().squaredNorm() - self * self + scalars +
                      v.g.col(u).cast<double>().squaredNorm();
    norms[static_cast<size_t>(u)] = std::sqrt(std::max(sq, 0.0));
  }
  return norms;
}

std::vector<double> feature_norms(const Views& v) {
  std::vector<double> norms(static_cast<size_t>(v.e.rows()));
  for (Eigen::Index f = 0; f < v.e.rows(); ++f) {
    const double sq = v.e.row(f).cast<double>().squaredNorm() +
                      v.a_w.col(f).cast<double>().squaredNorm() +
                      v.d.col(f).cast<double>().squaredNorm();
    norms[static_cast<size_t>(f)] = std::sqrt(sq);
  }
  return norms;
}

// Indices to keep after removing floor(ratio * n) of the smallest norms, at least one kept.
std::vector<int64_t> keep_largest(const std::vector<double>& norms, double ratio) {
  const auto n = static_cast<int64_t>(norms.size());
  // The slack makes ratios written as fractions (2.0 / 6.0 of 6) remove what they say despite
  // rounding; it is far below 1 / n for any real width.
  const int64_t remove =
      std::min(n - 1, static_cast<int64_t>(std::floor(ratio * static_cast<double>(n) + 1e-9)));
  std::vector<int64_t> order(norms.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
    return norms[static_cast<size_t>(x)] < norms[static_cast<size_t>(y)];
  });
  std::vector<int64_t> kept(order.begin() + remove, order.end());
  std::sort(kept.begin(), kept.end());
  return kept;
}

Result<void> check_ratio(double ratio, const char* name) {
  if (!(ratio >= 0.0 && ratio <= 1.0)) {
    return make_error(ErrorCode::kInvalidArgument, std::string("The ") + name +
                                                       " pruning ratio must lie in [0, 1]; got " +
                                                       std::to_string(ratio) + ".");
  }
  return {};
}

template <typename Derived>
void write(float* p, int64_t offset, const Eigen::MatrixBase<Derived>& m) {
  MatrixMap<float>(p + offset, m.rows(), m.cols()) = m;
}

}  // namespace

std::vector<double> student_unit_norms(const StudentConfig& config, const float* params) {
  const StudentModel<float> model(config);
  return unit_norms(Views(model, params));
}

std::vector<double> student_feature_norms(const StudentConfig& config, const float* params) {
  const StudentModel<float> model(config);
  return feature_norms(Views(model, params));
}

Result<PrunedStudent> prune_student(const StudentConfig& config, const float* params,
                                    double width_ratio, double feature_ratio) {
  if (auto ok = check_student_config(config); !ok) return ok.error();
  if (auto ok = check_ratio(width_ratio, "width"); !ok) return ok.error();
  if (auto ok = check_ratio(feature_ratio, "feature"); !ok) return ok.error();
  if (params == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "prune_student needs the parameters.");
  }
  const StudentModel<float> model(config);
  const Views v(model, params);

  PrunedStudent out;
  out.kept_units = keep_largest(unit_norms(v), width_ratio);
  out.kept_features = keep_largest(feature_norms(v), feature_ratio);
  const std::vector<int64_t>& units = out.kept_units;
  const std::vector<int64_t>& feats = out.kept_features;
  out.config = config;
  out.config.width = static_cast<int64_t>(units.size());
  out.config.features = static_cast<int64_t>(feats.size());

  const StudentModel<float> small(out.config);
  const StudentTensors& t = small.tensors();
  out.params.resize(small.layout().size());
  float* p = out.params.data();
  write(p, t.encoder, v.e(feats, Eigen::all));
  write(p, t.lift, v.a_w(units, feats));
  write(p, t.lift_bias, v.a_b(units));
  write(p, t.alpha, v.alpha(units));
  write(p, t.beta, v.beta(units));
  write(p, t.recurrent, v.wr(units, units));
  write(p, t.liquid_bias, v.b(units));
  write(p, t.bypass, v.d(Eigen::all, feats));
  write(p, t.head, v.g(Eigen::all, units));
  write(p, t.head_bias, v.c);
  return out;
}

}  // namespace cyclecast::models
