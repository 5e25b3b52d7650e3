// The node program (firmware/node/cc_node.c) on the host: framing and every refusal of
// docs/node-protocol.md, cell histories, and its forecasts against the host pipeline's encoding
// and int8 runtime on generated cells.
#include "cc_node.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cyclecast/edge/virtual_node.h"
#include "cyclecast/edge/window_forecaster.h"
#include "cyclecast/models/model_file.h"
#include "node_fixture.h"

namespace cyclecast {
namespace {

using pipeline::FeatureSpec;

std::string crc_hex(const std::string& body) {
  char text[9];
  std::snprintf(text, sizeof text, "%08x",
                models::crc32({reinterpret_cast<const uint8_t*>(body.data()), body.size()}));
  return text;
}

std::string frame(const std::string& body) {
  return body + "*" + crc_hex(body) + "\n";
}

struct Model {
  FeatureSpec spec;
  std::vector<pipeline::CellSeries> cells;
  models::QuantizedStudent student;
  std::unique_ptr<edge::LoadedNodeModel> loaded;
};

// W 20, H 24, three features, width 8: small enough for quick tests, every code path present.
const Model& model() {
  static const Model* m = [] {
    auto* out = new Model;
    out->cells = testing::generated_cells(6, 160, 3);
    pipeline::FeatureOptions options;
    options.input_len = 20;
    options.horizon = 24;
    out->spec = *pipeline::fit_feature_spec(out->cells, options);
    const auto windows = pipeline::make_windows(out->cells, out->spec, 5);
    out->student = testing::random_student(out->spec, windows, 8, 5);
    auto exported = pipeline::export_model(out->student, out->spec, "test-v1");
    auto loaded = edge::load_node_model(exported->blob);
    out->loaded = std::move(loaded.value());
    return out;
  }();
  return *m;
}

// A node with a fake clock (+7 us per reading) that collects its answer lines.
class Node {
 public:
  explicit Node(const cc_node_model& m = model().loaded->view()) : node_(new cc_node) {
    status_ = cc_node_init(node_.get(), &m, cc_node_io{write, micros, this});
  }
  cc_node_status status() const { return status_; }
  // Feeds bytes and returns the answer lines since the last call (without '\n').
  std::vector<std::string> feed(const std::string& bytes) {
    lines_.clear();
    cc_node_feed(node_.get(), bytes.data(), bytes.size());
    return lines_;
  }
  // Sends one frame and returns its single answer's body (checking its CRC).
  std::string ask(const std::string& body) {
    auto lines = feed(frame(body));
    if (lines.size() != 1) return "<" + std::to_string(lines.size()) + " answers>";
    return body_of(lines[0]);
  }
  static std::string body_of(const std::string& line) {
    const size_t star = line.rfind('*');
    if (star == std::string::npos || line.size() != star + 9) return "<no crc: " + line + ">";
    const std::string body = line.substr(0, star);
    if (line.substr(star + 1) != crc_hex(body)) return "<bad crc: " + line + ">";
    return body;
  }
  cc_node& raw() { return *node_; }
  const std::vector<std::string>& boot() const { return boot_; }

 private:
  static void write(void* context, const char* bytes, size_t length) {
    auto* self = static_cast<Node*>(context);
    std::string line(bytes, length);
    EXPECT_EQ(line.back(), '\n');
    line.pop_back();
    (self->status_set_ ? self->lines_ : self->boot_).push_back(line);
  }
  static uint32_t micros(void* context) { return static_cast<Node*>(context)->clock_ += 7; }

  std::unique_ptr<cc_node> node_;
  cc_node_status status_ = CC_NODE_ERROR_ARGUMENT;
  bool status_set_ = false;
  uint32_t clock_ = 0;
  std::vector<std::string> boot_;
  std::vector<std::string> lines_;

 public:
  Node& ready() {
    status_set_ = true;
    return *this;
  }
};

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6f", v);
  return text;
}

std::string feature_text(double v) {
  if (!std::isfinite(v)) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.7g", v);
  return text;
}

std::string cycle_body(uint32_t seq, const std::string& cell, const pipeline::SeriesRow& row) {
  return "cc1 CY " + std::to_string(seq) + " " + cell + " " + std::to_string(row.cycle) + " " +
         number(row.soh) + " " + feature_text(row.ir_ohm) + " " + feature_text(row.temperature_c) +
         " " + feature_text(row.charge_time_min);
}

std::vector<std::string> fields(const std::string& body) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t space = body.find(' ', start);
    out.push_back(body.substr(start, space - start));
    if (space == std::string::npos) return out;
    start = space + 1;
  }
}

TEST(CcNode, CrcMatchesZlibCheckValue) {
  EXPECT_EQ(cc_node_crc32(0, "123456789", 9), 0xCBF43926u);
  EXPECT_EQ(cc_node_crc32(cc_node_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
}

TEST(CcNode, LogfIsWithinOneMillionthOverTheAmplitudeRange) {
  double worst = 0.0;
  for (float x = 1e-4f; x < 1e3f; x *= 1.0137f) {
    worst = std::max(
        worst, std::abs(static_cast<double>(cc_node_logf(x)) - std::log(static_cast<double>(x))));
  }
  ::testing::Test::RecordProperty("worst_abs_error_1e9", static_cast<int>(worst * 1e9));
  EXPECT_LT(worst, 1e-6);
}

TEST(CcNode, AnnouncesItselfAtStartAndAnswersIdentify) {
  Node n;
  ASSERT_EQ(n.status(), CC_NODE_OK);
  n.ready();
  const std::string& sha = model().loaded->model().sha256_hex;
  ASSERT_EQ(n.boot().size(), 1u);
  EXPECT_EQ(Node::body_of(n.boot()[0]), "cc1 HI 0 1 test-v1 " + sha);
  EXPECT_EQ(n.ask("cc1 ID 42"),
            "cc1 ID 42 1 test-v1 " + sha + " 20 24 ir_ohm,temperature_c,charge_time_min 8");
}

TEST(CcNode, DiscardsAndCountsGarbageOversizedAndCorruptLinesWithoutAnswering) {
  Node n;
  n.ready();
  EXPECT_TRUE(n.feed("hello\n").empty());                                 // no checksum
  EXPECT_TRUE(n.feed("cc1 ID 1*0000000g\n").empty());                     // not hex
  EXPECT_TRUE(n.feed("cc1 ID 1*" + crc_hex("cc1 ID 2") + "\n").empty());  // wrong CRC
  std::string upper = frame("cc1 ID 3");
  for (char& c : upper)
    c = static_cast<char>(std::toupper(c));
  EXPECT_TRUE(n.feed(upper).empty());  // checksum must be lowercase
  EXPECT_TRUE(n.feed(std::string("cc1 \x01 ID") + "*00000000\n").empty());  // control byte
  EXPECT_TRUE(n.feed(std::string(300, 'x') + "\n").empty());                // oversized
  EXPECT_TRUE(n.feed(std::string(255, 'y')).empty());  // exactly the limit, no end yet
  EXPECT_TRUE(n.feed("\n").empty());                   // -> bad (no checksum)
  EXPECT_TRUE(n.feed("\n\r\n").empty());               // empty lines: ignored
  std::string binary(1000, '\0');
  std::mt19937 rng(1);
  for (char& c : binary)
    c = static_cast<char>(rng());
  n.feed(binary + "\n");
  EXPECT_EQ(n.ask("cc1 ST 9").substr(0, 22), "cc1 ST 9 rx=1 crc=1 ba");
  const auto f = fields(n.ask("cc1 ST 10"));
  EXPECT_EQ(f[4], "crc=1");
  EXPECT_EQ(f[7], "fc=0");
  // After all that the node still answers, and a frame split into single bytes works.
  std::vector<std::string> answers;
  for (const char c : frame("cc1 ID 77")) {
    const auto lines = n.feed(std::string(1, c));
    answers.insert(answers.end(), lines.begin(), lines.end());
  }
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(Node::body_of(answers[0]).substr(0, 13), "cc1 ID 77 1 t");
  // CRLF line ends are accepted.
  std::string crlf = frame("cc1 ID 78");
  crlf.insert(crlf.size() - 1, "\r");
  EXPECT_EQ(n.feed(crlf).size(), 1u);
}

TEST(CcNode, CountsEachKindOfDiscardedLine) {
  Node n;
  n.ready();
  n.feed("no checksum\n");
  n.feed("cc1 ID 1*" + crc_hex("cc1 ID 2") + "\n");
  n.feed(std::string(256, 'x') + "\n");
  n.feed(std::string(1000, 'x') + "\n");
  EXPECT_EQ(n.ask("cc1 ST 1"), "cc1 ST 1 rx=1 crc=1 bad=1 long=2 fc=0 err=0 evict=0 cells=0");
}

TEST(CcNode, AnswersFramesWithBadBodiesWithTheirErrorCode) {
  Node n;
  n.ready();
  EXPECT_EQ(n.ask("cc3 ID 5"), "cc1 ER 5 version");
  EXPECT_EQ(n.ask("hello"), "cc1 ER 0 version");
  EXPECT_EQ(n.ask("cc1 FC 6"), "cc1 ER 6 type");
  EXPECT_EQ(n.ask("cc1 ID"), "cc1 ER 0 field");
  EXPECT_EQ(n.ask("cc1 ID x"), "cc1 ER 0 field");
  EXPECT_EQ(n.ask("cc1 ID 4294967296"), "cc1 ER 0 field");
  EXPECT_EQ(n.ask("cc1 ID 7 extra"), "cc1 ER 7 field");
  EXPECT_EQ(n.ask("cc1  ID 8"), "cc1 ER 0 field");  // an empty field breaks the whole body
  EXPECT_EQ(n.ask("cc1 ID 8 "), "cc1 ER 0 field");
  const std::string ok = "cc1 CY 9 b1c0 1 0.98 - - -";
  EXPECT_EQ(fields(n.ask(ok))[1], "OK");
  const std::vector<std::string> bad_cycles = {
      "cc1 CY 9 b1c0 1 0.98 - -",     "cc1 CY 9 b1c0 1 0.98 - - - -",
      "cc1 CY 9 b/c 2 0.98 - - -",    "cc1 CY 9 " + std::string(65, 'c') + " 2 0.98 - - -",
      "cc1 CY 9 b1c0 0 0.98 - - -",   "cc1 CY 9 b1c0 1000001 0.98 - - -",
      "cc1 CY 9 b1c0 2 0 - - -",      "cc1 CY 9 b1c0 2 2.5 - - -",
      "cc1 CY 9 b1c0 2 -0.5 - - -",   "cc1 CY 9 b1c0 2 .",
      "cc1 CY 9 b1c0 2 0.9x - - -",   "cc1 CY 9 b1c0 2 0.9876543210 - - -",
      "cc1 CY 9 b1c0 2 0.98 1e7 - -", "cc1 CY 9 b1c0 2 0.98 - nan -",
      "cc1 CY 9 b1c0 2 0.98 - - 1e",  "cc1 CY 9 b1c0 2 1e-99 - - -"};
  for (const std::string& bad : bad_cycles)
    EXPECT_EQ(n.ask(bad), "cc1 ER 9 field") << bad;
  // Accepted number forms.
  EXPECT_EQ(fields(n.ask("cc1 CY 10 b1c0 2 9.8e-1 +0.0165 -3.5E+1 10"))[1], "OK");
  EXPECT_EQ(fields(n.ask("cc1 CY 11 b1c0 3 1 - - 0.000000001"))[1], "OK");
  EXPECT_EQ(n.ask("cc1 CY 12 b1c0 1 0.98 - - -"), "cc1 ER 12 order");
  const size_t errors = 9 + bad_cycles.size() + 1;
  EXPECT_EQ(fields(n.ask("cc1 ST 13"))[8], "err=" + std::to_string(errors));
}

// The values as the node reads them from the frames (6 decimals of SOH, 7 digits of features),
// which is what the reference must encode.
pipeline::CellSeries as_sent(const pipeline::CellSeries& cell) {
  pipeline::CellSeries out = cell;
  const auto parse = [](const std::string& text) {
    return text == "-" ? std::nan("") : std::stod(text);
  };
  for (auto& row : out.rows) {
    row.soh = std::stod(number(row.soh));
    row.ir_ohm = parse(feature_text(row.ir_ohm));
    row.temperature_c = parse(feature_text(row.temperature_c));
    row.charge_time_min = parse(feature_text(row.charge_time_min));
  }
  return out;
}

// The reference: encode_input and the int16 quantization of run_quantized, then the runtime.
struct Reference {
  std::vector<int16_t> input;
  std::vector<int32_t> output;
  double last = 0, amp = 0;
};

Reference reference(const Model& m, const pipeline::CellSeries& cell, size_t end) {
  const int64_t w = m.spec.input_len;
  const std::span<const pipeline::SeriesRow> rows(cell.rows.data() + end - w,
                                                  static_cast<size_t>(w));
  const models::Vector<float> x = pipeline::encode_input(rows, m.spec);
  Reference r;
  const double s_x = m.student.input_scale();
  for (int64_t i = 0; i < m.spec.encoded_size(); ++i) {
    const double v = std::round(static_cast<double>(x(i)) / s_x);
    r.input.push_back(static_cast<int16_t>(std::clamp(v, -32767.0, 32767.0)));
  }
  r.output.resize(static_cast<size_t>(m.spec.horizon));
  const cc_student_model sm = m.student.model();
  std::vector<int16_t> scratch(m.student.scratch_bytes() / 2);
  EXPECT_EQ(
      cc_student_forecast(&sm, r.input.data(), r.output.data(), scratch.data(), scratch.size() * 2),
      CC_OK);
  r.last = rows.back().soh;
  r.amp = static_cast<double>(x(m.spec.gain_index())) / m.spec.delta_scale;
  return r;
}

TEST(CcNode, ForecastsAsTheHostPipelineWithinOneInputStepOverEveryWindow) {
  const Model& m = model();
  Node n;
  n.ready();
  const auto w = static_cast<size_t>(m.spec.input_len);
  const auto h = static_cast<size_t>(m.spec.horizon);
  const double s_y = m.student.output_scale();
  int64_t windows = 0, inputs = 0, differing_inputs = 0, eol_seen = 0;
  double worst_soh = 0.0;
  uint32_t seq = 0;
  for (const auto& original : m.cells) {
    const pipeline::CellSeries cell = as_sent(original);
    for (size_t i = 0; i < cell.rows.size(); ++i) {
      const std::string answer = n.ask(cycle_body(++seq, cell.cell_id, cell.rows[i]));
      const auto f = fields(answer);
      if (i + 1 < w) {
        ASSERT_EQ(answer, "cc1 OK " + std::to_string(seq) + " " + cell.cell_id + " " +
                              std::to_string(cell.rows[i].cycle) + " " + std::to_string(i + 1));
        continue;
      }
      ASSERT_EQ(f.size(), 10u) << answer;
      ASSERT_EQ(f[1], "FC");
      EXPECT_EQ(f[5], "test-v1");
      EXPECT_EQ(f[9], "7") << "duration from the clock hook";
      const Reference r = reference(m, cell, i + 1);
      for (size_t k = 0; k < r.input.size(); ++k) {
        const int diff = std::abs(int(n.raw().input[k]) - int(r.input[k]));
        // The node encodes in float32, the host in double: an input can round the other way.
        ASSERT_LE(diff, 1) << "window " << windows << " input " << k;
        differing_inputs += diff != 0;
        ++inputs;
      }
      // SOH from the node's own outputs, as the FC line reports it, against the reference.
      std::vector<double> soh(h);
      int eol = 0;
      for (size_t j = 0; j < h; ++j) {
        soh[j] = r.last + r.amp * r.output[j] * s_y;
        const double node_soh = r.last + r.amp * cc_node_last_output(&n.raw())[j] * s_y;
        worst_soh = std::max(worst_soh, std::abs(node_soh - soh[j]));
        if (eol == 0 && soh[j] < 0.8) eol = static_cast<int>(cell.rows[i].cycle + j + 1);
      }
      EXPECT_NEAR(std::stod(f[6]), soh[9], 2e-4);
      EXPECT_NEAR(std::stod(f[7]), soh[h - 1], 2e-4);
      if (eol != 0 && f[8] != "-") {
        ++eol_seen;
        EXPECT_NEAR(std::stoi(f[8]), eol, 1);
      }
      ++windows;
    }
  }
  ::testing::Test::RecordProperty("windows", static_cast<int>(windows));
  ::testing::Test::RecordProperty("inputs", static_cast<int>(inputs));
  ::testing::Test::RecordProperty("differing_inputs", static_cast<int>(differing_inputs));
  ::testing::Test::RecordProperty("worst_soh_diff_1e9", static_cast<int>(worst_soh * 1e9));
  EXPECT_GE(windows, 800);
  // A one-step input difference moves the forecast by far less than its error (~1e-3).
  EXPECT_LT(worst_soh, 1e-4);
  EXPECT_LT(differing_inputs, inputs / 10);  // measured 4.7 %
  EXPECT_EQ(fields(n.ask("cc1 ST 1"))[7], "fc=" + std::to_string(windows));
}

// The service's forecaster runs the node's own code on a whole window: it must say what the
// node says after the same cycles, and refuse a window of the wrong length.
TEST(CcNode, WindowForecastIsTheNodesForecastOfTheSameCycles) {
  const Model& m = model();
  auto exported = pipeline::export_model(m.student, m.spec, "test-v1");
  ASSERT_TRUE(exported.ok());
  auto blob_model = edge::load_node_model(exported->blob);
  ASSERT_TRUE(blob_model.ok());
  std::shared_ptr<const edge::LoadedNodeModel> loaded = std::move(blob_model.value());
  auto forecaster = edge::WindowForecaster::create(loaded);
  ASSERT_TRUE(forecaster.ok()) << forecaster.error().message;
  const auto w = static_cast<size_t>(m.spec.input_len);
  const auto h = static_cast<size_t>(m.spec.horizon);
  Node n;
  n.ready();
  const pipeline::CellSeries cell = as_sent(m.cells[1]);
  const auto optional = [](double v) { return std::isnan(v) ? std::nullopt : std::optional(v); };
  std::vector<edge::WindowCycle> window;
  int compared = 0;
  for (size_t i = 0; i < cell.rows.size(); ++i) {
    const auto& row = cell.rows[i];
    window.push_back({row.soh, optional(row.ir_ohm), optional(row.temperature_c),
                      optional(row.charge_time_min)});
    if (window.size() > w) window.erase(window.begin());
    const auto f = fields(n.ask(cycle_body(1, "c", row)));
    if (i + 1 < w) {
      EXPECT_FALSE((*forecaster)->forecast(window).ok());
      continue;
    }
    auto soh = (*forecaster)->forecast(window);
    ASSERT_TRUE(soh.ok()) << soh.error().message;
    ASSERT_EQ(soh->size(), h);
    // The FC line has 6 decimals, rounded in float.
    EXPECT_NEAR(std::stod(f[6]), (*soh)[9], 1.5e-6) << "cycle " << row.cycle;
    EXPECT_NEAR(std::stod(f[7]), (*soh)[h - 1], 1.5e-6) << "cycle " << row.cycle;
    ++compared;
  }
  EXPECT_EQ(compared, static_cast<int>(cell.rows.size() - w + 1));
  EXPECT_EQ((*forecaster)->version(), "test-v1");
}

// A cell handed in by the caller is read only inside the window it states: a count other than W
// or a ring position at or past W is refused before any value is read (the ring is W long, so
// head W would read the value after the window's last).
TEST(CcNode, WindowForecastRefusesACellWhoseCountOrRingPositionIsOutsideTheWindow) {
  const Model& m = model();
  const auto w = static_cast<uint16_t>(m.spec.input_len);
  Node n;
  n.ready();
  auto cell = std::make_unique<cc_node_cell>();
  for (uint16_t t = 0; t < w; ++t)
    cell->values[0][t] = 0.95f - 0.001f * static_cast<float>(t);
  std::vector<float> soh(static_cast<size_t>(m.spec.horizon));
  cell->count = w;
  cell->head = static_cast<uint16_t>(w - 1);
  EXPECT_EQ(cc_node_forecast_cell(&n.raw(), cell.get(), soh.data()), CC_OK);
  cell->head = w;
  EXPECT_EQ(cc_node_forecast_cell(&n.raw(), cell.get(), soh.data()), CC_ERROR_ARGUMENT);
  cell->head = 0xFFFF;
  EXPECT_EQ(cc_node_forecast_cell(&n.raw(), cell.get(), soh.data()), CC_ERROR_ARGUMENT);
  cell->head = 0;
  cell->count = static_cast<uint16_t>(w - 1);
  EXPECT_EQ(cc_node_forecast_cell(&n.raw(), cell.get(), soh.data()), CC_ERROR_ARGUMENT);
  cell->count = static_cast<uint16_t>(w + 1);
  EXPECT_EQ(cc_node_forecast_cell(&n.raw(), cell.get(), soh.data()), CC_ERROR_ARGUMENT);
  EXPECT_EQ(cc_node_forecast_cell(nullptr, cell.get(), soh.data()), CC_ERROR_ARGUMENT);
  EXPECT_EQ(cc_node_forecast_cell(&n.raw(), nullptr, soh.data()), CC_ERROR_ARGUMENT);
}

TEST(CcNode, RetransmittedCycleGivesTheSameAnswerAndOlderCyclesAreRefused) {
  const Model& m = model();
  Node n;
  n.ready();
  const auto& cell = m.cells[0];
  std::string last;
  for (size_t i = 0; i < 25; ++i)
    last = n.ask(cycle_body(1, "c", cell.rows[i]));
  EXPECT_EQ(n.ask(cycle_body(1, "c", cell.rows[24])), last);
  EXPECT_EQ(n.ask(cycle_body(1, "c", cell.rows[10])), "cc1 ER 1 order");
  // A retransmission with new values replaces the stored cycle rather than adding one.
  pipeline::SeriesRow changed = cell.rows[24];
  changed.soh -= 0.01;
  EXPECT_NE(n.ask(cycle_body(1, "c", changed)), last);
  EXPECT_EQ(n.ask(cycle_body(1, "c", cell.rows[24])), last);
}

TEST(CcNode, NinthCellEvictsTheLeastRecentlyUsed) {
  const Model& m = model();
  Node n;
  n.ready();
  for (int c = 0; c < 8; ++c)
    n.ask(cycle_body(1, "cell" + std::to_string(c), m.cells[0].rows[0]));
  n.ask(cycle_body(1, "cell0", m.cells[0].rows[1]));  // cell1 is now the least recently used
  n.ask(cycle_body(1, "cell8", m.cells[0].rows[0]));
  EXPECT_EQ(n.ask("cc1 ST 2"), "cc1 ST 2 rx=11 crc=0 bad=0 long=0 fc=0 err=0 evict=1 cells=8");
  EXPECT_EQ(n.ask(cycle_body(3, "cell0", m.cells[0].rows[2])), "cc1 OK 3 cell0 3 3");
  EXPECT_EQ(n.ask(cycle_body(4, "cell1", m.cells[0].rows[1])), "cc1 OK 4 cell1 2 1")
      << "cell1's history was lost with its slot";
}

TEST(CcNode, RefusesModelsThatDoNotMatchTheirNormalizationOrTheBuild) {
  const cc_node_model good = model().loaded->view();
  cc_node_model bad = good;
  bad.input_len = 19;
  EXPECT_EQ(Node(bad).status(), CC_NODE_ERROR_MODEL);
  bad = good;
  bad.version = "has space";
  EXPECT_EQ(Node(bad).status(), CC_NODE_ERROR_MODEL);
  bad = good;
  bad.sha256_hex = "abc";
  EXPECT_EQ(Node(bad).status(), CC_NODE_ERROR_MODEL);
  bad = good;
  bad.feature_ids[1] = bad.feature_ids[0];
  EXPECT_EQ(Node(bad).status(), CC_NODE_ERROR_MODEL);
  bad = good;
  bad.level_scale = 0.0f;
  EXPECT_EQ(Node(bad).status(), CC_NODE_ERROR_MODEL);
  EXPECT_EQ(cc_node_init(nullptr, &good, cc_node_io{}), CC_NODE_ERROR_ARGUMENT);
}

// ---- protocol v2 and prediction intervals ------------------------------------------------------

// The test model with a one-row interval table: half-widths growing with the step, 0 at the first,
// and huge at the last steps, so that lower bounds cross the end of life within the horizon.
const edge::LoadedNodeModel& interval_model() {
  static const edge::LoadedNodeModel* loaded = [] {
    models::QuantizedStudent student = model().student;
    std::vector<int32_t>& table = student.interval_half_width;
    table.resize(static_cast<size_t>(model().spec.horizon));
    for (size_t j = 0; j < table.size(); ++j)
      table[j] = static_cast<int32_t>(j) * 20000;
    table[table.size() - 3] = 1 << 28;
    table[table.size() - 2] = 1 << 29;
    table[table.size() - 1] = 1 << 30;
    auto exported = pipeline::export_model(student, model().spec, "test-v1");
    return edge::load_node_model(exported->blob).value().release();
  }();
  return *loaded;
}

std::string cycle_body_v2(uint32_t seq, const std::string& cell, const pipeline::SeriesRow& row) {
  return "cc2" + cycle_body(seq, cell, row).substr(3);
}

TEST(CcNodeV2, AnswersEachRequestInItsOwnVersion) {
  Node n(interval_model().view());
  ASSERT_EQ(n.status(), CC_NODE_OK);
  n.ready();
  const std::string& sha = interval_model().model().sha256_hex;
  ASSERT_EQ(n.boot().size(), 1u);
  EXPECT_EQ(Node::body_of(n.boot()[0]), "cc1 HI 0 1 test-v1 " + sha) << "HI is the same in v2";
  const std::string features = " 20 24 ir_ohm,temperature_c,charge_time_min 8";
  EXPECT_EQ(n.ask("cc1 ID 42"), "cc1 ID 42 1 test-v1 " + sha + features);
  EXPECT_EQ(n.ask("cc2 ID 43"), "cc2 ID 43 2 test-v1 " + sha + features + " 1");
  EXPECT_EQ(n.ask("cc3 ID 44"), "cc1 ER 44 version") << "an unknown version is refused in v1";
  EXPECT_EQ(n.ask("cc2 FC 45"), "cc2 ER 45 type");
  EXPECT_EQ(n.ask("cc2 ID 46 x"), "cc2 ER 46 field");
  EXPECT_EQ(n.ask("cc2 CY 47 c 1 3 - - -"), "cc2 ER 47 field");
  EXPECT_EQ(fields(n.ask("cc2 ST 48"))[0], "cc2");
  EXPECT_EQ(fields(n.ask("cc1 ST 49"))[0], "cc1");
  // Without a table a v2 identify says 0 rows.
  Node bare;
  bare.ready();
  EXPECT_EQ(fields(bare.ask("cc2 ID 1")).back(), "0");
}

TEST(CcNodeV2, ForecastCarriesTheIntervalAndEndOfLifeIntervalOfTheNodesOwnBounds) {
  const Model& m = model();
  Node n(interval_model().view());
  n.ready();
  const auto w = static_cast<size_t>(m.spec.input_len);
  const auto h = static_cast<size_t>(m.spec.horizon);
  std::vector<float> lower(h), upper(h), soh(h);
  int forecasts = 0, eol_intervals = 0;
  uint32_t seq = 0;
  for (const auto& original : m.cells) {
    const pipeline::CellSeries cell = as_sent(original);
    for (size_t i = 0; i < cell.rows.size(); ++i) {
      // The same cycle asked in v1 and v2 (a retransmission): the same forecast, v1 without the
      // interval.
      const auto v1 = fields(n.ask(cycle_body(++seq, cell.cell_id, cell.rows[i])));
      const auto v2 = fields(n.ask(cycle_body_v2(++seq, cell.cell_id, cell.rows[i])));
      if (i + 1 < w) {
        ASSERT_EQ(v2[0] + " " + v2[1], "cc2 OK");
        continue;
      }
      ASSERT_EQ(v1.size(), 10u);
      ASSERT_EQ(v2.size(), 16u);
      ASSERT_EQ(v2[1], "FC");
      for (size_t k = 3; k <= 8; ++k)
        EXPECT_EQ(v2[k], v1[k]) << "field " << k;
      EXPECT_EQ(v2[15], "7") << "the duration stays the last field";
      ASSERT_EQ(cc_node_last_interval(&n.raw(), lower.data(), upper.data()), CC_OK);
      const float last = n.raw().forecast_last, amp = n.raw().forecast_amp;
      uint32_t earliest = 0, latest = 0, expected_eol = 0;
      for (size_t j = 0; j < h; ++j) {
        soh[j] = last + amp * (static_cast<float>(cc_node_last_output(&n.raw())[j]) *
                               n.raw().output_scale);
        ASSERT_LE(lower[j], soh[j]);
        ASSERT_GE(upper[j], soh[j]);
        const uint32_t cycle = static_cast<uint32_t>(cell.rows[i].cycle + j + 1);
        if (earliest == 0 && lower[j] < CC_NODE_EOL_SOH) earliest = cycle;
        if (latest == 0 && upper[j] < CC_NODE_EOL_SOH) latest = cycle;
        if (expected_eol == 0 && soh[j] < CC_NODE_EOL_SOH) expected_eol = cycle;
      }
      EXPECT_EQ(lower[0], soh[0]) << "half-width 0 at the first step";
      EXPECT_NEAR(std::stod(v2[9]), lower[9], 1.5e-6);
      EXPECT_NEAR(std::stod(v2[10]), upper[9], 1.5e-6);
      EXPECT_NEAR(std::stod(v2[11]), lower[h - 1], 1.5e-6);
      EXPECT_NEAR(std::stod(v2[12]), upper[h - 1], 1.5e-6);
      EXPECT_EQ(v2[13], earliest ? std::to_string(earliest) : "-");
      EXPECT_EQ(v2[14], latest ? std::to_string(latest) : "-");
      EXPECT_EQ(v2[8], expected_eol ? std::to_string(expected_eol) : "-");
      eol_intervals += earliest != 0;
      ++forecasts;
    }
  }
  EXPECT_GE(forecasts, 800);
  EXPECT_GT(eol_intervals, 0) << "some windows must reach the end of life within the horizon";
}

TEST(CcNodeV2, ForecastWithoutATableHasDashesForTheInterval) {
  const Model& m = model();
  Node n;
  n.ready();
  std::vector<std::string> f;
  for (size_t i = 0; i < static_cast<size_t>(m.spec.input_len); ++i)
    f = fields(n.ask(cycle_body_v2(1, "c", m.cells[0].rows[i])));
  ASSERT_EQ(f.size(), 16u);
  for (size_t k = 9; k <= 14; ++k)
    EXPECT_EQ(f[k], "-") << "field " << k;
  std::vector<float> lower(24), upper(24);
  EXPECT_EQ(cc_node_last_interval(&n.raw(), lower.data(), upper.data()), CC_ERROR_ARGUMENT);
}

// The longest v2 answer (64-character cell, 32-character version, cycle 1,000,000, values
// clamped to -2000) still fits a line, with every field.
TEST(CcNodeV2, LongestForecastAnswerFitsTheLine) {
  const Model& m = model();
  models::QuantizedStudent student = m.student;
  student.interval_half_width.assign(static_cast<size_t>(m.spec.horizon), 1 << 30);
  auto exported = pipeline::export_model(student, m.spec, std::string(32, 'v'));
  ASSERT_TRUE(exported.ok());
  auto loaded = edge::load_node_model(exported->blob);
  ASSERT_TRUE(loaded.ok());
  cc_node_model view = (*loaded)->view();
  view.level_offset = -1000.0f;  // nothing the forecast is meant for: values at the clamp
  Node n(view);
  n.ready();
  const std::string cell(64, 'c');
  std::vector<std::string> lines;
  for (uint32_t c = 1000000 - 19; c <= 1000000; ++c) {
    pipeline::SeriesRow row = m.cells[0].rows[0];
    row.cycle = c;
    row.soh = 0.01 + 1.9 * ((c % 2) != 0);
    lines = n.feed(frame(cycle_body_v2(4294967295u, cell, row)));
  }
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_LE(lines[0].size(), size_t{CC_NODE_MAX_LINE});
  const auto f = fields(Node::body_of(lines[0]));
  ASSERT_EQ(f.size(), 16u) << lines[0];
  EXPECT_EQ(f[1], "FC");
  ::testing::Test::RecordProperty("longest_v2_fc_bytes", static_cast<int>(lines[0].size()));
}

// A table with three rows: the window's last SOH picks the row, at the band limits too.
TEST(CcNodeV2, WindowsLastSohPicksTheIntervalRowOfItsBand) {
  const Model& m = model();
  const auto w = static_cast<uint16_t>(m.spec.input_len);
  const auto h = static_cast<size_t>(m.spec.horizon);
  std::vector<int32_t> table(3 * h);
  for (size_t j = 0; j < h; ++j) {
    table[j] = 1000;             // high
    table[h + j] = 100000;       // medium
    table[2 * h + j] = 4000000;  // low
  }
  const cc_node_interval three{table.data(), 3, {0.95f, 0.90f}};
  cc_node_model view = model().loaded->view();
  view.interval = &three;
  Node n(view);
  ASSERT_EQ(n.status(), CC_NODE_OK);
  n.ready();
  auto cell = std::make_unique<cc_node_cell>();
  cell->count = w;
  cell->head = 0;
  std::vector<float> soh(h), lower(h), upper(h);
  // The row used: the half-width that reproduces the node's lower bound at the last step.
  const auto row_of = [&](float last_soh) {
    for (uint16_t t = 0; t < w; ++t)
      cell->values[0][t] = last_soh + 0.0005f * static_cast<float>(w - 1 - t);
    EXPECT_EQ(cc_node_forecast_cell(&n.raw(), cell.get(), soh.data()), CC_OK);
    EXPECT_EQ(cc_node_last_interval(&n.raw(), lower.data(), upper.data()), CC_OK);
    const int32_t y = cc_node_last_output(&n.raw())[h - 1];
    for (int row = 0; row < 3; ++row) {
      const int32_t half = table[static_cast<size_t>(row) * h];
      const float expected =
          n.raw().forecast_last +
          n.raw().forecast_amp * (static_cast<float>(y - half) * n.raw().output_scale);
      if (expected == lower[h - 1]) return row;
    }
    return -1;
  };
  EXPECT_EQ(row_of(1.01f), 0);
  EXPECT_EQ(row_of(0.95f), 0) << "the high band includes its limit";
  EXPECT_EQ(row_of(std::nextafter(0.95f, 0.0f)), 1);
  EXPECT_EQ(row_of(0.90f), 1);
  EXPECT_EQ(row_of(std::nextafter(0.90f, 0.0f)), 2);
  EXPECT_EQ(row_of(0.5f), 2);
  // Two rows: the low band uses the last one.
  const cc_node_interval two{table.data(), 2, {0.95f, 0.90f}};
  view.interval = &two;
  Node n2(view);
  ASSERT_EQ(n2.status(), CC_NODE_OK);
  for (uint16_t t = 0; t < w; ++t)
    cell->values[0][t] = 0.5f + 0.0005f * static_cast<float>(w - 1 - t);
  ASSERT_EQ(cc_node_forecast_cell(&n2.raw(), cell.get(), soh.data()), CC_OK);
  ASSERT_EQ(cc_node_last_interval(&n2.raw(), lower.data(), upper.data()), CC_OK);
  const int32_t y = cc_node_last_output(&n2.raw())[h - 1];
  EXPECT_EQ(lower[h - 1],
            n2.raw().forecast_last +
                n2.raw().forecast_amp * (static_cast<float>(y - table[h]) * n2.raw().output_scale));
}

TEST(CcNodeV2, RefusesBadIntervalTables) {
  const auto h = static_cast<size_t>(model().spec.horizon);
  std::vector<int32_t> table(4 * h, 5);
  const cc_node_model good = model().loaded->view();
  const auto status_with = [&](cc_node_interval interval) {
    cc_node_model view = good;
    view.interval = &interval;
    return Node(view).status();
  };
  EXPECT_EQ(status_with({table.data(), 1, {0.95f, 0.9f}}), CC_NODE_OK);
  EXPECT_EQ(status_with({table.data(), 3, {2.0f, 1e-3f}}), CC_NODE_OK);
  EXPECT_EQ(status_with({nullptr, 1, {0.95f, 0.9f}}), CC_NODE_ERROR_MODEL);
  EXPECT_EQ(status_with({table.data(), 0, {0.95f, 0.9f}}), CC_NODE_ERROR_MODEL);
  EXPECT_EQ(status_with({table.data(), 4, {0.95f, 0.9f}}), CC_NODE_ERROR_MODEL);
  EXPECT_EQ(status_with({table.data(), 1, {0.9f, 0.95f}}), CC_NODE_ERROR_MODEL);
  EXPECT_EQ(status_with({table.data(), 1, {0.9f, 0.9f}}), CC_NODE_ERROR_MODEL);
  EXPECT_EQ(status_with({table.data(), 1, {0.95f, 0.0f}}), CC_NODE_ERROR_MODEL);
  EXPECT_EQ(status_with({table.data(), 1, {2.5f, 0.9f}}), CC_NODE_ERROR_MODEL);
  EXPECT_EQ(status_with({table.data(), 1, {std::nanf(""), 0.9f}}), CC_NODE_ERROR_MODEL);
  table[2 * h + 3] = -1;  // in the third row
  EXPECT_EQ(status_with({table.data(), 2, {0.95f, 0.9f}}), CC_NODE_OK);
  EXPECT_EQ(status_with({table.data(), 3, {0.95f, 0.9f}}), CC_NODE_ERROR_MODEL);
  table[2 * h + 3] = (1 << 30) + 1;
  EXPECT_EQ(status_with({table.data(), 3, {0.95f, 0.9f}}), CC_NODE_ERROR_MODEL);
  table[2 * h + 3] = 1 << 30;
  EXPECT_EQ(status_with({table.data(), 3, {0.95f, 0.9f}}), CC_NODE_OK);
}

}  // namespace
}  // namespace cyclecast
