#include "cyclecast/lifecycle/manifest.h"

#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "cyclecast/bounded_json.h"
#include "cyclecast/lifecycle/archive.h"

namespace cyclecast::bundle {
namespace {

using Json = nlohmann::ordered_json;

Json optional_json(const std::optional<double>& value) {
  return value && std::isfinite(*value) ? Json(*value) : Json(nullptr);
}
Json optional_json(const std::optional<int64_t>& value) {
  return value ? Json(*value) : Json(nullptr);
}
Json optional_json(const std::optional<std::string>& value) {
  return value ? Json(*value) : Json(nullptr);
}

Json files_json(const std::vector<FileEntry>& files) {
  Json out = Json::array();
  for (const FileEntry& f : files)
    out.push_back(Json{{"path", f.path}, {"sha256", f.sha256}, {"size", f.size}});
  return out;
}

Json heldout_json(const HeldoutMetrics& m) {
  return Json{{"mae", optional_json(m.mae)},
              {"mae_10", optional_json(m.mae_10)},
              {"mae_100", optional_json(m.mae_100)},
              {"rmse", optional_json(m.rmse)},
              {"eol_error_cycles", optional_json(m.eol_error_cycles)},
              {"windows", m.windows},
              {"eol_windows", m.eol_windows}};
}

Json footprint_json(const Footprint& f) {
  return Json{{"kind", f.kind},
              {"method", f.method},
              {"flash_bytes", optional_json(f.flash_bytes)},
              {"ram_bytes", optional_json(f.ram_bytes)},
              {"stack_bytes", optional_json(f.stack_bytes)},
              {"instructions", optional_json(f.instructions)},
              {"cycles", optional_json(f.cycles)}};
}

// Reads one JSON object field by field, remembering the first error and the keys it consumed,
// so finish() can refuse keys nobody asked for. `where` names the object in messages.
class ObjectReader {
 public:
  ObjectReader(const Json& object, std::string where) : object_(object), where_(std::move(where)) {
    if (!object_.is_object()) fail(where_ + " is not an object");
  }

  const Json* field(const std::string& key) {
    if (error_ || !object_.is_object()) return nullptr;
    seen_.insert(key);
    const auto it = object_.find(key);
    if (it == object_.end()) {
      fail("missing field " + name(key));
      return nullptr;
    }
    return &*it;
  }
  std::string text(const std::string& key) {
    const Json* v = field(key);
    if (v == nullptr) return {};
    if (!v->is_string()) fail(name(key) + " is not a string");
    return v->is_string() ? v->get<std::string>() : std::string();
  }
  int64_t integer(const std::string& key, int64_t min, int64_t max) {
    const std::optional<int64_t> v = optional_integer(key, min, max);
    if (!v && !error_) fail(name(key) + " is null; an integer is required");
    return v.value_or(0);
  }
  std::optional<int64_t> optional_integer(const std::string& key, int64_t min, int64_t max) {
    const Json* v = field(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_number_integer()) {
      fail(name(key) + " is not an integer");
      return std::nullopt;
    }
    // nlohmann keeps non-negative literals as unsigned: compare in that domain first.
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max)) {
      fail(name(key) + " is out of range [" + std::to_string(min) + ", " + std::to_string(max) +
           "]");
      return std::nullopt;
    }
    const int64_t value = v->get<int64_t>();
    if (value < min || value > max) {
      fail(name(key) + " is out of range [" + std::to_string(min) + ", " + std::to_string(max) +
           "]");
      return std::nullopt;
    }
    return value;
  }
  std::optional<double> optional_number(const std::string& key) {
    const Json* v = field(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_number()) fail(name(key) + " is not a number");
    return v->is_number() ? std::optional<double>(v->get<double>()) : std::nullopt;
  }
  std::optional<std::string> optional_text(const std::string& key) {
    const Json* v = field(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_string()) fail(name(key) + " is not a string");
    return v->is_string() ? std::optional<std::string>(v->get<std::string>()) : std::nullopt;
  }
  // Refuses keys no reader asked for; returns the first error, if any.
  Result<void> finish() {
    if (!error_ && object_.is_object()) {
      for (const auto& [key, value] : object_.items()) {
        if (seen_.count(key) == 0) {
          fail("unknown field " + name(key));
          break;
        }
      }
    }
    if (error_) return *error_;
    return {};
  }
  void fail(const std::string& message) {
    if (!error_) error_ = make_error(ErrorCode::kParse, "manifest: " + message);
  }
  bool failed() const { return error_.has_value(); }
  std::string name(const std::string& key) const { return "'" + where_ + key + "'"; }
  const std::string& where() const { return where_; }

 private:
  const Json& object_;
  std::string where_;  // "" for the top level, "footprint." for a nested object
  std::set<std::string> seen_;
  std::optional<Error> error_;
};

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();

bool is_hex_digest(const std::string& text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

Result<void> read_nested(const Json* value, const std::string& where,
                         const std::function<void(ObjectReader&)>& read) {
  if (value == nullptr) return {};
  ObjectReader r(*value, where);
  read(r);
  return r.finish();
}

Result<std::vector<FileEntry>> read_files(const Json& value) {
  if (!value.is_array()) return make_error(ErrorCode::kParse, "manifest: 'files' is not an array");
  std::vector<FileEntry> files;
  std::set<std::string> paths;
  for (size_t i = 0; i < value.size(); ++i) {
    ObjectReader r(value[i], "files[" + std::to_string(i) + "].");
    FileEntry f;
    f.path = r.text("path");
    f.sha256 = r.text("sha256");
    f.size = static_cast<uint64_t>(r.integer("size", 0, kMaxInt));
    if (auto ok = r.finish(); !ok) return ok.error();
    if (auto ok = check_member_name(f.path); !ok) {
      return make_error(ErrorCode::kParse, "manifest: " + ok.error().message);
    }
    if (f.path == "manifest.json" || f.path == "manifest.sig" || !paths.insert(f.path).second) {
      return make_error(ErrorCode::kParse, "manifest: file '" + f.path + "' is listed twice");
    }
    if (!is_hex_digest(f.sha256)) {
      return make_error(ErrorCode::kParse, "manifest: 'files[" + std::to_string(i) +
                                               "].sha256' is not 64 lower-case hex digits");
    }
    files.push_back(std::move(f));
  }
  return files;
}

Result<std::map<std::string, std::string>> read_string_map(const Json* value) {
  std::map<std::string, std::string> out;
  if (value == nullptr) return out;
  if (!value->is_object()) {
    return make_error(ErrorCode::kParse, "manifest: 'feature_spec' is not an object");
  }
  for (const auto& [key, item] : value->items()) {
    if (!item.is_string()) {
      return make_error(ErrorCode::kParse, "manifest: 'feature_spec." + key + "' is not a string");
    }
    out[key] = item.get<std::string>();
  }
  return out;
}

// Everything after the format version, which parse_manifest checks first.
Result<Manifest> read_body(ObjectReader& top) {
  Manifest m;
  m.model_version = top.text("model_version");
  m.created_at = top.text("created_at");
  m.signing_key_id = top.text("signing_key_id");
  auto run = read_nested(top.field("training_run"), "training_run.", [&m](ObjectReader& r) {
    m.training_run.run_id = r.text("run_id");
    m.training_run.protocol = r.text("protocol");
    m.training_run.candidate = r.text("candidate");
  });
  if (!run) return run.error();
  auto data = read_nested(top.field("data_snapshot"), "data_snapshot.", [&m](ObjectReader& r) {
    m.data_snapshot.source = r.text("source");
    m.data_snapshot.digest = r.optional_text("digest");
    m.data_snapshot.digest_of = r.text("digest_of");
  });
  if (!data) return data.error();
  m.window = top.integer("window", 1, 1'000'000);
  m.horizon = top.integer("horizon", 1, 1'000'000);
  auto spec = read_string_map(top.field("feature_spec"));
  if (!spec) return spec.error();
  m.feature_spec = std::move(*spec);
  auto heldout =
      read_nested(top.field("heldout_metrics"), "heldout_metrics.", [&m](ObjectReader& r) {
        HeldoutMetrics& h = m.heldout;
        h.mae = r.optional_number("mae");
        h.mae_10 = r.optional_number("mae_10");
        h.mae_100 = r.optional_number("mae_100");
        h.rmse = r.optional_number("rmse");
        h.eol_error_cycles = r.optional_number("eol_error_cycles");
        h.windows = r.integer("windows", 0, kMaxInt);
        h.eol_windows = r.integer("eol_windows", 0, kMaxInt);
      });
  if (!heldout) return heldout.error();
  auto footprint = read_nested(top.field("footprint"), "footprint.", [&m](ObjectReader& r) {
    Footprint& f = m.footprint;
    f.kind = r.text("kind");
    if (!r.failed() && f.kind != "measured" && f.kind != "estimate") {
      r.fail("'footprint.kind' is '" + f.kind + "'; expected 'measured' or 'estimate'");
    }
    f.method = r.text("method");
    f.flash_bytes = r.optional_integer("flash_bytes", 0, kMaxInt);
    f.ram_bytes = r.optional_integer("ram_bytes", 0, kMaxInt);
    f.stack_bytes = r.optional_integer("stack_bytes", 0, kMaxInt);
    f.instructions = r.optional_integer("instructions", 0, kMaxInt);
    f.cycles = r.optional_integer("cycles", 0, kMaxInt);
  });
  if (!footprint) return footprint.error();
  m.runtime_abi_version = top.integer("runtime_abi_version", 1, 65535);
  const Json* files = top.field("files");
  if (auto ok = top.finish(); !ok) return ok.error();
  auto entries = read_files(*files);
  if (!entries) return entries.error();
  m.files = std::move(*entries);
  if (auto ok = check_model_version(m.model_version); !ok) {
    return make_error(ErrorCode::kParse, "manifest: 'model_version': " + ok.error().message);
  }
  return m;
}

}  // namespace

Result<void> check_model_version(std::string_view version) {
  const bool good_chars =
      version.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
      std::string_view::npos;
  if (version.empty() || version.size() > 32 || version.front() == '.' || !good_chars) {
    return make_error(ErrorCode::kInvalidArgument,
                      "model version '" + std::string(version) +
                          "' must be 1 to 32 characters of [A-Za-z0-9._-], not starting with '.'");
  }
  return {};
}

std::string manifest_json(const Manifest& m) {
  Json j{{"format", kManifestFormat},
         {"format_version", m.format_version},
         {"model_version", m.model_version},
         {"created_at", m.created_at},
         {"signing_key_id", m.signing_key_id},
         {"training_run", Json{{"run_id", m.training_run.run_id},
                               {"protocol", m.training_run.protocol},
                               {"candidate", m.training_run.candidate}}},
         {"data_snapshot", Json{{"source", m.data_snapshot.source},
                                {"digest", optional_json(m.data_snapshot.digest)},
                                {"digest_of", m.data_snapshot.digest_of}}},
         {"window", m.window},
         {"horizon", m.horizon},
         {"feature_spec", Json(m.feature_spec)},
         {"heldout_metrics", heldout_json(m.heldout)},
         {"footprint", footprint_json(m.footprint)},
         {"runtime_abi_version", m.runtime_abi_version},
         {"files", files_json(m.files)}};
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Result<Manifest> parse_manifest(std::string_view text) {
  if (text.size() > kMaxManifestBytes) {
    return make_error(ErrorCode::kParse,
                      "manifest: larger than " + std::to_string(kMaxManifestBytes) + " bytes");
  }
  auto parsed = parse_bounded_json(text, kMaxManifestBytes);
  if (!parsed) {
    return make_error(ErrorCode::kParse, "manifest: " + parsed.error().message);
  }
  const Json root(*parsed);
  ObjectReader top(root, "");
  const std::string format = top.text("format");
  if (!top.failed() && format != kManifestFormat) {
    top.fail("'format' is '" + format + "'; expected '" + kManifestFormat + "'");
  }
  const Json* version = top.field("format_version");
  if (top.failed()) return top.finish().error();
  if (!version->is_number_integer() || *version != kBundleFormatVersion) {
    return make_error(ErrorCode::kUnsupported, "unknown bundle format version " + version->dump() +
                                                   "; this cyclecast reads version " +
                                                   std::to_string(kBundleFormatVersion));
  }
  return read_body(top);
}

std::optional<std::string> peek_signing_key_id(std::string_view text) {
  if (text.size() > kMaxManifestBytes) return std::nullopt;
  auto root = parse_bounded_json(text, kMaxManifestBytes);
  if (!root || !root->is_object()) return std::nullopt;
  const auto it = root->find("signing_key_id");
  if (it == root->end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace cyclecast::bundle
