// Manifest validation for the C++ runtime (see manifest_check.hpp). Every function here has
// its twin in rapsam_edge/contract/schema.py or _manifest_parse.py, named in its comment;
// keep the order of the checks and the wording identical.
#include "manifest_check.hpp"

#include <charconv>
#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>
#include <vector>

#include "bundle.hpp"
#include "rapsam_contract.hpp"
#include "rapsam_manifest_schema.hpp"

namespace rapsam::manifest {
namespace {

using Error = std::optional<std::pair<std::string, std::string>>;
constexpr size_t kMaxText = 40;  // bytes of a string value quoted in a message

[[noreturn]] void bad(const std::string& where, const std::string& what) {
    throw BundleError(where + ": " + what);
}

// Python's repr() of a float: shortest round-trip digits, fixed notation for decimal
// exponents in [-4, 16), else d.ddde+XX.
std::string py_float(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    std::string s(buf, r.ptr);
    std::string sign;
    if (s[0] == '-') {
        sign = "-";
        s.erase(0, 1);
    }
    const size_t e = s.find('e');
    const int exp = std::stoi(s.substr(e + 1));
    std::string digits;
    for (char c : s.substr(0, e))
        if (c != '.') digits += c;
    std::string out;
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            while (digits.size() < static_cast<size_t>(exp) + 1) digits += '0';
            const std::string frac = digits.substr(static_cast<size_t>(exp) + 1);
            out = digits.substr(0, static_cast<size_t>(exp) + 1) + "." +
                  (frac.empty() ? "0" : frac);
        } else {
            out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
        }
    } else {
        out = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "") + "e" +
              (exp < 0 ? "-" : "+") + (std::abs(exp) < 10 ? "0" : "") +
              std::to_string(std::abs(exp));
    }
    return sign + out;
}

std::string type_of(const Json& v) {
    switch (v.type()) {
        case Json::value_t::null:
            return "null";
        case Json::value_t::boolean:
            return "boolean";
        case Json::value_t::number_integer:
        case Json::value_t::number_unsigned:
            return "integer";
        case Json::value_t::number_float:
            return "number";
        case Json::value_t::string:
            return "string";
        case Json::value_t::array:
            return "array";
        case Json::value_t::object:
            return "object";
        default:
            return "binary";
    }
}

std::string num(const Json& x) {
    return x.is_number_float() ? py_float(x.get<double>()) : x.dump();
}

long double as_long_double(const Json& x) {
    if (x.is_number_unsigned()) return static_cast<long double>(x.get<uint64_t>());
    if (x.is_number_integer()) return static_cast<long double>(x.get<int64_t>());
    return static_cast<long double>(x.get<double>());
}

bool is_identifier(const std::string& key) {
    if (key.empty() || std::isdigit(static_cast<unsigned char>(key[0]))) return false;
    for (unsigned char c : key)
        if (!(std::isalnum(c) || c == '_') || c >= 0x80) return false;
    return true;
}

// schema.py child_path
std::string child_path(const std::string& path, const std::string& key) {
    return is_identifier(key) ? path + "." + key : path + "[" + Json(key).dump() + "]";
}

bool is_type(const Json& v, const std::string& t) {
    const std::string vt = type_of(v);
    return vt == t || (t == "number" && vt == "integer");
}

bool equal(const Json& a, const Json& b) { return type_of(a) == type_of(b) && a == b; }

const std::regex& regex_of(const std::string& pattern) {
    static std::map<std::string, std::regex> cache;
    auto it = cache.find(pattern);
    if (it == cache.end()) it = cache.emplace(pattern, std::regex(pattern)).first;
    return it->second;
}

const std::set<std::string>& keywords() {
    static const std::set<std::string> k = {
        "$schema",       "$id",           "$comment",
        "title",         "$defs",         "description",
        "$ref",          "type",          "const",
        "enum",          "minimum",       "maximum",
        "minLength",     "maxLength",     "pattern",
        "minItems",      "maxItems",      "items",
        "required",      "properties",    "additionalProperties",
        "propertyNames", "minProperties", "maxProperties"};
    return k;
}

Error walk(const Json& v, const Json& s, const Json& root, const std::string& path);

Error walk_string(const std::string& v, const Json& s, const std::string& path) {
    const size_t n = v.size();
    if (s.contains("minLength") && n < s["minLength"].get<size_t>())
        return std::make_pair(path, n == 0 ? std::string("empty string")
                                           : std::to_string(n) + " bytes < " + num(s["minLength"]));
    if (s.contains("maxLength") && n > s["maxLength"].get<size_t>())
        return std::make_pair(path, std::to_string(n) + " bytes > " + num(s["maxLength"]));
    if (s.contains("pattern")) {
        const std::string pattern = s["pattern"].get<std::string>();
        if (!std::regex_search(v, regex_of(pattern))) {
            if (s.contains("description"))
                return std::make_pair(path,
                                      render(v) + " is not " + s["description"].get<std::string>());
            return std::make_pair(path, render(v) + " does not match " + pattern);
        }
    }
    return std::nullopt;
}

Error walk_number(const Json& v, const Json& s, const std::string& path) {
    if (v.is_number_float() && !std::isfinite(v.get<double>()))
        return std::make_pair(path, render(v) + " is not finite");
    const long double x = as_long_double(v);
    if (s.contains("minimum") && x < as_long_double(s["minimum"]))
        return std::make_pair(path, render(v) + " < " + num(s["minimum"]));
    if (s.contains("maximum") && x > as_long_double(s["maximum"]))
        return std::make_pair(path, render(v) + " > " + num(s["maximum"]));
    return std::nullopt;
}

Error walk_array(const Json& v, const Json& s, const Json& root, const std::string& path) {
    const size_t n = v.size();
    const bool has_lo = s.contains("minItems"), has_hi = s.contains("maxItems");
    const size_t lo = has_lo ? s["minItems"].get<size_t>() : 0;
    const size_t hi = has_hi ? s["maxItems"].get<size_t>() : 0;
    if (has_lo && has_hi && lo == hi && n != lo)
        return std::make_pair(path, "expected " + std::to_string(lo) + " values, got " +
                                        std::to_string(n));
    if (has_lo && n < lo)
        return std::make_pair(path, std::to_string(n) + " items < " + std::to_string(lo));
    if (has_hi && n > hi)
        return std::make_pair(path, std::to_string(n) + " items > " + std::to_string(hi));
    if (s.contains("items"))
        for (size_t i = 0; i < n; ++i)
            if (auto err = walk(v[i], s["items"], root, path + "[" + std::to_string(i) + "]"))
                return err;
    return std::nullopt;
}

Error walk_object(const Json& v, const Json& s, const Json& root, const std::string& path) {
    if (s.contains("minProperties") && v.size() < s["minProperties"].get<size_t>())
        return std::make_pair(path, v.empty() ? std::string("empty")
                                              : std::to_string(v.size()) + " keys < " +
                                                    num(s["minProperties"]));
    if (s.contains("maxProperties") && v.size() > s["maxProperties"].get<size_t>())
        return std::make_pair(path,
                              std::to_string(v.size()) + " keys > " + num(s["maxProperties"]));
    if (s.contains("required"))
        for (const auto& key : s["required"])
            if (!v.contains(key.get<std::string>()))
                return std::make_pair(child_path(path, key.get<std::string>()),
                                      std::string("missing"));
    static const Json kEmpty = Json::object();
    const Json& props = s.contains("properties") ? s["properties"] : kEmpty;
    for (const auto& [key, sub] : props.items())
        if (v.contains(key))
            if (auto err = walk(v[key], sub, root, child_path(path, key))) return err;
    const Json extra = s.contains("additionalProperties") ? s["additionalProperties"] : Json(true);
    for (const auto& [key, item] : v.items()) {
        const std::string where = child_path(path, key);
        if (s.contains("propertyNames"))
            if (auto err = walk(Json(key), s["propertyNames"], root, where))
                return std::make_pair(where, "key: " + err->second);
        if (props.contains(key)) continue;
        if (extra.is_boolean() && !extra.get<bool>()) {
            std::string known;
            for (const auto& [k, unused] : props.items())
                known += (known.empty() ? "" : ", ") + render(Json(k));
            return std::make_pair(where, "unknown key; known [" + known + "]");
        }
        if (extra.is_object())
            if (auto err = walk(item, extra, root, where)) return err;
    }
    return std::nullopt;
}

// schema.py _walk
Error walk(const Json& v, const Json& s, const Json& root, const std::string& path) {
    for (const auto& [key, unused] : s.items())
        if (!keywords().count(key))
            throw std::logic_error("schema keyword " + key + " not supported");
    if (s.contains("$ref")) {
        const std::string ref = s["$ref"].get<std::string>();
        const std::string prefix = "#/$defs/";
        if (ref.rfind(prefix, 0) != 0)
            throw std::logic_error("schema $ref " + ref + " not supported");
        if (auto err = walk(v, root["$defs"][ref.substr(prefix.size())], root, path)) return err;
    }
    if (s.contains("type")) {
        std::vector<std::string> types;
        if (s["type"].is_array())
            for (const auto& t : s["type"]) types.push_back(t.get<std::string>());
        else
            types.push_back(s["type"].get<std::string>());
        bool ok = false;
        std::string names;
        for (const auto& t : types) {
            ok = ok || is_type(v, t);
            names += (names.empty() ? "" : " or ") + t;
        }
        if (!ok)
            return std::make_pair(path,
                                  "expected " + names + ", got " + type_of(v) + " " + render(v));
    }
    Error err;
    if (v.is_string())
        err = walk_string(v.get<std::string>(), s, path);
    else if (v.is_number())
        err = walk_number(v, s, path);
    else if (v.is_array())
        err = walk_array(v, s, root, path);
    else if (v.is_object())
        err = walk_object(v, s, root, path);
    if (err) return err;
    if (s.contains("const") && !equal(v, s["const"]))
        return std::make_pair(path, render(v) + " is not " + render(s["const"]));
    if (s.contains("enum")) {
        bool found = false;
        std::string list;
        for (const auto& c : s["enum"]) {
            found = found || equal(v, c);
            list += (list.empty() ? "" : ", ") + render(c);
        }
        if (!found) return std::make_pair(path, render(v) + " is not one of [" + list + "]");
    }
    return std::nullopt;
}

}  // namespace

const Json& contract_graphs();

namespace {

// _manifest_parse.py _relpath
void relpath(const std::string& p, const std::string& where) {
    bool ok = !p.empty() && p[0] != '/' && p.find('\\') == std::string::npos;
    size_t start = 0;
    while (ok && start <= p.size()) {
        const size_t end = std::min(p.find('/', start), p.size());
        if (p.compare(start, end - start, "..") == 0 && end - start == 2) ok = false;
        start = end + 1;
    }
    if (!ok) bad(where, render(Json(p)) + " must be a relative path inside the bundle");
}

std::string joined(const Json& list, const char* key, const std::string& sep) {
    std::string out;
    for (const auto& x : list)
        out += (out.empty() ? "" : sep) + (key ? x[key].get<std::string>() : x.get<std::string>());
    return out;
}

// _manifest_parse.py _graph (the tensors in role order, the file paths)
void check_graph(const std::string& name, const Json& g, const std::string& where) {
    for (const auto& [fmt, rel] : g["files"].items())
        relpath(rel.get<std::string>(), where + ".files." + fmt);
    const Json& contract = contract_graphs()[name];
    for (const char* key : {"inputs", "outputs"}) {
        const Json& list = g[key];
        const Json& roles = contract[key];
        if (list.size() != roles.size())
            bad(where + "." + key, std::to_string(list.size()) + " tensors, the contract has " +
                                       std::to_string(roles.size()) + " (" +
                                       joined(roles, "role", ", ") + ")");
        std::set<std::string> names;
        for (size_t i = 0; i < list.size(); ++i) {
            const std::string tw = where + "." + key + "[" + std::to_string(i) + "]";
            const Json &t = list[i], &role = roles[i];
            if (t["dtype"] != role["dtype"])
                bad(tw + ".dtype", render(t["dtype"]) + ", but role " + render(role["role"]) +
                                       " is " + render(role["dtype"]));
            if (t["shape"].size() != role["shape"].size())
                bad(tw + ".shape", "rank " + std::to_string(t["shape"].size()) + ", but role " +
                                       render(role["role"]) + " has rank " +
                                       std::to_string(role["shape"].size()) + " [" +
                                       joined(role["shape"], nullptr, ", ") + "]");
            if (!names.insert(t["name"].get<std::string>()).second)
                bad(tw + ".name", "duplicate tensor name " + render(t["name"]));
        }
    }
}

// _manifest_parse.py _check_decoder_dims
void check_decoder_dims(const Json& m) {
    const char* name = contract::graphs::panoptic_decoder::name;
    if (!m["graphs"].contains(name)) return;
    const Json& outputs = m["graphs"][name]["outputs"];
    const Json& roles = contract_graphs()[name]["outputs"];
    const int64_t nq = m["num_queries"].get<int64_t>();
    const auto nc = static_cast<int64_t>(m["classes"].size());
    for (size_t i = 0; i < outputs.size(); ++i) {
        const std::string role = roles[i]["role"].get<std::string>();
        const Json& shape = outputs[i]["shape"];
        if (role == "cls_logits" || role == "mask_logits" || role == "query_embed") {
            if (shape[1].is_number_integer() && shape[1].get<int64_t>() != nq)
                bad("manifest.num_queries", std::to_string(nq) + ", but " +
                                                render(outputs[i]["name"]) + " has " +
                                                shape[1].dump() + " queries");
        }
        if (role == "cls_logits" && shape[2].is_number_integer() &&
            shape[2].get<int64_t>() != nc + 1)
            bad("manifest.classes", std::to_string(nc) + " classes, but " +
                                        render(outputs[i]["name"]) + " has " + shape[2].dump() +
                                        " columns (C + 1 with no-object)");
    }
}

struct DuplicateKey {
    std::string key;
};
struct TooDeep {};

}  // namespace

// schema.py render
std::string render(const Json& v) {
    const std::string t = type_of(v);
    if (t == "string") {
        const std::string& s = v.get_ref<const std::string&>();
        std::string raw = s.substr(0, kMaxText);
        for (char& c : raw) {
            const auto b = static_cast<unsigned char>(c);
            if (b < 0x20 || b == 0x7f) c = '?';
        }
        // a multi-byte character cut at the end reads as U+FFFD, as Python's decode("replace")
        size_t lead = raw.size();
        while (lead > 0 && lead + 4 > raw.size() &&
               (static_cast<unsigned char>(raw[lead - 1]) & 0xC0) == 0x80)
            --lead;
        if (lead > 0 && static_cast<unsigned char>(raw[lead - 1]) >= 0xC0) {
            const auto b = static_cast<unsigned char>(raw[lead - 1]);
            const size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
            if (lead - 1 + len > raw.size()) raw = raw.substr(0, lead - 1) + "\xEF\xBF\xBD";
        }
        return "'" + raw + (s.size() > kMaxText ? "..." : "") + "'";
    }
    if (t == "boolean") return v.get<bool>() ? "true" : "false";
    if (t == "null") return "null";
    if (t == "integer") return v.dump();
    if (t == "number") return py_float(v.get<double>());
    return t == "array" ? "an array" : t == "object" ? "an object" : t;
}

Json parse_json(const std::string& text, const std::string& where) {
    if (text.rfind("\xEF\xBB\xBF", 0) == 0)
        bad(where, "not valid JSON (starts with a UTF-8 byte order mark)");
    // nlohmann's lexer takes a NUL byte for the end of the input (what follows it was never
    // read: "{...}\0junk" passed); JSON has no raw NUL anywhere, Python's parser refuses it
    if (const auto nul = text.find('\0'); nul != std::string::npos)
        bad(where, "not valid JSON (a NUL byte at offset " + std::to_string(nul) + ")");
    struct Frame {
        bool object = false;
        std::set<std::string> keys;
        std::optional<std::string> duplicate;
    };
    std::vector<Frame> stack;
    const Json::parser_callback_t cb = [&stack](int, Json::parse_event_t event, Json& parsed) {
        using E = Json::parse_event_t;
        if (event == E::object_start || event == E::array_start) {
            stack.push_back(Frame{event == E::object_start, {}, std::nullopt});
            if (stack.size() > static_cast<size_t>(contract::kMaxJsonDepth)) throw TooDeep{};
        } else if (event == E::key) {
            Frame& f = stack.back();
            const std::string key = parsed.get<std::string>();
            if (!f.keys.insert(key).second && !f.duplicate) f.duplicate = key;
        } else if (event == E::object_end || event == E::array_end) {
            if (!stack.empty()) {
                if (stack.back().duplicate) throw DuplicateKey{*stack.back().duplicate};
                stack.pop_back();
            }
        }
        return true;
    };
    try {
        return Json::parse(text, cb);
    } catch (const DuplicateKey& d) {
        bad(where, "duplicate key " + render(Json(d.key)));
    } catch (const TooDeep&) {
        bad(where,
            "not valid JSON (nested deeper than " + std::to_string(contract::kMaxJsonDepth) + ")");
    } catch (const nlohmann::json::exception& e) {
        bad(where, std::string("not valid JSON (") + e.what() + ")");
    }
}

const Json& contract_graphs() {
    static const Json graphs = Json::parse(contract::kContractJson)["graphs"];
    return graphs;
}

const Json& schema() {
    static const Json s = Json::parse(contract::kManifestSchemaJson);
    return s;
}

std::optional<std::pair<std::string, std::string>> first_error(const Json& value,
                                                               const Json& schema,
                                                               const std::string& path) {
    return walk(value, schema, schema, path);
}

// _manifest_parse.py _cross_fields (and _files_and_graphs)
void check_cross_fields(const Json& m) {
    const std::string w = "manifest";
    std::vector<std::string> graphs;
    for (const char* g : contract::graphs::kNames)
        if (m["graphs"].contains(g)) {
            graphs.push_back(g);
            check_graph(g, m["graphs"][g], w + ".graphs." + g);
        }
    const Json& files = m["files"];
    for (const auto& [rel, unused] : files.items()) relpath(rel, child_path(w + ".files", rel));
    for (const auto& g : graphs)
        for (const auto& [fmt, rel_json] : m["graphs"][g]["files"].items()) {
            const std::string rel = rel_json.get<std::string>();
            std::vector<std::string> needed = {rel};
            if (fmt == "openvino") needed.push_back(rel.substr(0, rel.size() - 4) + ".bin");
            for (const auto& r : needed)
                if (!files.contains(r))
                    bad(w + ".files",
                        render(Json(r)) + " (graph " + g + ", " + fmt + ") has no sha256");
        }
    const Json& classes = m["classes"];
    for (size_t i = 0; i < classes.size(); ++i)
        if (classes[i]["id"].get<int64_t>() != static_cast<int64_t>(i))
            bad(w + ".classes[" + std::to_string(i) + "].id",
                classes[i]["id"].dump() + " != its position " + std::to_string(i) +
                    " (ids must be 0..C-1)");
    if (m["num_classes"].get<int64_t>() != static_cast<int64_t>(classes.size()))
        bad(w + ".num_classes",
            m["num_classes"].dump() + " != " + std::to_string(classes.size()) + " listed classes");
    if (m.contains("weights") && m["weights"].is_object())
        for (const char* key : {"file", "config"}) {
            const std::string rel = m["weights"][key].get<std::string>();
            relpath(rel, w + ".weights." + key);
            if (!files.contains(rel))
                bad(w + ".weights." + key, render(Json(rel)) + " has no sha256 in files");
        }
    check_decoder_dims(m);
    const Json& input = m["input"];
    const int64_t long_side = input["long_side"].get<int64_t>();
    const int64_t pad_divisor = input["pad_divisor"].get<int64_t>();
    if (long_side % pad_divisor)
        bad(w + ".input.long_side", std::to_string(long_side) +
                                        " is not a multiple of pad_divisor " +
                                        std::to_string(pad_divisor));
}

void validate(const Json& m) {
    if (auto err = first_error(m, schema(), "manifest")) bad(err->first, err->second);
    check_cross_fields(m);
}

}  // namespace rapsam::manifest
