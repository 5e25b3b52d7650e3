#include "cyclecast/models/model_file.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>

#include "cyclecast/byte_order.h"

namespace cyclecast::models {
namespace {

constexpr size_t kHeaderBytes = 24;
constexpr size_t kChecksumBytes = 4;
constexpr uint32_t kMaxStringBytes = 4096;
// Bounds on configuration integers read from a file, so a corrupt value cannot make us build a
// model of absurd size before the tensors are checked.
constexpr double kMaxDimension = 1 << 20;
constexpr double kMaxLayers = 64;
// A student's Euler steps cost time, not memory; the bound only stops absurd values.
constexpr double kMaxEulerSteps = 1024;

// A string as model files store it: u32 length (at most kMaxStringBytes), then the bytes.
void write_string(ByteWriter& w, const std::string& s) {
  w.u32(static_cast<uint32_t>(s.size()));
  w.raw({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

// False when the string is cut short or longer than kMaxStringBytes.
bool read_string(ByteReader& r, std::string& out) {
  const uint32_t length = r.u32();
  if (!r.ok() || length > kMaxStringBytes) return false;
  const std::span<const uint8_t> text = r.raw(length);
  out.assign(text.begin(), text.end());
  return r.ok();
}

Error corrupt(const std::string& what) {
  return make_error(ErrorCode::kCorrupt, "The model file is corrupt: " + what + ".");
}

using Hyper = std::vector<std::pair<std::string, double>>;

Hyper hyperparameters_of(const ModelConfig& config) {
  Hyper h;
  auto add = [&](const std::string& name, double v) { h.emplace_back(name, v); };
  if (const auto* d = std::get_if<DlnetConfig>(&config)) {
    add("input_len", double(d->input_len));
    add("horizon", double(d->horizon));
    add("hidden", double(d->hidden));
    add("euler_steps", double(d->euler_steps));
    add("dropout", d->dropout);
    add("recurrent_rank", double(d->recurrent_rank));
    add("encoder_layers", double(d->encoder_widths.size()));
    for (size_t i = 0; i < d->encoder_widths.size(); ++i) {
      add("encoder_width." + std::to_string(i), double(d->encoder_widths[i]));
    }
    add("decoder_layers", double(d->decoder_widths.size()));
    for (size_t i = 0; i < d->decoder_widths.size(); ++i) {
      add("decoder_width." + std::to_string(i), double(d->decoder_widths[i]));
    }
  } else if (const auto* l = std::get_if<LtcConfig>(&config)) {
    add("input_len", double(l->input_len));
    add("input_features", double(l->input_features));
    add("units", double(l->units));
    add("unfolds", double(l->unfolds));
    add("horizon", double(l->horizon));
    add("elapsed_time", l->elapsed_time);
  } else if (const auto* st = std::get_if<StudentConfig>(&config)) {
    add("input_size", double(st->input_size));
    add("features", double(st->features));
    add("width", double(st->width));
    add("euler_steps", double(st->euler_steps));
    add("horizon", double(st->horizon));
    add("output_gain", st->output_gain ? 1.0 : 0.0);
  } else {
    const auto& e = std::get<EulerStudentConfig>(config);
    add("input_len", double(e.input_len));
    add("input_features", double(e.input_features));
    add("width", double(e.width));
    add("recurrent_rank", double(e.recurrent_rank));
    add("horizon", double(e.horizon));
    add("step_size", e.step_size);
  }
  return h;
}

// Reads named hyper-parameters back, validating each one.
class HyperReader {
 public:
  explicit HyperReader(const Hyper& h) : h_(h) {}
  // An integer in [min, max].
  bool integer(const std::string& name, int64_t min, int64_t& out, double max = kMaxDimension) {
    double v = 0;
    if (!find(name, v) || v != std::floor(v) || v < double(min) || v > max) {
      return fail(name);
    }
    out = static_cast<int64_t>(v);
    return true;
  }
  bool real(const std::string& name, double min, double max, double& out) {
    if (!find(name, out) || !(out >= min && out <= max)) return fail(name);
    return true;
  }
  // An integer in [min, max] that older files may lack: `fallback` then.
  bool optional_integer(const std::string& name, int64_t min, int64_t max, int64_t fallback,
                        int64_t& out) {
    double v = 0;
    if (!find(name, v)) {
      out = fallback;
      return true;
    }
    return integer(name, min, out, double(max));
  }
  const std::string& bad() const { return bad_; }

 private:
  bool find(const std::string& name, double& out) const {
    for (const auto& [k, v] : h_) {
      if (k == name) {
        out = v;
        return true;
      }
    }
    return false;
  }
  bool fail(const std::string& name) {
    if (bad_.empty()) bad_ = name;
    return false;
  }
  const Hyper& h_;
  std::string bad_;
};

Result<ModelConfig> config_from(Architecture arch, const Hyper& h) {
  HyperReader r(h);
  bool ok = true;
  switch (arch) {
    case Architecture::kDlnet: {
      DlnetConfig c;
      int64_t layers = 0;
      ok = r.integer("input_len", 1, c.input_len) && r.integer("horizon", 1, c.horizon) &&
           r.integer("hidden", 1, c.hidden) && r.integer("euler_steps", 1, c.euler_steps) &&
           r.real("dropout", 0.0, 0.99, c.dropout) &&
           r.integer("recurrent_rank", 0, c.recurrent_rank) &&
           r.integer("encoder_layers", 0, layers, kMaxLayers);
      c.encoder_widths.assign(ok ? static_cast<size_t>(layers) : 0, 0);
      for (size_t i = 0; ok && i < c.encoder_widths.size(); ++i) {
        ok = r.integer("encoder_width." + std::to_string(i), 1, c.encoder_widths[i]);
      }
      ok = ok && r.integer("decoder_layers", 0, layers, kMaxLayers);
      c.decoder_widths.assign(ok ? static_cast<size_t>(layers) : 0, 0);
      for (size_t i = 0; ok && i < c.decoder_widths.size(); ++i) {
        ok = r.integer("decoder_width." + std::to_string(i), 1, c.decoder_widths[i]);
      }
      if (ok) return ModelConfig{c};
      break;
    }
    case Architecture::kLtc: {
      LtcConfig c;
      ok = r.integer("input_len", 1, c.input_len) &&
           r.integer("input_features", 1, c.input_features) && r.integer("units", 1, c.units) &&
           r.integer("unfolds", 1, c.unfolds) && r.integer("horizon", 1, c.horizon) &&
           r.real("elapsed_time", 1e-9, 1e9, c.elapsed_time);
      if (ok) return ModelConfig{c};
      break;
    }
    case Architecture::kEulerStudent: {
      EulerStudentConfig c;
      ok = r.integer("input_len", 1, c.input_len) &&
           r.integer("input_features", 1, c.input_features) && r.integer("width", 1, c.width) &&
           r.integer("recurrent_rank", 0, c.recurrent_rank) && r.integer("horizon", 1, c.horizon) &&
           r.real("step_size", 1e-9, 1e9, c.step_size);
      if (ok) return ModelConfig{c};
      break;
    }
    case Architecture::kStudent: {
      StudentConfig c;
      ok = r.integer("input_size", 1, c.input_size) && r.integer("features", 1, c.features) &&
           r.integer("width", 1, c.width) &&
           r.integer("euler_steps", 1, c.euler_steps, kMaxEulerSteps) &&
           r.integer("horizon", 1, c.horizon);
      int64_t gain = 0;
      ok = ok && r.optional_integer("output_gain", 0, 1, 0, gain);
      c.output_gain = gain == 1;
      if (ok) return ModelConfig{c};
      break;
    }
    default:
      return corrupt("unknown architecture " + std::to_string(static_cast<uint32_t>(arch)));
  }
  return corrupt("hyper-parameter '" + r.bad() + "' is missing or out of range");
}

}  // namespace

uint32_t crc32(std::span<const uint8_t> bytes) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k)
        c = (c & 1u) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (uint8_t b : bytes)
    crc = table[(crc ^ b) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

Architecture architecture_of(const ModelConfig& config) {
  if (std::holds_alternative<DlnetConfig>(config)) return Architecture::kDlnet;
  if (std::holds_alternative<LtcConfig>(config)) return Architecture::kLtc;
  if (std::holds_alternative<StudentConfig>(config)) return Architecture::kStudent;
  return Architecture::kEulerStudent;
}

std::unique_ptr<Model<float>> build_model(const ModelConfig& config) {
  if (const auto* d = std::get_if<DlnetConfig>(&config)) {
    return std::make_unique<DlnetModel<float>>(*d);
  }
  if (const auto* l = std::get_if<LtcConfig>(&config)) {
    return std::make_unique<LtcModel<float>>(*l);
  }
  if (const auto* s = std::get_if<StudentConfig>(&config)) {
    return std::make_unique<StudentModel<float>>(*s);
  }
  return std::make_unique<EulerStudentModel<float>>(std::get<EulerStudentConfig>(config));
}

Result<std::vector<uint8_t>> encode_model(const SavedModel& model) {
  const std::unique_ptr<Model<float>> built = build_model(model.config);
  const ParameterLayout& layout = built->layout();
  if (model.params.size() != layout.size()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "The model has " + std::to_string(layout.size()) + " parameters but " +
                          std::to_string(model.params.size()) + " values were given.");
  }
  ByteWriter body;
  const Hyper hyper = hyperparameters_of(model.config);
  body.u32(static_cast<uint32_t>(hyper.size()));
  for (const auto& [name, value] : hyper) {
    write_string(body, name);
    body.f64(value);
  }
  body.f64(model.normalization.offset);
  body.f64(model.normalization.scale);
  body.u32(static_cast<uint32_t>(model.metadata.size()));
  for (const auto& [key, value] : model.metadata) {
    if (key.size() > kMaxStringBytes || value.size() > kMaxStringBytes) {
      return make_error(ErrorCode::kInvalidArgument,
                        "Metadata entry '" + key.substr(0, 64) + "' is longer than 4096 bytes.");
    }
    write_string(body, key);
    write_string(body, value);
  }
  body.u32(static_cast<uint32_t>(layout.tensors().size()));
  for (const TensorSpec& t : layout.tensors()) {
    write_string(body, t.name);
    body.u32(static_cast<uint32_t>(t.rows));
    body.u32(static_cast<uint32_t>(t.cols));
    body.array(
        std::span<const float>(model.params.data() + t.offset, static_cast<size_t>(t.size())));
  }
  ByteWriter out;
  out.reserve(kHeaderBytes + body.bytes().size() + kChecksumBytes);
  // Byte by byte: GCC 12 at -O3 misreports an insert into an empty vector as an overflow.
  for (const char c : kModelMagic)
    out.u8(static_cast<uint8_t>(c));
  out.u32(kModelFormatVersion);
  out.u32(static_cast<uint32_t>(architecture_of(model.config)));
  out.u64(static_cast<uint64_t>(body.bytes().size()));
  out.raw(body.bytes());
  out.u32(crc32(out.bytes()));
  return std::move(out.bytes());
}

namespace {

// A model file's frame: its architecture and its body, after the header's version, the body's
// size and the checksum are checked.
struct Frame {
  uint32_t arch = 0;
  std::span<const uint8_t> body;
};

Result<Frame> read_frame(std::span<const uint8_t> bytes) {
  if (bytes.size() < sizeof(kModelMagic) ||
      std::memcmp(bytes.data(), kModelMagic, sizeof(kModelMagic)) != 0) {
    return make_error(ErrorCode::kParse,
                      "Not a cyclecast model file (the first 8 bytes are not \"CCMODEL\\x1a\").");
  }
  ByteReader header(bytes.subspan(sizeof(kModelMagic)));
  const uint32_t version = header.u32();
  const uint32_t arch = header.u32();
  const uint64_t body_size = header.u64();
  if (!header.ok()) {
    return corrupt("truncated inside the 24-byte header (" + std::to_string(bytes.size()) +
                   " bytes)");
  }
  if (version > kModelFormatVersion) {
    return make_error(ErrorCode::kUnsupported,
                      "The model file has format version " + std::to_string(version) +
                          "; this build reads versions up to " +
                          std::to_string(kModelFormatVersion) + ". Upgrade cyclecast to load it.");
  }
  if (version == 0) return corrupt("format version 0 does not exist");
  const size_t available = bytes.size() - kHeaderBytes;
  if (body_size > available || available - body_size < kChecksumBytes) {
    return corrupt("truncated: the header announces " + std::to_string(body_size) +
                   " body bytes plus a 4-byte checksum, but only " + std::to_string(available) +
                   " bytes follow it");
  }
  if (available - body_size > kChecksumBytes) {
    return corrupt(std::to_string(available - body_size - kChecksumBytes) +
                   " unexpected bytes follow the checksum");
  }
  const size_t checked = kHeaderBytes + static_cast<size_t>(body_size);
  const uint32_t stored_crc = ByteReader(bytes.subspan(checked)).u32();
  const uint32_t actual_crc = crc32(bytes.first(checked));
  if (stored_crc != actual_crc) {
    char message[96];
    std::snprintf(message, sizeof(message), "checksum mismatch (stored %08x, computed %08x)",
                  stored_crc, actual_crc);
    return corrupt(message);
  }
  return Frame{arch, bytes.subspan(kHeaderBytes, static_cast<size_t>(body_size))};
}

// The hyper-parameters, the input normalization and the metadata, which precede the tensors.
Result<void> read_preamble(ByteReader& r, Hyper& hyper, SavedModel& model) {
  uint32_t count = r.u32();
  if (!r.ok() || count > 1024) return corrupt("bad hyper-parameter count");
  for (uint32_t i = 0; i < count; ++i) {
    std::string name;
    if (!read_string(r, name)) return corrupt("hyper-parameters cut short");
    const double value = r.f64();
    if (!r.ok()) return corrupt("hyper-parameters cut short");
    hyper.emplace_back(std::move(name), value);
  }
  model.normalization.offset = r.f64();
  model.normalization.scale = r.f64();
  if (!r.ok()) return corrupt("normalization cut short");
  if (!std::isfinite(model.normalization.offset) || !std::isfinite(model.normalization.scale) ||
      model.normalization.scale == 0.0) {
    return corrupt("the input normalization is not finite and non-zero");
  }
  count = r.u32();
  if (!r.ok() || count > 1024) return corrupt("bad metadata count");
  for (uint32_t i = 0; i < count; ++i) {
    std::string key;
    std::string value;
    if (!read_string(r, key) || !read_string(r, value)) return corrupt("metadata cut short");
    model.metadata[key] = std::move(value);
  }
  return {};
}

// The tensors of `layout`, in its order, into `params`; nothing may follow them.
Result<void> read_tensors(ByteReader& r, const ParameterLayout& layout, size_t body_size,
                          Vector<float>& params) {
  // Every parameter takes 4 bytes, so a layout larger than the body cannot be right; checked
  // before allocating.
  if (static_cast<uint64_t>(layout.size()) > body_size / 4) {
    return corrupt("the architecture needs more parameters than the file holds");
  }
  const uint32_t count = r.u32();
  if (!r.ok() || count != layout.tensors().size()) {
    return corrupt("the file does not hold the " + std::to_string(layout.tensors().size()) +
                   " tensors of its architecture");
  }
  params.resize(layout.size());
  for (const TensorSpec& t : layout.tensors()) {
    std::string name;
    const bool named = read_string(r, name);
    const uint32_t rows = r.u32();
    const uint32_t cols = r.u32();
    if (!named || !r.ok()) return corrupt("tensor header cut short");
    if (name != t.name || rows != t.rows || cols != t.cols) {
      return corrupt("tensor '" + name.substr(0, 64) + "' (" + std::to_string(rows) + " x " +
                     std::to_string(cols) + ") where the architecture has '" + t.name + "' (" +
                     std::to_string(t.rows) + " x " + std::to_string(t.cols) + ")");
    }
    r.array(std::span<float>(params.data() + t.offset, static_cast<size_t>(t.size())));
    if (!r.ok()) return corrupt("tensor '" + t.name + "' cut short");
  }
  if (r.remaining() != 0) return corrupt("unexpected bytes after the last tensor");
  return {};
}

}  // namespace

Result<SavedModel> decode_model(std::span<const uint8_t> bytes) {
  auto frame = read_frame(bytes);
  if (!frame) return frame.error();
  ByteReader r(frame->body);
  Hyper hyper;
  SavedModel model;
  if (auto read = read_preamble(r, hyper, model); !read) return read.error();
  auto config = config_from(static_cast<Architecture>(frame->arch), hyper);
  if (!config.ok()) return config.error();
  model.config = std::move(*config);
  const std::unique_ptr<Model<float>> built = build_model(model.config);
  if (auto read = read_tensors(r, built->layout(), frame->body.size(), model.params); !read) {
    return read.error();
  }
  return model;
}

Result<void> save_model(const std::string& path, const SavedModel& model) {
  auto bytes = encode_model(model);
  if (!bytes.ok()) return bytes.error();
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) return make_error(ErrorCode::kIo, "Cannot create " + temp + ".");
    out.write(reinterpret_cast<const char*>(bytes->data()),
              static_cast<std::streamsize>(bytes->size()));
    out.flush();
    if (!out) return make_error(ErrorCode::kIo, "Cannot write " + temp + ".");
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec)
    return make_error(ErrorCode::kIo,
                      "Cannot rename " + temp + " to " + path + ": " + ec.message() + ".");
  return {};
}

Result<SavedModel> load_model(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "Cannot open model file " + path + ".");
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  auto model = decode_model(bytes);
  if (!model.ok()) {
    return make_error(model.error().code, path + ": " + model.error().message);
  }
  return model;
}

}  // namespace cyclecast::models
