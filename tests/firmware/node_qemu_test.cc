// The node program with an exported model on the Cortex-M4 under QEMU: bit-identical answers and
// int32 outputs to the host over more than 1,000 windows of generated cells, and the footprint
// and instruction figures of docs/firmware.md measured on that build (flash and RAM from the linker
// map, stack by painting, instructions by QEMU's instruction-counted clock). The shape is the
// default deployment's: W 100, H 100, three features, 8 bypass features, width 16.
#include <gtest/gtest.h>

#include <Eigen/QR>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "cyclecast/models/cost.h"
#include "cyclecast/models/model_file.h"
#include "cyclecast/pipeline/soh_data.h"
#include "node_fixture.h"
#include "node_qemu.h"
#include "temp_dir.h"

#if defined(CYCLECAST_QEMU_ARM)

namespace cyclecast {
namespace {

std::string crc_frame(const std::string& body) {
  char crc[9];
  std::snprintf(crc, sizeof crc, "%08x",
                models::crc32({reinterpret_cast<const uint8_t*>(body.data()), body.size()}));
  return body + "*" + crc + "\n";
}

std::string value(double v, const char* format) {
  if (!std::isfinite(v)) return "-";
  char text[32];
  std::snprintf(text, sizeof text, format, v);
  return text;
}

// Every cycle of every cell as CY frames, cell after cell, in protocol v1 for even and v2 for odd
// cells; returns the last frame through `last`.
std::string cycle_frames(const std::vector<pipeline::CellSeries>& cells, std::string& last) {
  std::string out;
  uint32_t seq = 0;
  for (size_t c = 0; c < cells.size(); ++c) {
    const auto& cell = cells[c];
    for (const auto& row : cell.rows) {
      last = crc_frame(std::string(c % 2 == 0 ? "cc1" : "cc2") + " CY " + std::to_string(++seq) +
                       " " + cell.cell_id + " " + std::to_string(row.cycle) + " " +
                       value(row.soh, "%.6f") + " " + value(row.ir_ohm, "%.7g") + " " +
                       value(row.temperature_c, "%.7g") + " " + value(row.charge_time_min, "%.7g"));
      out += last;
    }
  }
  return out + crc_frame("cc1 ST " + std::to_string(++seq));
}

TEST(NodeQemu, CortexM4AnswersBitIdenticallyToTheHostAndMeetsTheFootprintTargets) {
  const auto cells = testing::generated_cells(10, 220, 21);
  const auto spec = *pipeline::fit_feature_spec(cells, {});
  ASSERT_EQ(spec.input_len, 100);
  ASSERT_EQ(spec.features.size(), 3u);
  const auto windows = pipeline::make_windows(cells, spec, 10);
  auto student = testing::random_student(spec, windows, 16, 9);
  // An interval table too (its last step at the 2^30 limit), so that the bounds'
  // bits are compared as well (the L lines).
  student.interval_half_width.resize(static_cast<size_t>(student.horizon));
  for (size_t j = 0; j < student.interval_half_width.size(); ++j)
    student.interval_half_width[j] = static_cast<int32_t>(j * 30000);
  student.interval_half_width.back() = 1 << 30;
  auto exported = pipeline::export_model(student, spec, "qemu-w16");
  ASSERT_TRUE(exported) << exported.error().message;

  const testing::TempDir dir;
  ASSERT_TRUE(pipeline::write_exported_model(*exported, dir.path()));
  std::string last;
  const std::string frames = cycle_frames(cells, last);
  std::ofstream(dir.path() / "vectors.txt", std::ios::binary) << frames;
  std::ofstream(dir.path() / "probe.txt", std::ios::binary) << last;

  const auto target = testing::run_on_target(dir.path(), CYCLECAST_QEMU_ARM);
  ASSERT_TRUE(target) << target.error().message;
  auto loaded = edge::load_node_model(exported->blob);
  ASSERT_TRUE(loaded);
  const std::string host = testing::host_transcript(**loaded, frames);

  const int64_t forecasts = target->figures.at("forecasts");
  EXPECT_GE(forecasts, 1000);
  EXPECT_EQ(forecasts, 10 * (220 - 100 + 1));
  // Every answer, v1 and v2, every forecast's H int32 outputs (the Y lines) and its H lower and
  // upper bounds (the L lines) agree, bit for bit.
  EXPECT_EQ(testing::without_durations(target->transcript), testing::without_durations(host));
  size_t bound_lines = 0, v2_forecasts = 0;
  for (size_t at = host.find("\nL "); at != std::string::npos; at = host.find("\nL ", at + 1))
    ++bound_lines;
  for (size_t at = host.find("cc2 FC "); at != std::string::npos; at = host.find("cc2 FC ", at + 1))
    ++v2_forecasts;
  EXPECT_EQ(bound_lines, static_cast<size_t>(forecasts));
  EXPECT_EQ(v2_forecasts, static_cast<size_t>(forecasts / 2));
  EXPECT_EQ(target->figures.at("frame_forecasts"), target->figures.at("frame_runs"));

  const int64_t runtime_flash = target->map.flash.at("runtime") + target->map.flash.at("model");
  const int64_t runtime_static_ram =
      (target->map.ram.count("runtime") ? target->map.ram.at("runtime") : 0) +
      (target->map.ram.count("model") ? target->map.ram.at("model") : 0);
  // The buffers the runtime is handed: int16 input, int32 output, scratch (in the node's state).
  const int64_t buffers =
      2 * student.input_size + 4 * student.horizon + static_cast<int64_t>(student.scratch_bytes());
  const int64_t stack = target->figures.at("stack_forecast_bytes");
  const int64_t ram = runtime_static_ram + buffers + stack;
  for (const auto& [group, bytes] : target->map.flash)
    ::testing::Test::RecordProperty("flash_" + group, static_cast<int>(bytes));
  for (const auto& [group, bytes] : target->map.ram)
    ::testing::Test::RecordProperty("ram_" + group, static_cast<int>(bytes));
  ::testing::Test::RecordProperty("runtime_model_flash", static_cast<int>(runtime_flash));
  ::testing::Test::RecordProperty("runtime_model_ram_with_stack", static_cast<int>(ram));
  ::testing::Test::RecordProperty("stack_forecast", static_cast<int>(stack));
  ::testing::Test::RecordProperty("stack_frame",
                                  static_cast<int>(target->figures.at("stack_frame_bytes")));
  ::testing::Test::RecordProperty("instructions_forecast",
                                  static_cast<int>(target->instructions_per_forecast));
  ::testing::Test::RecordProperty("instructions_frame",
                                  static_cast<int>(target->instructions_per_frame));
  std::printf(
      "generated student I %d F %d width %d steps %d H %d: %lld windows bit-identical; "
      "flash runtime+model %lld B, RAM buffers + stack %lld B (forecast stack %lld); "
      "%.0f instructions per forecast, %.0f per frame, node frame stack %lld B\n",
      student.input_size, student.features, student.width, student.euler_steps, student.horizon,
      static_cast<long long>(forecasts), static_cast<long long>(runtime_flash),
      static_cast<long long>(ram), static_cast<long long>(stack), target->instructions_per_forecast,
      target->instructions_per_frame,
      static_cast<long long>(target->figures.at("stack_frame_bytes")));
  EXPECT_LE(runtime_flash, 16 * 1024);
  EXPECT_LE(ram, 4 * 1024);
  EXPECT_LE(target->instructions_per_forecast, 64000);
  EXPECT_GT(target->instructions_per_forecast, 1000) << "the clock did not count";
}

// The same on real windows (severson-soh: CYCLECAST_EDGE_DATA, default
// /work/shared/data/severson-soh; skipped without it): with the student a training run chose when
// CYCLECAST_EDGE_RUN names a `cyclecast train` output directory (the Edge benchmark,
// docs/benchmarks.md), else with a width-16 student of random weights on the data's own
// normalization, so the parity on real windows is part of the suite wherever the data is.
TEST(NodeQemu, RealWindowsAreBitIdenticalAndWithinTheTargets) {
  const char* run = std::getenv("CYCLECAST_EDGE_RUN");
  const char* data_env = std::getenv("CYCLECAST_EDGE_DATA");
  const std::string data = data_env != nullptr ? data_env : "/work/shared/data/severson-soh";
  if (!std::filesystem::exists(data)) {
    GTEST_SKIP() << data << " is absent (set CYCLECAST_EDGE_DATA to the severson-soh folder)";
  }
  auto set = pipeline::read_series(data);
  ASSERT_TRUE(set) << set.error().message;
  Result<pipeline::ExportedModel> exported = make_error(ErrorCode::kNotFound, "no model");
  if (run != nullptr) {
    exported = pipeline::export_run(run, "bench");
  } else {
    const auto spec = *pipeline::fit_feature_spec(set->cells, {});
    const auto windows = pipeline::make_windows(set->cells, spec, 50);
    exported = pipeline::export_model(testing::random_student(spec, windows, 16, 3), spec, "real");
  }
  ASSERT_TRUE(exported) << exported.error().message;
  auto loaded = edge::load_node_model(exported->blob);
  ASSERT_TRUE(loaded);
  const auto& n = loaded.value()->model().normalization;
  std::vector<pipeline::CellSeries> cells;
  int64_t expected = 0;
  for (const auto& cell : set->cells) {
    if (expected >= 1000) break;
    if (static_cast<int64_t>(cell.rows.size()) < n.input_len) continue;
    cells.push_back(cell);
    expected += static_cast<int64_t>(cell.rows.size()) - n.input_len + 1;
  }
  const testing::TempDir dir;
  ASSERT_TRUE(pipeline::write_exported_model(*exported, dir.path()));
  std::string last;
  const std::string frames = cycle_frames(cells, last);
  std::ofstream(dir.path() / "vectors.txt", std::ios::binary) << frames;
  std::ofstream(dir.path() / "probe.txt", std::ios::binary) << last;
  const auto target = testing::run_on_target(dir.path(), CYCLECAST_QEMU_ARM);
  ASSERT_TRUE(target) << target.error().message;
  EXPECT_EQ(target->figures.at("forecasts"), expected);
  EXPECT_EQ(testing::without_durations(target->transcript),
            testing::without_durations(testing::host_transcript(**loaded, frames)));
  const auto& s = loaded.value()->model().student;
  const int64_t flash = target->map.flash.at("runtime") + target->map.flash.at("model");
  const int64_t stack = target->figures.at("stack_forecast_bytes");
  const int64_t ram =
      2 * s.input_size + 4 * s.horizon + static_cast<int64_t>(s.scratch_bytes()) + stack;
  std::printf(
      "%s student I %d F %d width %d steps %d H %d: %lld windows bit-identical; flash "
      "runtime %lld + model %lld = %lld B (node program %lld, libc %lld); RAM buffers + "
      "stack %lld B (forecast stack %lld, static RAM of runtime+model %lld); node state "
      "%lld B, node frame stack %lld B; %.0f instructions per forecast, %.0f per frame\n",
      run != nullptr ? "trained" : "real-data random-weight", s.input_size, s.features, s.width,
      s.euler_steps, s.horizon, static_cast<long long>(expected),
      static_cast<long long>(target->map.flash.at("runtime")),
      static_cast<long long>(target->map.flash.at("model")), static_cast<long long>(flash),
      static_cast<long long>(target->map.flash.at("node")),
      static_cast<long long>(target->map.flash.count("libc") ? target->map.flash.at("libc") : 0),
      static_cast<long long>(ram), static_cast<long long>(stack),
      static_cast<long long>(
          (target->map.ram.count("runtime") ? target->map.ram.at("runtime") : 0) +
          (target->map.ram.count("model") ? target->map.ram.at("model") : 0)),
      static_cast<long long>(target->map.ram.at("harness")),
      static_cast<long long>(target->figures.at("stack_frame_bytes")),
      target->instructions_per_forecast, target->instructions_per_frame);
  // CYCLECAST_EDGE_FOOTPRINT: these figures as the JSON `cyclecast bundle build --footprint`
  // reads (docs/bundles.md), so a bundle carries what was measured, not a hand copy. The stack
  // is the node's high-water mark over a whole frame, the forecast included.
  const char* footprint = std::getenv("CYCLECAST_EDGE_FOOTPRINT");
  if (footprint != nullptr && *footprint != '\0') {
    std::ofstream out(footprint);
    out << "{\"flash_bytes\": " << flash << ", \"ram_bytes\": " << ram
        << ", \"stack_bytes\": " << target->figures.at("stack_frame_bytes")
        << ", \"instructions\": " << std::llround(target->instructions_per_forecast)
        << ", \"method\": \"firmware/target/edge_bench.sh: linker map, stack painting, QEMU "
           "-icount (mps2-an386)\"}\n";
    ASSERT_TRUE(out.good()) << "cannot write " << footprint;
  }
  EXPECT_LE(flash, 16 * 1024);
  EXPECT_LE(ram, 4 * 1024);
  EXPECT_LE(target->instructions_per_forecast, 64000);
}

// Least squares with every coefficient >= 0, as a cost file requires (read_cost_file): the most
// negative coefficient of an unconstrained fit is fixed at 0 and the rest refitted, until none is
// negative. With the DSP kernels the per-tanh and per-Euler-unit work is no longer separable from
// the rows' (the plain fit gave them opposite signs).
Eigen::VectorXd non_negative_fit(const Eigen::MatrixXd& design, const Eigen::VectorXd& measured) {
  std::vector<int64_t> active;
  for (int64_t c = 0; c < design.cols(); ++c)
    active.push_back(c);
  while (true) {
    Eigen::MatrixXd sub(design.rows(), static_cast<int64_t>(active.size()));
    for (size_t k = 0; k < active.size(); ++k)
      sub.col(static_cast<int64_t>(k)) = design.col(active[k]);
    const Eigen::VectorXd partial = sub.colPivHouseholderQr().solve(measured);
    Eigen::VectorXd fit = Eigen::VectorXd::Zero(design.cols());
    size_t worst = 0;
    for (size_t k = 0; k < active.size(); ++k) {
      fit(active[k]) = partial(static_cast<int64_t>(k));
      if (partial(static_cast<int64_t>(k)) < partial(static_cast<int64_t>(worst))) worst = k;
    }
    if (partial(static_cast<int64_t>(worst)) >= 0.0) return fit;
    active.erase(active.begin() + static_cast<std::ptrdiff_t>(worst));
  }
}

// Calibrates models/cost.h against the target: instructions per cc_student_forecast measured
// under QEMU for students of eight shapes, then the per-MAC, per-row, per-tanh, per-Euler-unit
// and fixed constants fitted by non-negative least squares; runtime code bytes from the map, stack
// from painting. The fitted model must predict every measured shape within 3 %. With
// CYCLECAST_COST_OUT set, the constants are written there as a cost file (read_cost_file) for
// TrainingOptions::cost. Instructions stand for cycles (CPI 1), as in the budget.
TEST(NodeQemu, CostModelFittedToMeasuredInstructions) {
  struct Shape {
    int w, features, bypass, width, steps, horizon;
  };
  const Shape shapes[] = {{100, 0, 8, 16, 1, 100}, {100, 3, 8, 16, 1, 100}, {100, 0, 8, 64, 1, 100},
                          {100, 0, 8, 16, 3, 100}, {20, 0, 4, 8, 1, 20},    {50, 1, 16, 32, 2, 50},
                          {100, 0, 8, 4, 1, 100},  {30, 0, 8, 24, 4, 10}};
  const size_t n = std::size(shapes);
  Eigen::MatrixXd design(n, 6);
  Eigen::VectorXd measured(n);
  std::vector<models::StudentShape> student_shapes;
  int64_t code_bytes = 0, stack_bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    const Shape& s = shapes[i];
    const auto cells = testing::generated_cells(2, s.w + s.horizon + 20, 40 + i);
    pipeline::FeatureOptions options;
    options.input_len = s.w;
    options.horizon = s.horizon;
    options.use_optional_features = s.features > 0;
    auto spec = *pipeline::fit_feature_spec(cells, options);
    spec.features.resize(static_cast<size_t>(s.features));
    const auto windows = pipeline::make_windows(cells, spec, 7);
    const auto student = testing::random_student(spec, windows, s.width, 7 + i, s.bypass, s.steps);
    const testing::TempDir dir;
    ASSERT_TRUE(
        pipeline::write_exported_model(*pipeline::export_model(student, spec, "cost"), dir.path()));
    std::vector<pipeline::CellSeries> one = {cells[0]};
    one[0].rows.resize(static_cast<size_t>(s.w));
    std::string last;
    const std::string frames = cycle_frames(one, last);
    std::ofstream(dir.path() / "vectors.txt", std::ios::binary) << frames;
    std::ofstream(dir.path() / "probe.txt", std::ios::binary) << last;
    const auto target = testing::run_on_target(dir.path(), CYCLECAST_QEMU_ARM);
    ASSERT_TRUE(target) << target.error().message;
    ASSERT_EQ(target->figures.at("forecasts"), 1);
    const models::StudentShape shape{student.input_size, s.bypass, s.width, s.steps, s.horizon};
    student_shapes.push_back(shape);
    const auto cost = models::student_cost(shape);
    const double rows = s.bypass + s.width + s.steps * s.width + 2.0 * s.horizon;
    // The encoder's MACs apart: its paired-weights kernel costs less per MAC than the others.
    const double encoder_macs = static_cast<double>(shape.input_size * shape.features);
    design.row(static_cast<int64_t>(i)) << static_cast<double>(cost.macs) - encoder_macs,
        encoder_macs, rows, static_cast<double>(s.width) * (1 + s.steps),
        static_cast<double>(s.steps * s.width), 1.0;
    measured(static_cast<int64_t>(i)) = target->instructions_per_forecast;
    // The runtime's code: everything of firmware/src in the image but the tanh table.
    code_bytes = std::max(
        code_bytes, target->map.flash.at("runtime") - static_cast<int64_t>(CC_TANH_TABLE_SIZE * 2));
    stack_bytes = std::max(stack_bytes, target->figures.at("stack_forecast_bytes"));
  }
  const Eigen::VectorXd fit = non_negative_fit(design, measured);
  models::CostConstants c;
  c.cycles_per_mac = fit(0);
  c.cycles_per_encoder_mac = fit(1);
  c.cycles_per_row = std::llround(fit(2));
  c.cycles_per_tanh = std::llround(fit(3));
  c.cycles_per_euler_unit = std::llround(fit(4));
  c.cycles_fixed = std::llround(fit(5));
  c.runtime_code_bytes = code_bytes;
  c.stack_bytes = stack_bytes;
  for (size_t i = 0; i < n; ++i) {
    const double predicted = static_cast<double>(models::student_cost(student_shapes[i], c).cycles);
    const double estimated = static_cast<double>(models::student_cost(student_shapes[i]).cycles);
    std::printf(
        "shape I %lld F %lld W %lld S %lld H %lld: measured %.0f, fitted %.0f, "
        "estimate before %.0f\n",
        static_cast<long long>(student_shapes[i].input_size),
        static_cast<long long>(student_shapes[i].features),
        static_cast<long long>(student_shapes[i].width),
        static_cast<long long>(student_shapes[i].euler_steps),
        static_cast<long long>(student_shapes[i].horizon), measured(static_cast<int64_t>(i)),
        predicted, estimated);
    EXPECT_NEAR(predicted, measured(static_cast<int64_t>(i)),
                0.03 * measured(static_cast<int64_t>(i)));
  }
  const std::string json = pipeline::cost_file_json(
      c,
      "QEMU mps2-an386 -icount instructions of cc_student_forecast over 8 shapes "
      "(tests/firmware/node_qemu_test.cc), arm-none-eabi-gcc -Os; cycles = instructions");
  std::printf("%s", json.c_str());
  if (const char* out = std::getenv("CYCLECAST_COST_OUT"); out != nullptr) {
    std::ofstream(out) << json;
    auto read = pipeline::read_cost_file(out);
    ASSERT_TRUE(read) << read.error().message;
    EXPECT_EQ(read->cycles_fixed, c.cycles_fixed);
  }
}

}  // namespace
}  // namespace cyclecast

#endif
