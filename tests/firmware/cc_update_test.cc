// The node's model update (firmware/node/cc_update.c, docs/node-protocol.md "Model update"), the
// real C code on the host: SHA-256 against FIPS 180-4's vectors and libsodium, the CCNM blob read
// in C against the host's reader, and the update protocol on a simulated flash that can lose
// power at any write: a transfer cut at every chunk boundary and at every write, a corrupted
// chunk, a wrong hash, a failing or missing self-test, a reset before the switch. After each the
// node must forecast with a valid model and say why the update did not happen.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cc_model_blob.h"
#include "cc_sha256.h"
#include "cc_update.h"
#include "cyclecast/edge/virtual_node.h"
#include "cyclecast/models/model_file.h"
#include "cyclecast/pipeline/export.h"
#include "cyclecast/wire/node_frames.h"
#include "node_fixture.h"

namespace cyclecast::update_test {
namespace {

std::string hex_of(const uint8_t* bytes, size_t n) {
  std::string out;
  char two[3];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(two, sizeof two, "%02x", bytes[i]);
    out += two;
  }
  return out;
}

std::string sha_hex(const std::string& text) {
  uint8_t digest[CC_SHA256_BYTES];
  cc_sha256_bytes(text.data(), text.size(), digest);
  return hex_of(digest, sizeof digest);
}

TEST(CcSha256, MatchesTheFips180Vectors) {
  EXPECT_EQ(sha_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(
      sha_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
              "klmnopqrlmnopqrsmnopqrstnopqrstu"),
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  const std::string million(1000000, 'a');
  EXPECT_EQ(sha_hex(million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(CcSha256, AgreesWithLibsodiumOverEveryPaddingCaseAndSplit) {
  std::mt19937 rng(19);
  for (size_t n = 0; n < 300; ++n) {
    std::vector<uint8_t> bytes(n);
    for (auto& b : bytes)
      b = static_cast<uint8_t>(rng());
    cc_sha256 sha;
    cc_sha256_init(&sha);
    size_t at = 0;
    while (at < n) {  // pieces of 0..70 bytes: across block boundaries and within them
      const size_t piece = std::min<size_t>(rng() % 71, n - at);
      cc_sha256_update(&sha, bytes.data() + at, piece);
      at += piece;
    }
    uint8_t digest[CC_SHA256_BYTES];
    cc_sha256_final(&sha, digest);
    ASSERT_EQ(hex_of(digest, sizeof digest), pipeline::sha256_hex(bytes)) << n << " bytes";
  }
}

// ---- models -------------------------------------------------------------------------------------

struct Blobs {
  std::vector<uint8_t> old_blob, new_blob, wide_blob;
  // "band-4": W 5 with a one-row prediction-interval table (the blob's tag 2 section), and the
  // same model in format 1 with the table inside its CCQ8 student (exported before tag 2).
  std::vector<uint8_t> interval_blob, interval_format_1;
  std::vector<int32_t> interval_table;
  std::unique_ptr<edge::LoadedNodeModel> builtin;  // the compiled-in model of a fresh node
  std::vector<pipeline::CellSeries> cells;
};

// Three exports of W 5, H 12, SOH only: the built-in "base-1", the update "new-2" and "wide-3"
// (W 6, so that a switch is visible in what the node asks for).
// With `interval`, the student carries a table of growing half-widths (the last one 2^30: a
// bound that saturates).
pipeline::ExportedModel export_of(const std::vector<pipeline::CellSeries>& cells, int w,
                                  uint64_t seed, const std::string& version,
                                  models::QuantizedStudent* student_out = nullptr,
                                  bool interval = false) {
  pipeline::FeatureOptions options;
  options.input_len = w;
  options.horizon = 12;
  options.use_optional_features = false;
  const auto spec = *pipeline::fit_feature_spec(cells, options);
  auto student = testing::random_student(spec, pipeline::make_windows(cells, spec, 2), 4, seed);
  if (interval) {
    student.interval_half_width.resize(student.horizon);
    for (size_t j = 0; j < student.interval_half_width.size(); ++j)
      student.interval_half_width[j] = static_cast<int32_t>(j * 40000 + 11);
    student.interval_half_width.back() = 1 << 30;
  }
  if (student_out != nullptr) *student_out = student;
  return *pipeline::export_model(student, spec, version);
}

std::vector<uint8_t> resealed(std::vector<uint8_t> blob);
size_t sections_at(const std::vector<uint8_t>& blob);

// Format 1 of `blob` with `student` (and its own interval table) as the embedded CCQ8.
std::vector<uint8_t> format_1_with_student(const std::vector<uint8_t>& blob,
                                           const models::QuantizedStudent& student) {
  const std::vector<uint8_t> ccq8 = models::serialize_quantized_student(student);
  const size_t old_ccq8 = sections_at(blob);
  size_t length_at = 6;
  length_at += 1 + blob[length_at] + 4;
  length_at += 1 + blob[length_at] * size_t{9} + 24;
  std::vector<uint8_t> v1(blob.begin(), blob.begin() + static_cast<ptrdiff_t>(length_at));
  for (int i = 0; i < 4; ++i)
    v1.push_back(static_cast<uint8_t>(ccq8.size() >> (8 * i)));
  v1.insert(v1.end(), ccq8.begin(), ccq8.end());
  EXPECT_EQ(length_at + 4 + (old_ccq8 - length_at - 4), old_ccq8);
  v1[4] = 1;
  v1.resize(v1.size() + 4);
  return resealed(v1);
}

const Blobs& blobs() {
  static const Blobs* b = [] {
    auto* out = new Blobs;
    out->cells = testing::generated_cells(2, 40, 4);
    out->old_blob = export_of(out->cells, 5, 8, "base-1").blob;
    out->new_blob = export_of(out->cells, 5, 9, "new-2").blob;
    out->wide_blob = export_of(out->cells, 6, 10, "wide-3").blob;
    models::QuantizedStudent with_table;
    out->interval_blob = export_of(out->cells, 5, 11, "band-4", &with_table, true).blob;
    out->interval_table = with_table.interval_half_width;
    out->interval_format_1 = format_1_with_student(out->interval_blob, with_table);
    out->builtin = std::move(edge::load_node_model(out->old_blob).value());
    return out;
  }();
  return *b;
}

// Recomputes the CCNM CRC after a test edited the blob.
std::vector<uint8_t> resealed(std::vector<uint8_t> blob) {
  const uint32_t crc = models::crc32(std::span(blob).first(blob.size() - 4));
  for (int i = 0; i < 4; ++i)
    blob[blob.size() - 4 + i] = static_cast<uint8_t>(crc >> (8 * i));
  return blob;
}

// Offset of the first byte after the embedded CCQ8 student (format 2: the section count).
size_t sections_at(const std::vector<uint8_t>& blob) {
  size_t at = 6;
  at += 1 + blob[at];  // version
  at += 4;             // W, H
  const size_t k = blob[at];
  at += 1 + k + 24 + 8 * k;  // features, normalization
  const uint32_t l =
      blob[at] | blob[at + 1] << 8 | blob[at + 2] << 16 | uint32_t{blob[at + 3]} << 24;
  return at + 4 + l;
}

// The same model in format 1 (no self-test), as exports before format 2 wrote it.
std::vector<uint8_t> as_format_1(const std::vector<uint8_t>& blob) {
  std::vector<uint8_t> v1(blob.begin(), blob.begin() + static_cast<ptrdiff_t>(sections_at(blob)));
  v1[4] = 1;
  v1.resize(v1.size() + 4);
  return resealed(v1);
}

// The blob with one expected self-test output changed (a model that would not run as exported).
std::vector<uint8_t> with_wrong_selftest(std::vector<uint8_t> blob) {
  blob[blob.size() - 4 - 1] ^= 0x01;  // the last expected output's top byte
  return resealed(blob);
}

TEST(CcModelBlob, ReadsWhatTheHostReadsAndRefusesEveryCutAndFlip) {
  const auto& blob = blobs().new_blob;
  auto host = pipeline::read_node_model(blob);
  ASSERT_TRUE(host);
  auto c = std::make_unique<cc_model_blob>();
  ASSERT_EQ(cc_model_blob_read(c.get(), blob.data(), static_cast<uint32_t>(blob.size())),
            CC_MODEL_BLOB_OK);
  EXPECT_EQ(c->format, 2);
  EXPECT_EQ(std::string(c->version), "new-2");
  EXPECT_EQ(std::string(c->sha256_hex), host->sha256_hex);
  EXPECT_EQ(c->node.input_len, host->normalization.input_len);
  EXPECT_EQ(c->node.level_scale, host->normalization.level_scale);
  EXPECT_EQ(c->student.head_multiplier[11], host->student.head_multiplier[11]);
  ASSERT_NE(c->selftest_input, nullptr);
  EXPECT_EQ(cc_node_check_model(&c->node), CC_NODE_OK);
  ASSERT_EQ(host->selftest_input.size(), host->student.input_size);

  for (size_t n = 0; n < blob.size(); ++n)
    ASSERT_NE(cc_model_blob_read(c.get(), blob.data(), static_cast<uint32_t>(n)), CC_MODEL_BLOB_OK)
        << "cut at " << n;
  for (size_t i = 0; i < blob.size(); i += 7) {
    std::vector<uint8_t> bad = blob;
    bad[i] ^= 0x10;
    ASSERT_NE(cc_model_blob_read(c.get(), bad.data(), static_cast<uint32_t>(bad.size())),
              CC_MODEL_BLOB_OK)
        << "flip at " << i;
  }
  const auto v1 = as_format_1(blob);
  ASSERT_TRUE(pipeline::read_node_model(v1)) << "format 1 still reads on the host";
  ASSERT_EQ(cc_model_blob_read(c.get(), v1.data(), static_cast<uint32_t>(v1.size())),
            CC_MODEL_BLOB_OK);
  EXPECT_EQ(c->selftest_input, nullptr);
  EXPECT_FALSE(pipeline::read_node_model(with_wrong_selftest(blob)))
      << "the host refuses a self-test that is not the student's";
}

TEST(CcModelBlob, ReadsTheIntervalSectionAndAFormat1StudentsOwnTable) {
  auto c = std::make_unique<cc_model_blob>();
  const auto& blob = blobs().interval_blob;
  auto host = pipeline::read_node_model(blob);
  ASSERT_TRUE(host) << host.error().message;
  ASSERT_EQ(cc_model_blob_read(c.get(), blob.data(), static_cast<uint32_t>(blob.size())),
            CC_MODEL_BLOB_OK);
  ASSERT_NE(c->node.interval, nullptr) << "tag 2 gives the node its table";
  EXPECT_EQ(c->node.interval->bands, 1);
  EXPECT_EQ(host->interval.bands, 1);
  const std::vector<int32_t> table(c->node.interval->half_width,
                                   c->node.interval->half_width + c->node.horizon);
  EXPECT_EQ(table, blobs().interval_table);
  EXPECT_EQ(table, host->interval.half_width);
  EXPECT_EQ(c->node.interval->band_soh[0], host->interval.band_soh[0]);
  EXPECT_EQ(c->node.interval->band_soh[1], host->interval.band_soh[1]);
  EXPECT_EQ(cc_node_check_model(&c->node), CC_NODE_OK);
  ASSERT_NE(c->selftest_input, nullptr) << "the self-test section is still read";

  for (size_t n = sections_at(blob); n < blob.size(); ++n)
    ASSERT_NE(cc_model_blob_read(c.get(), blob.data(), static_cast<uint32_t>(n)), CC_MODEL_BLOB_OK)
        << "cut at " << n;

  const auto& v1 = blobs().interval_format_1;
  auto host_v1 = pipeline::read_node_model(v1);
  ASSERT_TRUE(host_v1) << host_v1.error().message;
  ASSERT_EQ(cc_model_blob_read(c.get(), v1.data(), static_cast<uint32_t>(v1.size())),
            CC_MODEL_BLOB_OK);
  ASSERT_NE(c->node.interval, nullptr) << "a format 1 student's own table is a one-row interval";
  EXPECT_EQ(std::vector<int32_t>(c->node.interval->half_width,
                                 c->node.interval->half_width + c->node.horizon),
            host_v1->interval.half_width);
  EXPECT_EQ(cc_node_check_model(&c->node), CC_NODE_OK);

  ASSERT_EQ(cc_model_blob_read(c.get(), blobs().new_blob.data(),
                               static_cast<uint32_t>(blobs().new_blob.size())),
            CC_MODEL_BLOB_OK);
  EXPECT_EQ(c->node.interval, nullptr) << "no table, no interval";
}

// ---- a node on simulated flash ------------------------------------------------------------------

// NOR flash: erase sets 0xFF, a write may only clear bits of erased bytes (else it fails, as a
// bug would show on the chip). Power can be cut at the n-th operation (erase or write): that one
// is torn (a write programs half its bytes, an erase clears half the region) and every later one
// does nothing until the node restarts.
struct Flash {
  static constexpr uint32_t kSlotBytes = 16384;
  std::vector<uint8_t> regions[4];
  long operations = 0;
  long cut_at = -1;  // operation index at which power is lost; -1 never
  bool dead = false;

  Flash() {
    for (int r = 0; r < 4; ++r)
      regions[r].assign(r < 2 ? kSlotBytes : CC_UPDATE_RECORD_BYTES, 0xFF);
  }
  enum Power { kOn, kTorn, kOff };
  Power power() {
    if (dead) return kOff;
    if (operations++ == cut_at) {
      dead = true;
      return kTorn;
    }
    return kOn;
  }
  static int erase(void* context, unsigned region) {
    auto& f = *static_cast<Flash*>(context);
    auto& bytes = f.regions[region];
    const Power p = f.power();
    if (p == kOff) return -1;
    const auto end =
        p == kTorn ? bytes.begin() + static_cast<ptrdiff_t>(bytes.size() / 2) : bytes.end();
    std::fill(bytes.begin(), end, 0xFF);
    return p == kTorn ? -1 : 0;
  }
  static int write(void* context, unsigned region, uint32_t offset, const void* data,
                   uint32_t length) {
    auto& f = *static_cast<Flash*>(context);
    auto& bytes = f.regions[region];
    const auto* in = static_cast<const uint8_t*>(data);
    if (offset % 4 != 0 || offset + length > bytes.size()) return -1;
    const Power p = f.power();
    if (p == kOff) return -1;
    const bool torn = p == kTorn;
    const uint32_t n = torn ? length / 2 : length;
    for (uint32_t i = 0; i < n; ++i) {
      if (bytes[offset + i] != 0xFF) return -1;
      bytes[offset + i] = in[i];
    }
    return torn ? -1 : 0;
  }
  static const uint8_t* map(void* context, unsigned region) {
    return static_cast<Flash*>(context)->regions[region].data();
  }
  cc_update_storage storage() { return {kSlotBytes, erase, write, map, this}; }
};

std::string frame(const std::string& body) {
  char crc[10];
  std::snprintf(crc, sizeof crc, "*%08x",
                models::crc32({reinterpret_cast<const uint8_t*>(body.data()), body.size()}));
  return body + crc + "\n";
}

std::string chunk_frame(uint32_t seq, const std::vector<uint8_t>& blob, size_t offset) {
  const size_t n = std::min<size_t>(CC_UPDATE_CHUNK_MAX, blob.size() - offset);
  char crc[9];
  std::snprintf(crc, sizeof crc, "%08x", models::crc32(std::span(blob).subspan(offset, n)));
  return "cc2 UC " + std::to_string(seq) + " " + std::to_string(offset) + " " +
         hex_of(blob.data() + offset, n) + " " + crc;
}

// A node that boots from the flash, as cyclecast-node --slots and the Nano sketch do.
class Rig {
 public:
  explicit Rig(Flash& flash) : flash_(flash) { boot(); }

  // A power cycle: the flash keeps what was written, RAM is lost.
  void boot() {
    flash_.dead = false;
    flash_.cut_at = -1;
    update_ = std::make_unique<cc_update>();
    node_ = std::make_unique<cc_node>();
    lines_.clear();
    const cc_node_model* m =
        cc_update_init(update_.get(), flash_.storage(), &blobs().builtin->view());
    EXPECT_EQ(cc_node_init(node_.get(), m, cc_node_io{write_line, micros, this}), CC_NODE_OK);
    cc_update_attach(update_.get(), node_.get());
  }

  // Sends one request; returns the answer bodies (without "*CRC").
  std::vector<std::string> ask(const std::string& body) {
    lines_.clear();
    const std::string f = frame(body);
    cc_node_feed(node_.get(), f.data(), f.size());
    return lines_;
  }
  std::string ask1(const std::string& body) {
    const auto answers = ask(body);
    return answers.empty() ? "(none)" : answers.front();
  }

  std::string begin(const std::vector<uint8_t>& blob, const std::string& version,
                    std::string sha = "") {
    if (sha.empty()) sha = pipeline::sha256_hex(blob);
    return ask1("cc2 UB 1 " + std::to_string(blob.size()) + " " + sha + " " + version);
  }
  // Sends chunks [from, to) (in CC_UPDATE_CHUNK_MAX units); false at the first answer not "ok".
  bool send_chunks(const std::vector<uint8_t>& blob, size_t from, size_t to,
                   bool must_succeed = true) {
    for (size_t c = from; c < to; ++c) {
      const std::string a =
          ask1(chunk_frame(static_cast<uint32_t>(c + 2), blob, c * CC_UPDATE_CHUNK_MAX));
      if (a.find(" ok") == std::string::npos) {
        if (must_succeed) ADD_FAILURE() << "chunk " << c << ": " << a;
        return false;
      }
    }
    return true;
  }
  static size_t chunks(const std::vector<uint8_t>& blob) {
    return (blob.size() + CC_UPDATE_CHUNK_MAX - 1) / CC_UPDATE_CHUNK_MAX;
  }
  // begin + every chunk + commit; returns the commit's answers.
  // With `power_may_fail`, refusals along the way are expected rather than failures.
  std::vector<std::string> update(const std::vector<uint8_t>& blob, const std::string& version,
                                  bool power_may_fail = false) {
    const std::string begun = begin(blob, version);
    if (!power_may_fail) {
      EXPECT_EQ(begun, "cc2 UP 1 receiving 0 ok");
    }
    send_chunks(blob, 0, chunks(blob), !power_may_fail);
    return ask("cc2 UE 9");
  }

  // The running model's version, from the answer to cc1 ID.
  std::string version() {
    const std::string id = ask1("cc1 ID 5");
    const size_t v = id.find(' ', 9) + 1;
    return id.substr(v, id.find(' ', v) - v);
  }
  // Feeds a cell W cycles (W of the running model) and checks the last is forecast with it.
  void expect_forecasts(const std::string& version) {
    const uint16_t w = node_->model->input_len;
    const std::string cell = "cell" + std::to_string(++cells_);
    std::string last;
    for (uint16_t c = 1; c <= w; ++c)
      last = ask1("cc1 CY " + std::to_string(100 + c) + " " + cell + " " + std::to_string(c) + " " +
                  std::to_string(1.0 - 0.001 * c).substr(0, 8) + " - - -");
    EXPECT_EQ(last.rfind("cc1 FC " + std::to_string(100 + w) + " " + cell + " ", 0), 0u) << last;
    EXPECT_NE(last.find(" " + version + " "), std::string::npos) << last;
  }
  std::string status() { return ask1("cc2 US 7"); }
  std::string slots() { return ask1("cc2 SL 8"); }
  const std::vector<std::string>& lines() const { return lines_; }
  cc_update& update_state() { return *update_; }

 private:
  static void write_line(void* context, const char* bytes, size_t length) {
    auto& rig = *static_cast<Rig*>(context);
    std::string line(bytes, length);
    EXPECT_EQ(line.back(), '\n');
    line.pop_back();
    EXPECT_EQ(line.substr(line.size() - 9, 1), "*");
    const std::string body = line.substr(0, line.size() - 9);
    char crc[9];
    std::snprintf(crc, sizeof crc, "%08x",
                  models::crc32({reinterpret_cast<const uint8_t*>(body.data()), body.size()}));
    EXPECT_EQ(line.substr(line.size() - 8), crc) << line;
    EXPECT_LE(line.size(), size_t{CC_NODE_MAX_LINE});
    rig.lines_.push_back(body);
  }
  static uint32_t micros(void* context) { return ++static_cast<Rig*>(context)->clock_; }

  Flash& flash_;
  std::unique_ptr<cc_update> update_;
  std::unique_ptr<cc_node> node_;
  std::vector<std::string> lines_;
  uint32_t clock_ = 0;
  int cells_ = 0;
};

TEST(CcUpdate, AFreshNodeRunsItsBuiltInModelAndSaysSo) {
  Flash flash;
  Rig rig(flash);
  EXPECT_EQ(rig.version(), "base-1");
  EXPECT_EQ(rig.slots(), "cc2 SL 8 - A - - B - -");
  EXPECT_EQ(rig.status(), "cc2 UP 7 idle 0 none");
  const std::string id = rig.ask1("cc2 ID 3");
  EXPECT_EQ(id.substr(0, 11), "cc2 ID 3 2 ");
  EXPECT_EQ(id.substr(id.size() - 7), " - none") << id;
  EXPECT_EQ(rig.ask1("cc1 UB 4 1 00 v"), "cc1 ER 4 type") << "v1 has no update requests";
  EXPECT_EQ(rig.ask1("cc2 CY 6 c9 1 0.99 - - -"), "cc2 OK 6 c9 1 1") << "v2 answers in v2";
  EXPECT_EQ(rig.ask1("cc2 ST 7").substr(0, 13), "cc2 ST 7 rx=7");
  EXPECT_EQ(rig.ask1("cc1 CY 8 c9 2 0.98 - - -"), "cc1 OK 8 c9 2 2") << "and v1 in v1";
  rig.expect_forecasts("base-1");
}

TEST(CcUpdate, SwitchesAfterTheChecksAndKeepsTheModelAcrossResets) {
  Flash flash;
  Rig rig(flash);
  const auto answers = rig.update(blobs().wide_blob, "wide-3");
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0], "cc2 UP 9 idle 0 switched");
  EXPECT_EQ(answers[1], "cc1 HI 0 1 wide-3 " + pipeline::sha256_hex(blobs().wide_blob))
      << "the switch announces itself as a reset does, so the gateway resends its windows";
  EXPECT_EQ(rig.version(), "wide-3");
  rig.expect_forecasts("wide-3");
  EXPECT_EQ(rig.slots(),
            "cc2 SL 8 A A wide-3 " + pipeline::sha256_hex(blobs().wide_blob) + " B - -");

  rig.boot();
  EXPECT_EQ(rig.version(), "wide-3") << "the record names slot A";
  EXPECT_EQ(rig.status(), "cc2 UP 7 idle 0 none");
  rig.expect_forecasts("wide-3");

  EXPECT_EQ(rig.update(blobs().new_blob, "new-2").front(), "cc2 UP 9 idle 0 switched");
  rig.boot();
  EXPECT_EQ(rig.version(), "new-2");
  EXPECT_EQ(rig.slots(), "cc2 SL 8 B A wide-3 " + pipeline::sha256_hex(blobs().wide_blob) +
                             " B new-2 " + pipeline::sha256_hex(blobs().new_blob))
      << "the previous model stays in the other slot";
}

std::string without_newline(std::string line) {
  line.pop_back();
  return line;
}

// The merge of the model update and the node's intervals: a model that arrives over the serial
// line with an interval table (tag 2) forecasts with bounds in v2, as the built-in one would.
TEST(CcUpdate, AnUpdatedModelWithAnIntervalTableGivesV2ForecastsWithBounds) {
  Flash flash;
  Rig rig(flash);
  const std::string before = rig.ask1("cc2 ID 3");
  EXPECT_EQ(before.substr(before.size() - 9), " 0 - none") << "built-in: no table" << before;

  ASSERT_EQ(rig.update(blobs().interval_blob, "band-4").front(), "cc2 UP 9 idle 0 switched");
  for (int boot = 0; boot < 2; ++boot) {
    const std::string id = rig.ask1("cc2 ID 3");
    auto parsed = wire::parse_answer(without_newline(frame(id)));
    ASSERT_TRUE(parsed) << id;
    const auto* identify = std::get_if<wire::IdentifyAnswer>(&*parsed);
    ASSERT_NE(identify, nullptr) << id;
    EXPECT_EQ(identify->model_version, "band-4");
    EXPECT_EQ(identify->interval_bands, 1) << id;
    EXPECT_EQ(identify->active_slot, "A") << id;
    EXPECT_EQ(identify->last_update, boot == 0 ? "switched" : "none") << id;

    const std::string cell = "iv" + std::to_string(boot);
    std::string last;
    for (int c = 1; c <= 5; ++c)
      last = rig.ask1("cc2 CY " + std::to_string(20 + c) + " " + cell + " " + std::to_string(c) +
                      " " + std::to_string(1.0 - 0.004 * c).substr(0, 8) + " - - -");
    auto answer = wire::parse_answer(without_newline(frame(last)));
    ASSERT_TRUE(answer) << last << ": " << answer.error().message;
    const auto* fc = std::get_if<wire::ForecastAnswer>(&*answer);
    ASSERT_NE(fc, nullptr) << last;
    EXPECT_EQ(fc->version, wire::kNodeProtocolV2);
    EXPECT_EQ(fc->model_version, "band-4");
    ASSERT_TRUE(fc->interval.has_value()) << "the updated model's table gives bounds: " << last;
    ASSERT_TRUE(fc->interval->lower_at_10 && fc->interval->upper_at_10) << last;
    EXPECT_LE(*fc->interval->lower_at_10, *fc->soh_at_10);
    EXPECT_GE(*fc->interval->upper_at_10, *fc->soh_at_10);
    EXPECT_LT(fc->interval->lower_at_h, fc->interval->upper_at_h) << "the saturated last step";

    // The same cycles in v1 still get the v1 answer, without the interval.
    const std::string v1 = rig.ask1("cc1 CY 40 " + cell + " 6 0.97 - - -");
    EXPECT_EQ(v1.rfind("cc1 FC 40 ", 0), 0u) << v1;
    EXPECT_EQ(std::count(v1.begin(), v1.end(), ' '), 9) << v1;
    rig.boot();  // the record keeps slot A, and with it the table
  }
}

TEST(CcUpdate, ATransferCutAtEveryChunkBoundaryLeavesTheOldModel) {
  const auto& blob = blobs().new_blob;
  const size_t chunks = Rig::chunks(blob);
  ASSERT_GT(chunks, 3u);
  for (size_t cut = 0; cut <= chunks; ++cut) {
    Flash flash;
    Rig rig(flash);
    ASSERT_EQ(rig.update(blobs().wide_blob, "wide-3").front(), "cc2 UP 9 idle 0 switched");
    // The next update writes slot B, then power goes after `cut` chunks (all of them: before
    // the commit).
    ASSERT_EQ(rig.begin(blob, "new-2"), "cc2 UP 1 receiving 0 ok");
    ASSERT_TRUE(rig.send_chunks(blob, 0, cut));
    rig.boot();
    EXPECT_EQ(rig.version(), "wide-3") << "cut after " << cut << " chunks";
    EXPECT_EQ(rig.status(), cut == 0 ? "cc2 UP 7 idle 0 none" : "cc2 UP 7 idle 0 interrupted")
        << cut;
    EXPECT_EQ(rig.ask1("cc2 UE 4"), "cc2 UP 4 idle 0 idle") << "nothing half-done to commit";
    rig.expect_forecasts("wide-3");
    // The gateway starts again from the beginning, and it goes through.
    ASSERT_EQ(rig.update(blob, "new-2").front(), "cc2 UP 9 idle 0 switched") << cut;
  }
}

TEST(CcUpdate, PowerLostAtEveryFlashOperationLeavesAValidModel) {
  const auto& blob = blobs().new_blob;
  // Operations of a whole update: one erase, the chunks, the record's erase and write.
  const long total = static_cast<long>(Rig::chunks(blob)) + 3;
  for (long cut = 0; cut < total; ++cut) {
    Flash flash;
    Rig rig(flash);
    ASSERT_EQ(rig.update(blobs().wide_blob, "wide-3").front(), "cc2 UP 9 idle 0 switched");
    flash.operations = 0;
    flash.cut_at = cut;
    rig.update(blob, "new-2", true);
    rig.boot();
    // Only a record written whole switches; a torn one is refused by its CRC, so every cut
    // before the record's last byte leaves the old model.
    EXPECT_EQ(rig.version(), "wide-3") << "power lost at operation " << cut;
    rig.expect_forecasts("wide-3");
    EXPECT_EQ(rig.ask1("cc2 US 3"),
              cut == 0 ? "cc2 UP 3 idle 0 none" : "cc2 UP 3 idle 0 interrupted")
        << cut;
  }
  // And with power to the end, the same update switches (the loop's bound is every operation).
  Flash flash;
  Rig rig(flash);
  rig.update(blobs().wide_blob, "wide-3");
  flash.operations = 0;
  EXPECT_EQ(rig.update(blob, "new-2").front(), "cc2 UP 9 idle 0 switched");
  EXPECT_EQ(flash.operations, total);
}

TEST(CcUpdate, ACorruptedChunkIsRefusedAndResent) {
  Flash flash;
  Rig rig(flash);
  const auto& blob = blobs().new_blob;
  ASSERT_EQ(rig.begin(blob, "new-2"), "cc2 UP 1 receiving 0 ok");
  ASSERT_TRUE(rig.send_chunks(blob, 0, 2));
  std::string corrupted = chunk_frame(30, blob, 2 * CC_UPDATE_CHUNK_MAX);
  corrupted[corrupted.size() - 12] = corrupted[corrupted.size() - 12] == '0' ? '1' : '0';
  EXPECT_EQ(rig.ask1(corrupted), "cc2 UP 30 receiving 192 chunk")
      << "data not matching its checksum: refused, the transfer goes on";
  EXPECT_EQ(rig.ask1(chunk_frame(31, blob, 3 * CC_UPDATE_CHUNK_MAX)),
            "cc2 UP 31 receiving 192 offset")
      << "a gap is refused";
  EXPECT_EQ(rig.ask1(chunk_frame(32, blob, 0)), "cc2 UP 32 receiving 192 ok")
      << "a resent chunk is acknowledged, not written twice";
  EXPECT_EQ(rig.ask1("cc2 UE 33"), "cc2 UP 33 receiving 192 incomplete");
  ASSERT_TRUE(rig.send_chunks(blob, 2, Rig::chunks(blob)));
  EXPECT_EQ(rig.ask("cc2 UE 34").front(), "cc2 UP 34 idle 0 switched");
  rig.expect_forecasts("new-2");
}

TEST(CcUpdate, AWrongHashKeepsTheOldModel) {
  Flash flash;
  Rig rig(flash);
  const auto& blob = blobs().new_blob;
  ASSERT_EQ(rig.begin(blob, "new-2", pipeline::sha256_hex(blobs().old_blob)),
            "cc2 UP 1 receiving 0 ok");
  ASSERT_TRUE(rig.send_chunks(blob, 0, Rig::chunks(blob)));
  EXPECT_EQ(rig.ask("cc2 UE 9"), std::vector<std::string>{"cc2 UP 9 idle 0 hash"});
  EXPECT_EQ(rig.status(), "cc2 UP 7 idle 0 hash");
  rig.expect_forecasts("base-1");
  rig.boot();
  EXPECT_EQ(rig.version(), "base-1");
  EXPECT_EQ(rig.status(), "cc2 UP 7 idle 0 interrupted") << "slot A written, never recorded";
}

TEST(CcUpdate, AFailingOrMissingSelfTestKeepsTheOldModel) {
  Flash flash;
  Rig rig(flash);
  EXPECT_EQ(rig.update(with_wrong_selftest(blobs().new_blob), "new-2"),
            std::vector<std::string>{"cc2 UP 9 idle 0 selftest"});
  rig.expect_forecasts("base-1");
  EXPECT_EQ(rig.update(as_format_1(blobs().new_blob), "new-2"),
            std::vector<std::string>{"cc2 UP 9 idle 0 noselftest"});
  rig.expect_forecasts("base-1");
  EXPECT_EQ(rig.update(blobs().new_blob, "other"),
            std::vector<std::string>{"cc2 UP 9 idle 0 version"})
      << "the announced version must be the blob's";
  std::vector<uint8_t> not_a_model(500, 0x42);
  EXPECT_EQ(rig.update(not_a_model, "x"), std::vector<std::string>{"cc2 UP 9 idle 0 blob"});
  EXPECT_EQ(rig.version(), "base-1");
  EXPECT_EQ(rig.slots(), "cc2 SL 8 - A - - B - -");
}

TEST(CcUpdate, AResetBeforeTheSwitchLeavesTheOldModel) {
  Flash flash;
  Rig rig(flash);
  const auto& blob = blobs().new_blob;
  ASSERT_EQ(rig.begin(blob, "new-2"), "cc2 UP 1 receiving 0 ok");
  ASSERT_TRUE(rig.send_chunks(blob, 0, Rig::chunks(blob)));
  rig.boot();  // every byte in slot A, the hash not yet checked, the record not written
  EXPECT_EQ(rig.version(), "base-1");
  EXPECT_EQ(rig.status(), "cc2 UP 7 idle 0 interrupted");
  rig.expect_forecasts("base-1");
}

TEST(CcUpdate, RefusesMalformedAndOutOfOrderRequests) {
  Flash flash;
  Rig rig(flash);
  const auto& blob = blobs().new_blob;
  const std::string sha = pipeline::sha256_hex(blob);
  EXPECT_EQ(rig.ask1(chunk_frame(3, blob, 0)), "cc2 UP 3 idle 0 idle");
  EXPECT_EQ(rig.ask1("cc2 UE 4"), "cc2 UP 4 idle 0 idle");
  EXPECT_EQ(rig.ask1("cc2 UB 5 99999999 " + sha + " v"), "cc2 UP 5 idle 0 size");
  EXPECT_EQ(rig.ask1("cc2 UB 6 0 " + sha + " v"), "cc2 UP 6 idle 0 size");
  EXPECT_EQ(rig.ask1("cc2 UB 7 10 " + sha.substr(1) + " v"), "cc2 ER 7 field");
  EXPECT_EQ(rig.ask1("cc2 UB 8 10 " + sha + " bad/version"), "cc2 ER 8 field");
  EXPECT_EQ(rig.ask1("cc2 UB 9 10 " + sha), "cc2 ER 9 field");
  EXPECT_EQ(rig.ask1("cc2 UE x"), "cc2 ER 0 field");
  EXPECT_EQ(rig.ask1("cc2 US 10 extra"), "cc2 ER 10 field");
  ASSERT_EQ(rig.begin(blob, "new-2"), "cc2 UP 1 receiving 0 ok");
  EXPECT_EQ(rig.ask1("cc2 UC 11 0 abc 00000000"), "cc2 ER 11 field") << "odd hex";
  EXPECT_EQ(rig.ask1("cc2 UC 12 0 " + std::string(2 * CC_UPDATE_CHUNK_MAX + 2, 'a') + " 00000000"),
            "cc2 ER 12 field")
      << "a chunk over the maximum";
  EXPECT_EQ(rig.ask1("cc2 UC 13 0 AB 00000000"), "cc2 ER 13 field") << "uppercase hex";
  EXPECT_EQ(rig.ask1("cc2 UA 14"), "cc2 UP 14 idle 0 aborted");
  EXPECT_EQ(rig.ask1("cc2 XX 15"), "cc2 ER 15 type");
  rig.expect_forecasts("base-1");
}

}  // namespace
}  // namespace cyclecast::update_test
