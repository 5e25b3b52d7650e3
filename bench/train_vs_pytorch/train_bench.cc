// C++ side of the train-vs-PyTorch benchmark: trains one architecture on windows of the
// severson-soh series (synthetic decay curves where the data folder is absent), prints per-epoch
// times and losses as one JSON line, and dumps the windows and the initial weights so that the
// PyTorch twin (torch_twin.py) trains the very same problem from the very same start.
//
//   train_bench --arch dlnet|ltc|euler|dlnet-student [--width 16] [--rank 0] [--unfolds 6]
//               [--epochs 3] [--batch 64] [--windows 2048] [--threads 2] [--lr 1e-3]
//               [--seed 1] [--dump DIR] [--data DIR]
#include <cstdio>
#include <fstream>
#include <memory>

#include "cyclecast/models/dlnet.h"
#include "cyclecast/models/euler_student.h"
#include "cyclecast/models/ltc.h"
#include "flags.h"
#include "soh_data.h"

using namespace cyclecast;

namespace {

std::unique_ptr<models::Model<float>> make_model(const bench::Flags& flags) {
  const std::string arch = flags.text("arch", "dlnet");
  const int64_t width = flags.integer("width", 16);
  const int64_t rank = flags.integer("rank", 0);
  if (arch == "dlnet")
    return std::make_unique<models::DlnetModel<float>>(models::DlnetConfig::teacher());
  if (arch == "dlnet-student") {
    return std::make_unique<models::DlnetModel<float>>(models::DlnetConfig::student(width, rank));
  }
  if (arch == "ltc") {
    models::LtcConfig c;
    c.units = flags.integer("width", 64);
    c.unfolds = flags.integer("unfolds", 6);
    return std::make_unique<models::LtcModel<float>>(c);
  }
  if (arch == "euler") {
    models::EulerStudentConfig c;
    c.width = width;
    c.recurrent_rank = rank;
    return std::make_unique<models::EulerStudentModel<float>>(c);
  }
  return nullptr;
}

// `count` windows spread evenly over all windows of the real series, or synthetic ones.
models::Dataset<float> bench_windows(const bench::Flags& flags, int64_t count) {
  const std::string dir = flags.text("data", bench::data_dir()) + "/severson-soh";
  auto series = bench::read_soh_csv(dir + "/soh.csv");
  models::Dataset<float> out;
  out.inputs.resize(100, count);
  out.targets.resize(100, count);
  if (series.ok()) {
    const bench::WindowSets all = bench::make_windows(*series, {}, 100, 100, 1, 0);
    const int64_t total = all.train.size();
    for (int64_t j = 0; j < count; ++j) {
      const int64_t from = j * total / count;
      out.inputs.col(j) = all.train.inputs.col(from);
      out.targets.col(j) = all.train.targets.col(from);
    }
    return out;
  }
  std::fprintf(stderr, "note: %s; using synthetic decay curves\n", series.error().message.c_str());
  models::Rng rng(99);
  for (int64_t j = 0; j < count; ++j) {
    const double start = rng.uniform(0.6, 1.0);
    const double rate = rng.uniform(1e-4, 2e-3);
    for (int64_t i = 0; i < 200; ++i) {
      const float v = static_cast<float>(start - rate * double(i) - 1e-6 * double(i * i));
      if (i < 100) {
        out.inputs(i, j) = v;
      } else {
        out.targets(i - 100, j) = v;
      }
    }
  }
  return out;
}

void write_floats(const std::string& path, const float* data, int64_t count) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * 4));
}

void print_list(const char* name, const std::vector<double>& v) {
  std::printf("\"%s\": [", name);
  for (size_t i = 0; i < v.size(); ++i)
    std::printf("%s%.9g", i ? ", " : "", v[i]);
  std::printf("]");
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Flags flags(argc, argv);
  const auto model = make_model(flags);
  if (!model) {
    std::fprintf(stderr, "unknown --arch %s\n", flags.text("arch", "").c_str());
    return 2;
  }
  const models::Dataset<float> data = bench_windows(flags, flags.integer("windows", 2048));
  models::Vector<float> params(model->layout().size());
  model->init(params.data(), static_cast<uint64_t>(flags.integer("seed", 1)));

  const std::string dump = flags.text("dump", "");
  if (!dump.empty()) {
    write_floats(dump + "/inputs.f32", data.inputs.data(), data.inputs.size());
    write_floats(dump + "/targets.f32", data.targets.data(), data.targets.size());
    write_floats(dump + "/params.f32", params.data(), params.size());
    std::ofstream manifest(dump + "/layout.txt");
    for (const models::TensorSpec& t : model->layout().tensors()) {
      manifest << t.name << ' ' << t.rows << ' ' << t.cols << ' ' << t.offset << '\n';
    }
  }

  models::TrainConfig config;
  config.epochs = flags.integer("epochs", 3);
  config.batch_size = flags.integer("batch", 64);
  config.shard_size = flags.integer("shard", 16);
  config.learning_rate = flags.real("lr", 1e-3);
  config.min_learning_rate = flags.real("min-lr", 1e-5);
  config.adamw.weight_decay = flags.real("wd", 1e-2);
  config.clip_norm = flags.real("clip", 1.0);
  config.threads = flags.integer("threads", 2);
  config.seed = static_cast<uint64_t>(flags.integer("seed", 1));
  auto summary = models::train(*model, params, data, nullptr, config);
  if (!summary.ok()) {
    std::fprintf(stderr, "error: %s\n", summary.error().message.c_str());
    return 1;
  }
  const double final_loss =
      models::evaluate_loss(*model, params.data(), data, config.loss, config.threads);
  std::printf("{\"arch\": \"%s\", \"parameters\": %lld, \"windows\": %lld, ",
              flags.text("arch", "").c_str(), static_cast<long long>(params.size()),
              static_cast<long long>(data.size()));
  print_list("epoch_seconds", summary->epoch_seconds);
  std::printf(", ");
  print_list("train_losses", summary->train_losses);
  std::printf(", \"final_loss\": %.9g}\n", final_loss);
  return 0;
}
