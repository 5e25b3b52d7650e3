// Trains the DLNet paper's teacher on the severson-soh windows and reports its MAE on the
// evaluation segments (the paper's teacher: about 0.0078).
//
//   train_dlnet_teacher [--epochs 60] [--batch 64] [--lr 1e-3] [--stride 1] [--threads 0]
//                       [--seed 1] [--patience 15] [--data DIR] [--save teacher.ccm]
#include <cstdio>
#include <string>

#include "cyclecast/models/dlnet.h"
#include "cyclecast/models/model_file.h"
#include "flags.h"
#include "soh_data.h"

using namespace cyclecast;

int main(int argc, char** argv) {
  const bench::Flags flags(argc, argv);
  const std::string dir = flags.text("data", bench::data_dir()) + "/severson-soh";
  auto series = bench::read_soh_csv(dir + "/soh.csv");
  auto segments = bench::read_segments(dir + "/segments.json");
  if (!series.ok() || !segments.ok()) {
    std::printf("skipped: %s\n",
                (!series.ok() ? series.error() : segments.error()).message.c_str());
    return 0;
  }
  const bench::WindowSets sets =
      bench::make_windows(*series, *segments, 100, 100, flags.integer("stride", 1), 10);
  std::printf("windows: %lld train, %lld validation; scaling offset %.6f scale %.6f\n",
              static_cast<long long>(sets.train.size()),
              static_cast<long long>(sets.validation.size()), sets.scaling.offset,
              sets.scaling.scale);

  const models::DlnetModel<float> model(models::DlnetConfig::teacher());
  models::Vector<float> params(model.layout().size());
  model.init(params.data(), static_cast<uint64_t>(flags.integer("seed", 1)));
  models::TrainConfig config;
  config.epochs = flags.integer("epochs", 60);
  config.batch_size = flags.integer("batch", 64);
  config.learning_rate = flags.real("lr", 1e-3);
  config.min_learning_rate = flags.real("min-lr", 1e-5);
  config.adamw.weight_decay = flags.real("wd", 1e-4);
  config.patience = flags.integer("patience", 15);
  config.threads = flags.integer("threads", 0);
  config.seed = static_cast<uint64_t>(flags.integer("seed", 1));
  std::printf("parameters: %lld\n", static_cast<long long>(params.size()));
  auto summary = models::train(
      model, params, sets.train, &sets.validation, config, [&](const models::EpochProgress& p) {
        std::printf(
            "epoch %3lld/%lld  train %.6f  val %.6f  lr %.2e  %.1f s  eta %.0f s  "
            "segment MAE %.5f\n",
            static_cast<long long>(p.epoch), static_cast<long long>(p.epochs), p.train_loss,
            p.validation_loss, p.learning_rate, p.epoch_seconds, p.eta_seconds,
            bench::segment_mae(model, params.data(), *series, *segments, sets.scaling));
        std::fflush(stdout);
      });
  if (!summary.ok()) {
    std::printf("error: %s\n", summary.error().message.c_str());
    return 1;
  }
  std::printf("best epoch %lld (validation %.6f)\n", static_cast<long long>(summary->best_epoch),
              summary->best_validation_loss);
  const double mae = bench::segment_mae(model, params.data(), *series, *segments, sets.scaling);
  std::printf("segment MAE (%zu segments, SOH units): %.5f\n", segments->size(), mae);
  const std::string save = flags.text("save", "");
  if (!save.empty()) {
    models::SavedModel saved;
    saved.config = model.config();
    saved.normalization = {sets.scaling.offset, sets.scaling.scale};
    saved.metadata = {{"data_set", "severson-soh"},
                      {"epochs_run", std::to_string(summary->epochs_run)},
                      {"best_epoch", std::to_string(summary->best_epoch)},
                      {"validation_loss", std::to_string(summary->best_validation_loss)},
                      {"segment_mae", std::to_string(mae)}};
    saved.params = params;
    if (auto ok = models::save_model(save, saved); !ok) {
      std::printf("error: %s\n", ok.error().message.c_str());
      return 1;
    }
    std::printf("saved %s\n", save.c_str());
  }
  return 0;
}
