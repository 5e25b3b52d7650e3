#include "soh_data.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

namespace cyclecast::bench {

Result<SohSeries> read_soh_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(ErrorCode::kIo, "Cannot open " + path + ".");
  std::string line;
  std::getline(in, line);
  if (line.rfind("series,cell_id,row,soh", 0) != 0) {
    return make_error(ErrorCode::kParse, path + ": expected header 'series,cell_id,row,soh'.");
  }
  SohSeries out;
  int64_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    std::stringstream fields(line);
    std::string name, cell, row, soh;
    if (!std::getline(fields, name, ',') || !std::getline(fields, cell, ',') ||
        !std::getline(fields, row, ',') || !std::getline(fields, soh)) {
      return make_error(ErrorCode::kParse,
                        path + ":" + std::to_string(line_no) + ": expected 4 fields.");
    }
    std::vector<double>& values = out[name];
    if (std::stoll(row) != static_cast<int64_t>(values.size())) {
      return make_error(ErrorCode::kParse, path + ":" + std::to_string(line_no) +
                                               ": rows of a series must be consecutive from 0.");
    }
    values.push_back(std::stod(soh));
  }
  return out;
}

Result<std::vector<Segment>> read_segments(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(ErrorCode::kIo, "Cannot open " + path + ".");
  const nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
  if (doc.is_discarded() || !doc.is_array()) {
    return make_error(ErrorCode::kParse, path + ": expected a JSON array of segments.");
  }
  std::vector<Segment> out;
  for (const auto& s : doc) {
    Segment seg;
    seg.series = s.at("series").get<std::string>();
    seg.input_begin = s.at("input_rows").at(0).get<int64_t>();
    seg.target_begin = s.at("target_rows").at(0).get<int64_t>();
    seg.target_end = s.at("target_rows").at(1).get<int64_t>();
    out.push_back(seg);
  }
  return out;
}

WindowSets make_windows(const SohSeries& series, const std::vector<Segment>& held_out,
                        int64_t input_len, int64_t horizon, int64_t stride,
                        int64_t validation_every) {
  WindowSets sets;
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  int64_t index = 0;
  for (const auto& [name, values] : series) {
    const bool validation = validation_every > 0 && index++ % validation_every == 0;
    if (validation) continue;
    for (double v : values) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  sets.scaling = Scaling{lo, hi - lo};
  std::vector<float> train_x, train_y, val_x, val_y;
  index = 0;
  const int64_t span = input_len + horizon;
  for (const auto& [name, values] : series) {
    const bool validation = validation_every > 0 && index++ % validation_every == 0;
    for (int64_t start = 0; start + span <= static_cast<int64_t>(values.size()); start += stride) {
      const bool overlaps = std::any_of(held_out.begin(), held_out.end(), [&](const Segment& s) {
        return s.series == name && start < s.target_end && s.input_begin < start + span;
      });
      if (overlaps) continue;
      std::vector<float>& xs = validation ? val_x : train_x;
      std::vector<float>& ys = validation ? val_y : train_y;
      for (int64_t i = 0; i < input_len; ++i) {
        xs.push_back(
            static_cast<float>(sets.scaling.apply(values[static_cast<size_t>(start + i)])));
      }
      for (int64_t i = 0; i < horizon; ++i) {
        ys.push_back(static_cast<float>(
            sets.scaling.apply(values[static_cast<size_t>(start + input_len + i)])));
      }
    }
  }
  auto to_matrix = [](const std::vector<float>& v, int64_t rows) {
    return models::Matrix<float>(Eigen::Map<const models::Matrix<float>>(
        v.data(), rows, static_cast<int64_t>(v.size()) / rows));
  };
  sets.train.inputs = to_matrix(train_x, input_len);
  sets.train.targets = to_matrix(train_y, horizon);
  sets.validation.inputs = to_matrix(val_x, input_len);
  sets.validation.targets = to_matrix(val_y, horizon);
  return sets;
}

double segment_mae(const models::Model<float>& model, const float* params, const SohSeries& series,
                   const std::vector<Segment>& segments, const Scaling& scaling) {
  double total = 0.0;
  for (const Segment& s : segments) {
    const std::vector<double>& values = series.at(s.series);
    models::Matrix<float> x(model.input_size(), 1);
    for (int64_t i = 0; i < model.input_size(); ++i) {
      x(i, 0) = static_cast<float>(scaling.apply(values[static_cast<size_t>(s.input_begin + i)]));
    }
    models::Matrix<float> y;
    model.predict(params, x, y);
    double err = 0.0;
    const int64_t horizon = s.target_end - s.target_begin;
    for (int64_t i = 0; i < horizon; ++i) {
      err += std::abs(scaling.invert(y(i, 0)) - values[static_cast<size_t>(s.target_begin + i)]);
    }
    total += err / static_cast<double>(horizon);
  }
  return total / static_cast<double>(segments.size());
}

std::string data_dir() {
  if (const char* env = std::getenv("CYCLECAST_DATA_DIR")) return env;
  return std::string(CYCLECAST_SOURCE_DIR) + "/../shared/data";
}

}  // namespace cyclecast::bench
