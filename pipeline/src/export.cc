#include "cyclecast/pipeline/export.h"

#include <sodium.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cassert>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <system_error>

#include "cyclecast/bounded_json.h"
#include "cyclecast/byte_order.h"
#include "cyclecast/models/model_file.h"
#include "cyclecast/pipeline/run_output.h"

namespace cyclecast::pipeline {

namespace fs = std::filesystem;

namespace {

// The feature names in the order of cc_node.h's CC_NODE_FEATURE_* ids.
const char* const kNodeFeatureNames[] = {kFeatureIrOhm, kFeatureTemperatureC,
                                         kFeatureChargeTimeMin};
constexpr size_t kNodeFeatureCount = std::size(kNodeFeatureNames);

Error corrupt(const std::string& what) {
  return make_error(ErrorCode::kCorrupt, "node-model blob: " + what);
}

bool is_version_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

bool valid_version(const std::string& version) {
  return !version.empty() && version.size() <= kMaxModelVersionLength &&
         std::all_of(version.begin(), version.end(), is_version_char);
}

// The self-test's input: a fixed pseudo-random int16 vector within a quarter of the input
// range (x = S_x * q reaches what the student was calibrated on without saturating it), and
// the student's exact output for it, computed by the one int8 runtime the node also runs.
struct SelfTest {
  std::vector<int16_t> input;
  std::vector<int32_t> output;
};

SelfTest make_selftest(const models::QuantizedStudent& student) {
  SelfTest t;
  uint32_t state = 0x9E3779B9u;
  for (size_t i = 0; i < student.input_size; ++i) {
    state = state * 1664525u + 1013904223u;  // Numerical Recipes' LCG: fixed, not random
    t.input.push_back(static_cast<int16_t>(static_cast<int32_t>(state >> 18) - 8192));
  }
  const cc_student_model view = student.model();
  t.output.assign(student.horizon, 0);
  std::vector<int16_t> scratch(cc_student_scratch_bytes(&view) / 2);
  // A model the quantizer produced passes cc_student_validate: the forward pass cannot refuse.
  [[maybe_unused]] const cc_status status = cc_student_forecast(
      &view, t.input.data(), t.output.data(), scratch.data(), scratch.size() * 2);
  assert(status == CC_OK);
  return t;
}

void write_selftest_section(ByteWriter& w, const SelfTest& t) {
  ByteWriter section;
  section.u16(static_cast<uint16_t>(t.input.size()));
  for (const int16_t x : t.input)
    section.u16(static_cast<uint16_t>(x));
  section.u16(static_cast<uint16_t>(t.output.size()));
  for (const int32_t y : t.output)
    section.i32(y);
  w.u8(kNodeModelSectionSelfTest);
  w.u32(static_cast<uint32_t>(section.bytes().size()));
  w.raw(section.bytes());
}

constexpr int32_t kMaxHalfWidth = int32_t{1} << 30;
constexpr size_t kMaxBands = 3;  // CC_NODE_MAX_BANDS

// Tag 2: u8 bands, f32 band_soh[0], band_soh[1], bands x H int32 half-widths.
void write_interval_section(ByteWriter& w, const NodeInterval& interval) {
  ByteWriter section;
  section.u8(static_cast<uint8_t>(interval.bands));
  section.f32(interval.band_soh[0]);
  section.f32(interval.band_soh[1]);
  section.array(interval.half_width);
  w.u8(kNodeModelSectionInterval);
  w.u32(static_cast<uint32_t>(section.bytes().size()));
  w.raw(section.bytes());
}

std::vector<uint8_t> encode_blob(const std::string& version, const NodeNormalization& n,
                                 std::span<const uint8_t> ccq8, const SelfTest& selftest,
                                 const NodeInterval& interval) {
  ByteWriter w;
  for (const char c : kNodeModelMagic)
    w.u8(static_cast<uint8_t>(c));
  w.u16(kNodeModelVersion);
  w.u8(static_cast<uint8_t>(version.size()));
  w.raw({reinterpret_cast<const uint8_t*>(version.data()), version.size()});
  w.u16(n.input_len);
  w.u16(n.horizon);
  w.u8(static_cast<uint8_t>(n.feature_ids.size()));
  for (const uint8_t id : n.feature_ids)
    w.u8(id);
  for (const float v :
       {n.delta_scale, n.level_offset, n.level_scale, n.amp_floor, n.log_amp_mean, n.log_amp_std})
    w.f32(v);
  for (size_t f = 0; f < n.feature_ids.size(); ++f) {
    w.f32(n.feature_mean[f]);
    w.f32(n.feature_std[f]);
  }
  w.u32(static_cast<uint32_t>(ccq8.size()));
  w.raw(ccq8);
  w.u8(interval.bands > 0 ? 2 : 1);  // sections
  write_selftest_section(w, selftest);
  if (interval.bands > 0) write_interval_section(w, interval);
  w.u32(models::crc32(w.bytes()));
  return std::move(w.bytes());
}

// What cc_node's interval_ok accepts.
Result<void> check_interval(const NodeInterval& interval, uint16_t horizon) {
  if (interval.bands == 0) return {};
  if (interval.bands > kMaxBands) return corrupt("an interval table of more than 3 bands");
  const auto [high, medium] = interval.band_soh;
  if (!(medium > 0.0f && high > medium && high <= 2.0f))
    return corrupt("interval band limits must satisfy 2 >= high > medium > 0");
  if (interval.half_width.size() != size_t{interval.bands} * horizon)
    return corrupt("the interval table is not bands x horizon");
  for (const int32_t half : interval.half_width) {
    if (half < 0 || half > kMaxHalfWidth)
      return corrupt("an interval half-width outside [0, 2^30]");
  }
  return {};
}

bool positive_finite(float v) {
  return v > 0.0f && std::isfinite(v);
}

Result<void> check_normalization(const NodeNormalization& n) {
  if (n.input_len < 1 || n.horizon < 1) return corrupt("window length and horizon must be >= 1");
  if (n.feature_ids.size() > kNodeFeatureCount) return corrupt("more than 3 features");
  for (size_t f = 0; f < n.feature_ids.size(); ++f) {
    if (n.feature_ids[f] >= kNodeFeatureCount) return corrupt("unknown feature id");
    if (std::count(n.feature_ids.begin(), n.feature_ids.end(), n.feature_ids[f]) != 1)
      return corrupt("a feature is listed twice");
    if (!std::isfinite(n.feature_mean[f]) || !positive_finite(n.feature_std[f]))
      return corrupt("a feature's mean or std is not usable");
  }
  if (!positive_finite(n.delta_scale) || !positive_finite(n.level_scale) ||
      !positive_finite(n.amp_floor) || !positive_finite(n.log_amp_std) ||
      !std::isfinite(n.level_offset) || !std::isfinite(n.log_amp_mean))
    return corrupt("a scale is not positive and finite");
  return {};
}

Result<void> check_match(const models::QuantizedStudent& s, const NodeNormalization& n) {
  const size_t expected = static_cast<size_t>(n.input_len) * (1 + n.feature_ids.size()) + 2;
  if (s.input_size != expected || s.horizon != n.horizon) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the int8 student takes " + std::to_string(s.input_size) + " inputs and " +
                          "forecasts " + std::to_string(s.horizon) + " cycles; the window " +
                          "description needs " + std::to_string(expected) + " and " +
                          std::to_string(n.horizon));
  }
  return {};
}

// --- C source generation ------------------------------------------------------------------------

std::string float_literal(float v) {
  char text[32];
  // Nine significant digits read back as the same float.
  std::snprintf(text, sizeof text, "%.8ef", static_cast<double>(v));
  return text;
}

std::string int_literal(int64_t v) {
  // INT32_MIN has no literal in C: -2147483648 is the negation of an unsigned constant.
  if (v == std::numeric_limits<int32_t>::min()) return "(-2147483647 - 1)";
  return std::to_string(v);
}

template <typename T>
void emit_array(std::ostringstream& out, const char* type, const std::string& name,
                const std::vector<T>& values) {
  out << "static const " << type << " " << name << "[" << values.size() << "] = {";
  for (size_t i = 0; i < values.size(); ++i) {
    out << (i % 16 == 0 ? "\n    " : " ") << int_literal(values[i]) << ",";
  }
  out << "\n};\n";
}

std::string header_source(const models::QuantizedStudent& s, const NodeNormalization& n,
                          const std::string& version, const std::string& sha) {
  std::ostringstream out;
  out << "/* Generated by `cyclecast export` (pipeline/export.cc): the int8 student and its input\n"
         " * normalization for the cyclecast node. Do not edit; export the training run again. */\n"
         "#ifndef CYCLECAST_MODEL_DATA_H\n#define CYCLECAST_MODEL_DATA_H\n\n"
         "#include \"cc_node.h\"\n\n";
  out << "#define CC_MODEL_VERSION \"" << version << "\"\n";
  out << "#define CC_MODEL_SHA256 \"" << sha << "\" /* of model.bin */\n";
  out << "#define CC_MODEL_INPUT_LEN " << n.input_len << " /* W */\n";
  out << "#define CC_MODEL_HORIZON " << n.horizon << " /* H */\n";
  out << "#define CC_MODEL_FEATURE_COUNT " << n.feature_ids.size() << "\n";
  out << "#define CC_MODEL_INPUT_SIZE " << s.input_size << "\n";
  out << "#define CC_MODEL_BYPASS_FEATURES " << s.features << "\n";
  out << "#define CC_MODEL_WIDTH " << s.width << "\n";
  out << "#define CC_MODEL_EULER_STEPS " << s.euler_steps << "\n";
  out << "#define CC_MODEL_SCRATCH_BYTES " << s.scratch_bytes() << "\n\n";
  out << "extern const cc_student_model cc_model_student;\n";
  out << "extern const cc_node_model cc_model;\n\n#endif\n";
  return out.str();
}

std::string data_source(const models::QuantizedStudent& s, const NodeNormalization& n,
                        const NodeInterval& interval, const std::string& version) {
  std::ostringstream out;
  out << "/* Generated by `cyclecast export` (pipeline/export.cc). Do not edit. Model " << version
      << ",\n * " << s.input_size << " inputs, " << s.features << " bypass features, width "
      << s.width << ", " << s.euler_steps << " Euler step(s), horizon " << s.horizon
      << ". Every array is const, so it stays in flash. */\n"
         "#include \"model_data.h\"\n\n";
  // The encoder's rows in pair order: the Cortex-M4 DSP kernels use the input as loaded
  // (docs/firmware.md, "DSP kernels"); the portable kernels read either layout.
  emit_array(out, "int8_t", "encoder_weight",
             models::encoder_weight_in_layout(s, CC_STUDENT_LAYOUT_ENCODER_PAIRED));
  emit_array(out, "int32_t", "encoder_multiplier", s.encoder_multiplier);
  emit_array(out, "int8_t", "encoder_shift", s.encoder_shift);
  emit_array(out, "int8_t", "lift_weight", s.lift_weight);
  emit_array(out, "int32_t", "lift_bias", s.lift_bias);
  emit_array(out, "int32_t", "lift_multiplier", s.lift_multiplier);
  emit_array(out, "int8_t", "lift_shift", s.lift_shift);
  emit_array(out, "int8_t", "liquid_weight", s.liquid_weight);
  emit_array(out, "int32_t", "liquid_bias", s.liquid_bias);
  emit_array(out, "int32_t", "liquid_multiplier", s.liquid_multiplier);
  emit_array(out, "int8_t", "liquid_shift", s.liquid_shift);
  emit_array(out, "int32_t", "liquid_alpha_q24", s.liquid_alpha_q24);
  emit_array(out, "int32_t", "liquid_beta_q24", s.liquid_beta_q24);
  emit_array(out, "int8_t", "bypass_weight", s.bypass_weight);
  emit_array(out, "int32_t", "head_bias", s.head_bias);
  emit_array(out, "int32_t", "bypass_multiplier", s.bypass_multiplier);
  emit_array(out, "int8_t", "bypass_shift", s.bypass_shift);
  emit_array(out, "int8_t", "head_weight", s.head_weight);
  emit_array(out, "int32_t", "head_multiplier", s.head_multiplier);
  emit_array(out, "int8_t", "head_shift", s.head_shift);
  out << "\nconst cc_student_model cc_model_student = {\n"
      << "    " << s.input_size << ", " << s.features << ", " << s.width << ", " << s.horizon
      << ", " << s.euler_steps << ", " << s.hidden_frac_bits
      << ", CC_STUDENT_LAYOUT_ENCODER_PAIRED, " << int_literal(s.dt_q30)
      << ",\n"
         "    encoder_weight, encoder_multiplier, encoder_shift,\n"
         "    lift_weight, lift_bias, lift_multiplier, lift_shift,\n"
         "    liquid_weight, liquid_bias, liquid_multiplier, liquid_shift, liquid_alpha_q24,\n"
         "    liquid_beta_q24,\n"
         "    bypass_weight, head_bias, bypass_multiplier, bypass_shift, head_weight,\n"
         "    head_multiplier, head_shift,\n"
         "    cc_tanh_q15_table,\n"
      << "    " << int_literal(s.input_scale_mantissa) << ", "
      << int_literal(s.input_scale_exponent) << ", " << int_literal(s.output_scale_mantissa) << ", "
      << int_literal(s.output_scale_exponent) << ",\n};\n\n";
  if (interval.bands > 0) {
    emit_array(out, "int32_t", "interval_half_width", interval.half_width);
    out << "\nstatic const cc_node_interval interval = {\n"
        << "    interval_half_width, " << interval.bands << ", /* bands x H half-widths */\n"
        << "    {" << float_literal(interval.band_soh[0]) << ", "
        << float_literal(interval.band_soh[1]) << "}, /* SOH band limits */\n};\n\n";
  }
  const auto feature = [&](const std::vector<float>& values, size_t f) {
    return f < values.size() ? float_literal(values[f]) : std::string("0.0f");
  };
  out << "const cc_node_model cc_model = {\n"
      << "    &cc_model_student,\n"
      << "    CC_MODEL_VERSION,\n    CC_MODEL_SHA256,\n"
      << "    " << n.input_len << ", " << n.horizon << ", " << n.feature_ids.size() << ",\n"
      << "    {";
  for (size_t f = 0; f < 3; ++f)
    out << (f ? ", " : "") << (f < n.feature_ids.size() ? int(n.feature_ids[f]) : 0);
  out << "},\n"
      << "    " << float_literal(n.delta_scale) << ", /* delta_scale */\n"
      << "    " << float_literal(n.level_offset) << ", " << float_literal(n.level_scale)
      << ", /* level offset, scale */\n"
      << "    " << float_literal(n.amp_floor) << ", /* amp_floor */\n"
      << "    " << float_literal(n.log_amp_mean) << ", " << float_literal(n.log_amp_std)
      << ", /* log amplitude mean, std */\n"
      << "    {" << feature(n.feature_mean, 0) << ", " << feature(n.feature_mean, 1) << ", "
      << feature(n.feature_mean, 2) << "},\n"
      << "    {" << feature(n.feature_std, 0) << ", " << feature(n.feature_std, 1) << ", "
      << feature(n.feature_std, 2) << "},\n"
      << "    " << (interval.bands > 0 ? "&interval" : "NULL") << ", /* interval table */\n};\n";
  return out.str();
}

Result<std::vector<uint8_t>> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot open " + path.string());
  std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
  if (in.bad()) return make_error(ErrorCode::kIo, "cannot read " + path.string());
  return bytes;
}

Result<void> write_file(const fs::path& path, std::span<const uint8_t> bytes) {
  const fs::path partial = path.string() + ".partial";
  std::ofstream out(partial, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  std::error_code ec;
  if (!out) {
    fs::remove(partial, ec);
    return make_error(ErrorCode::kIo, "could not write " + path.string());
  }
  fs::rename(partial, path, ec);
  if (ec)
    return make_error(ErrorCode::kIo, "could not write " + path.string() + ": " + ec.message());
  return {};
}

Result<void> write_text(const fs::path& path, const std::string& text) {
  return write_file(path, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

// The cost constants by their JSON names: integers and doubles.
struct CostFields {
  std::vector<std::pair<const char*, int64_t*>> integers;
  std::vector<std::pair<const char*, double*>> reals;
};

CostFields cost_fields(models::CostConstants& c) {
  return {{{"runtime_code_bytes", &c.runtime_code_bytes},
           {"tanh_table_bytes", &c.tanh_table_bytes},
           {"descriptor_bytes", &c.descriptor_bytes},
           {"stack_bytes", &c.stack_bytes},
           {"cycles_per_row", &c.cycles_per_row},
           {"cycles_per_tanh", &c.cycles_per_tanh},
           {"cycles_per_euler_unit", &c.cycles_per_euler_unit},
           {"cycles_fixed", &c.cycles_fixed}},
          {{"cycles_per_mac", &c.cycles_per_mac},
           {"cycles_per_encoder_mac", &c.cycles_per_encoder_mac},
           {"clock_hz", &c.clock_hz}}};
}

}  // namespace

Result<models::CostConstants> read_cost_file(const fs::path& path) {
  auto bytes = read_file(path);
  if (!bytes) return bytes.error();
  const auto bad = [&](const std::string& what) {
    return make_error(ErrorCode::kParse, path.string() + ": " + what);
  };
  auto parsed = parse_bounded_json(
      std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()), bytes->size());
  if (!parsed) return bad(parsed.error().message);
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) return bad("not a JSON object");
  if (!j.contains("format") || !j["format"].is_number_integer()) return bad("no integer 'format'");
  if (j["format"].get<int64_t>() != 1) {
    return make_error(ErrorCode::kUnsupported, path.string() + ": cost file format " +
                                                   j["format"].dump() + " (this build reads 1)");
  }
  models::CostConstants c;
  CostFields fields = cost_fields(c);
  for (const auto& [key, value] : j.items()) {
    if (key == "format" || key == "source") continue;
    bool known = false;
    for (auto& [name, target] : fields.integers) {
      if (key != name) continue;
      if (!value.is_number_integer() || value.get<int64_t>() < 0)
        return bad("'" + key + "' must be a non-negative integer");
      *target = value.get<int64_t>();
      known = true;
    }
    for (auto& [name, target] : fields.reals) {
      if (key != name) continue;
      if (!value.is_number() || !(value.get<double>() > 0.0))
        return bad("'" + key + "' must be a positive number");
      *target = value.get<double>();
      known = true;
    }
    if (!known) return bad("unknown key '" + key + "'");
  }
  // Files from before the encoder had its own figure priced every MAC alike.
  if (!j.contains("cycles_per_encoder_mac")) c.cycles_per_encoder_mac = c.cycles_per_mac;
  return c;
}

std::string cost_file_json(const models::CostConstants& constants, const std::string& source) {
  models::CostConstants c = constants;
  nlohmann::ordered_json j;
  j["format"] = 1;
  j["source"] = source;
  CostFields fields = cost_fields(c);
  for (const auto& [name, value] : fields.integers)
    j[name] = *value;
  for (const auto& [name, value] : fields.reals)
    j[name] = *value;
  return j.dump(2) + "\n";
}

std::string sha256_hex(std::span<const uint8_t> bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, bytes.data(), bytes.size());
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 0xF];
  }
  return out;
}

Result<NodeNormalization> node_normalization(const FeatureSpec& spec) {
  constexpr int64_t kMax = std::numeric_limits<uint16_t>::max();
  if (spec.input_len < 1 || spec.input_len > kMax || spec.horizon < 1 || spec.horizon > kMax) {
    return make_error(ErrorCode::kInvalidArgument,
                      "window length and horizon must be within 1..65535 for the node");
  }
  NodeNormalization n;
  n.input_len = static_cast<uint16_t>(spec.input_len);
  n.horizon = static_cast<uint16_t>(spec.horizon);
  n.delta_scale = static_cast<float>(spec.delta_scale);
  n.level_offset = static_cast<float>(spec.level_offset);
  n.level_scale = static_cast<float>(spec.level_scale);
  n.amp_floor = static_cast<float>(spec.amp_floor);
  n.log_amp_mean = static_cast<float>(spec.log_amp_mean);
  n.log_amp_std = static_cast<float>(spec.log_amp_std);
  for (const FeatureStats& f : spec.features) {
    const auto* known = std::find_if(std::begin(kNodeFeatureNames), std::end(kNodeFeatureNames),
                                     [&](const char* name) { return f.name == name; });
    if (known == std::end(kNodeFeatureNames)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "feature '" + f.name + "' is not one the node knows");
    }
    n.feature_ids.push_back(static_cast<uint8_t>(known - std::begin(kNodeFeatureNames)));
    n.feature_mean.push_back(static_cast<float>(f.mean));
    n.feature_std.push_back(static_cast<float>(f.std));
  }
  if (auto checked = check_normalization(n); !checked) {
    return make_error(ErrorCode::kInvalidArgument, checked.error().message);
  }
  return n;
}

NodeInterval node_interval(const models::QuantizedStudent& student) {
  NodeInterval interval;
  if (student.interval_half_width.empty()) return interval;
  interval.bands = 1;
  interval.half_width = student.interval_half_width;
  return interval;
}

Result<ExportedModel> export_model(const models::QuantizedStudent& student, const FeatureSpec& spec,
                                   const std::string& version) {
  if (!valid_version(version)) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "model version '" + version + "' must be 1 to 32 characters from [A-Za-z0-9_.-]");
  }
  auto normalization = node_normalization(spec);
  if (!normalization) return normalization.error();
  if (auto matched = check_match(student, *normalization); !matched) return matched.error();
  const NodeInterval interval = node_interval(student);
  if (auto checked = check_interval(interval, normalization->horizon); !checked)
    return make_error(ErrorCode::kInvalidArgument, checked.error().message);
  // The table travels once, in the blob's interval section, in the node's form: the embedded
  // student is written without it.
  models::QuantizedStudent bare = student;
  bare.interval_half_width.clear();
  ExportedModel out;
  out.version = version;
  out.blob =
      encode_blob(version, *normalization,
                  models::serialize_quantized_student(bare, CC_STUDENT_LAYOUT_ENCODER_PAIRED),
                  make_selftest(bare), interval);
  out.sha256_hex = sha256_hex(out.blob);
  out.model_data_h = header_source(student, *normalization, version, out.sha256_hex);
  out.model_data_c = data_source(student, *normalization, interval, version);
  return out;
}

Result<ExportedModel> export_run(const fs::path& run_dir, const std::string& version) {
  auto blob = read_file(run_dir / RunFiles::kStudentInt8);
  if (!blob) return blob.error();
  auto student = models::deserialize_quantized_student(*blob);
  if (!student) {
    return make_error(student.error().code,
                      (run_dir / RunFiles::kStudentInt8).string() + ": " + student.error().message);
  }
  auto saved = models::load_model((run_dir / RunFiles::kStudent).string());
  if (!saved) return saved.error();
  auto spec = FeatureSpec::from_metadata(saved->metadata);
  if (!spec) return spec.error();
  return export_model(*student, *spec, version);
}

Result<void> write_exported_model(const ExportedModel& model, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return make_error(ErrorCode::kIo, "could not create " + dir.string() + ": " + ec.message());
  if (auto w = write_text(dir / "model_data.h", model.model_data_h); !w) return w;
  if (auto w = write_text(dir / "model_data.c", model.model_data_c); !w) return w;
  return write_file(dir / "model.bin", model.blob);
}

namespace {

// The self-test section: u16 I, I int16, u16 H, H int32; the output must be the student's own.
Result<void> read_selftest(std::span<const uint8_t> bytes, NodeModel& m) {
  ByteReader in(bytes);
  const uint16_t inputs = in.u16();
  if (inputs != m.student.input_size) return corrupt("self-test input size");
  for (uint16_t i = 0; i < inputs; ++i)
    m.selftest_input.push_back(static_cast<int16_t>(in.u16()));
  const uint16_t outputs = in.u16();
  if (outputs != m.student.horizon) return corrupt("self-test output size");
  m.selftest_output.resize(outputs);
  in.array(std::span(m.selftest_output));
  if (!in.ok() || in.remaining() != 0) return corrupt("self-test section size");
  const cc_student_model view = m.student.model();
  std::vector<int32_t> output(outputs);
  std::vector<int16_t> scratch(cc_student_scratch_bytes(&view) / 2);
  if (cc_student_forecast(&view, m.selftest_input.data(), output.data(), scratch.data(),
                          scratch.size() * 2) != CC_OK ||
      output != m.selftest_output)
    return corrupt("the self-test's output is not the student's");
  return {};
}

// The interval section (tag 2): u8 bands (1..3), f32 band_soh[0], band_soh[1], then bands x H
// int32 half-widths; check_interval checks the values.
Result<void> read_interval_section(std::span<const uint8_t> bytes, uint16_t horizon,
                                   NodeInterval& interval) {
  ByteReader in(bytes);
  interval.bands = in.u8();
  interval.band_soh = {in.f32(), in.f32()};
  if (!in.ok() || interval.bands < 1 || interval.bands > kMaxBands)
    return corrupt("bad interval section");
  interval.half_width.resize(size_t{interval.bands} * horizon);
  in.array(std::span(interval.half_width));
  if (!in.ok() || in.remaining() != 0) return corrupt("interval section size");
  return {};
}

}  // namespace

Result<NodeModel> read_node_model(std::span<const uint8_t> blob) {
  if (blob.size() < 4 ||
      !std::equal(std::begin(kNodeModelMagic), std::end(kNodeModelMagic), blob.begin(),
                  [](char a, uint8_t b) { return static_cast<uint8_t>(a) == b; })) {
    return make_error(ErrorCode::kParse, "not a node-model blob (magic is not CCNM)");
  }
  ByteReader in(blob.subspan(4));
  const uint16_t format = in.u16();
  if (!in.ok()) return corrupt("truncated header");
  if (format != 1 && format != kNodeModelVersion) {
    return make_error(ErrorCode::kUnsupported, "node-model blob version " + std::to_string(format) +
                                                   " is not supported (this build reads 1 and 2)");
  }
  if (blob.size() < 4 + 4) return corrupt("truncated");
  const auto body = blob.first(blob.size() - 4);
  if (ByteReader(blob.subspan(blob.size() - 4)).u32() != models::crc32(body))
    return corrupt("CRC mismatch");
  NodeModel m;
  const uint8_t version_length = in.u8();
  const auto version = in.raw(version_length);
  m.version.assign(version.begin(), version.end());
  NodeNormalization& n = m.normalization;
  n.input_len = in.u16();
  n.horizon = in.u16();
  const uint8_t features = in.u8();
  if (!in.ok() || features > kNodeFeatureCount) return corrupt("bad header");
  for (uint8_t f = 0; f < features; ++f)
    n.feature_ids.push_back(in.u8());
  for (float* v : {&n.delta_scale, &n.level_offset, &n.level_scale, &n.amp_floor, &n.log_amp_mean,
                   &n.log_amp_std})
    *v = in.f32();
  for (uint8_t f = 0; f < features; ++f) {
    n.feature_mean.push_back(in.f32());
    n.feature_std.push_back(in.f32());
  }
  const uint32_t student_bytes = in.u32();
  const auto ccq8 = in.raw(student_bytes);
  std::span<const uint8_t> selftest;
  if (format == 2) {
    const uint8_t sections = in.u8();
    for (uint8_t i = 0; i < sections && in.ok(); ++i) {
      const uint8_t tag = in.u8();
      const auto section = in.raw(in.u32());
      if (tag == kNodeModelSectionSelfTest) {
        if (!selftest.empty()) return corrupt("two self-test sections");
        selftest = section;
      } else if (tag == kNodeModelSectionInterval) {
        if (m.interval.bands != 0) return corrupt("two interval sections");
        if (auto read = read_interval_section(section, n.horizon, m.interval); !read)
          return read.error();
      }  // any other tag: a later section this build ignores
    }
  }
  if (!in.ok() || in.remaining() != 4) return corrupt("sizes do not add up to the blob's length");
  if (!valid_version(m.version)) return corrupt("bad model version");
  if (auto checked = check_normalization(n); !checked) return checked.error();
  auto student = models::deserialize_quantized_student(ccq8);
  if (!student) return corrupt("embedded student: " + student.error().message);
  if (auto matched = check_match(*student, n); !matched) return corrupt(matched.error().message);
  const bool interval_section = m.interval.bands != 0;
  if (interval_section && !student->interval_half_width.empty())
    return corrupt("two interval tables (the section and the embedded student's)");
  // Exported before the interval section: the table (if any) is the embedded student's.
  if (!interval_section) m.interval = node_interval(*student);
  if (auto checked = check_interval(m.interval, n.horizon); !checked) return checked.error();
  student->interval_half_width.clear();
  m.student = std::move(*student);
  if (!selftest.empty()) {
    if (auto read = read_selftest(selftest, m); !read) return read.error();
  }
  m.sha256_hex = sha256_hex(blob);
  return m;
}

}  // namespace cyclecast::pipeline
