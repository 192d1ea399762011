// Bundle loading for the C++ runtime (see bundle.hpp), twin of rapsam_edge/bundle.py.
#include "bundle.hpp"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "files.hpp"
#include "manifest_check.hpp"

namespace fs = std::filesystem;
using rapsam::manifest::Json;

namespace rapsam {
namespace {

constexpr const char* kManifest = "manifest.json";

[[noreturn]] void bad(const std::string& where, const std::string& what) {
    throw BundleError(where + ": " + what);
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

TensorSpec tensor_spec(const Json& t, const std::string& role) {
    TensorSpec spec;
    spec.name = t["name"].get<std::string>();
    spec.role = role;
    spec.dtype = t["dtype"].get<std::string>();
    for (const auto& d : t["shape"]) {
        spec.dims.push_back(d.is_string() ? -1 : d.get<int64_t>());
        spec.labels.push_back(d.is_string() ? d.get<std::string>() : "");
    }
    return spec;
}

// The Bundle view of a validated manifest (manifest::validate passed).
void fill(Bundle& b, const Json& m) {
    b.name = m["name"].get<std::string>();
    b.variant = m["variant"].get<std::string>();
    const Json& input = m["input"];
    b.long_side = input["long_side"].get<int>();
    b.pad_divisor = input["pad_divisor"].get<int>();
    b.pad_value = input["pad_value"].get<int>();
    b.color_order = input["color_order"].get<std::string>();
    b.feat_stride = m["feat_stride"].get<int>();
    b.num_queries = m["num_queries"].get<int>();
    for (const auto& c : m["classes"])
        b.classes.push_back(
            {c["id"].get<int>(), c["name"].get<std::string>(), c["is_thing"].get<bool>()});
    const Json& contract = manifest::contract_graphs();
    for (const auto& [gname, g] : m["graphs"].items()) {
        GraphEntry e;
        for (const auto& [fmt, rel] : g["files"].items()) e.files[fmt] = rel.get<std::string>();
        e.precision = g["precision"].get<std::string>();
        for (size_t i = 0; i < g["inputs"].size(); ++i) {
            e.input_specs.push_back(
                tensor_spec(g["inputs"][i],
                            contract[gname]["inputs"][i]["role"].get<std::string>()));
            e.inputs.push_back(e.input_specs.back().name);
        }
        for (size_t i = 0; i < g["outputs"].size(); ++i) {
            e.output_specs.push_back(
                tensor_spec(g["outputs"][i],
                            contract[gname]["outputs"][i]["role"].get<std::string>()));
            e.outputs.push_back(e.output_specs.back().name);
        }
        b.graphs[gname] = e;
    }
    const Json& pp = m["postprocess"];
    b.score_threshold = pp["score_threshold"].get<double>();
    b.overlap_threshold = pp["overlap_threshold"].get<double>();
    b.prompt_threshold = pp["prompt_threshold"].get<double>();
    for (const auto& [rel, digest] : m["files"].items()) b.files[rel] = digest.get<std::string>();
}

// rapsam_edge.bundle.verify_files, in the same order: the manifest is no symlink; every entry
// of the directory (sorted) is no symlink and a regular file or a directory (a named pipe,
// device or socket is refused without being opened), and every file is listed; then each
// listed file stays inside the bundle, exists and matches its sha256.
void verify(const Bundle& b) {
    const fs::path root(b.root);
    const std::string where = "bundle " + b.root;
    if (fs::is_symlink(root / kManifest)) bad(where, "manifest.json is a symbolic link");
    std::vector<fs::path> entries;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
         ++it)
        entries.push_back(it->path());
    std::sort(entries.begin(), entries.end());
    for (const auto& path : entries) {
        const std::string rel = fs::relative(path, root).generic_string();
        struct stat st{};
        if (::lstat(path.c_str(), &st) != 0) bad(where, quoted(rel) + " vanished while checked");
        if (S_ISLNK(st.st_mode))
            bad(where, quoted(rel) +
                           " is a symbolic link; bundle files must be regular files inside the "
                           "bundle directory");
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
            bad(where, quoted(rel) + " is " + file_kind(st.st_mode) +
                           "; bundle files must be regular files inside the bundle directory");
        if (S_ISREG(st.st_mode) && rel != kManifest && !b.files.count(rel))
            bad(where, quoted(rel) +
                           " is not listed in the manifest (every file of a bundle carries a "
                           "sha256, so that no graph can load an unverified file)");
    }
    const fs::path real_root = fs::canonical(root);
    for (const auto& [rel, digest] : b.files) {
        const fs::path path = root / rel;
        fs::path p = root;
        for (const auto& part : fs::path(rel)) {
            p /= part;
            if (fs::is_symlink(p)) bad(where, quoted(rel) + " is a symbolic link");
        }
        std::error_code ec;
        const fs::path real = fs::weakly_canonical(path, ec);
        const auto mismatch = std::mismatch(real_root.begin(), real_root.end(), real.begin());
        if (ec || mismatch.first != real_root.end())
            bad(where, quoted(rel) + " resolves outside the bundle directory");
        if (!fs::is_regular_file(path))
            bad(where, quoted(rel) + " is listed in the manifest but missing");
        const std::string got = sha256_file(path.string());
        if (got != digest)
            bad(where, quoted(rel) + " sha256 " + got + " does not match the manifest's " + digest +
                           " (corrupt or modified file)");
    }
}

}  // namespace

std::string Bundle::graph_path(const std::string& graph, const std::string& format) const {
    const auto g = graphs.find(graph);
    if (g == graphs.end()) throw BundleError("bundle " + name + " has no graph " + graph);
    const auto f = g->second.files.find(format);
    if (f == g->second.files.end())
        throw BundleError("bundle " + name + " has no " + format + " file for " + graph);
    return (fs::path(root) / f->second).string();
}

std::string sha256_file(const std::string& path) {
    try {
        RegularFile in(path, "bundle file");
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                    EVP_MD_CTX_free);
        if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
            throw BundleError("sha256: OpenSSL initialisation failed");
        std::vector<char> block(1 << 20);
        while (const size_t got = in.read(block.data(), block.size()))
            EVP_DigestUpdate(ctx.get(), block.data(), got);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        EVP_DigestFinal_ex(ctx.get(), md, &len);
        static const char* hex = "0123456789abcdef";
        std::string out;
        for (unsigned int i = 0; i < len; ++i) {
            out += hex[md[i] >> 4];
            out += hex[md[i] & 15];
        }
        return out;
    } catch (const FileError& e) {
        throw BundleError(e.what());
    }
}

namespace {

// A quantized bundle's gate record (rapsam_edge/contract/gate_record.py, same rule and
// messages): export.quantization needs a gate that passed, or passed null with gate.skipped
// naming why it was not verified.
void check_gate_record(const Json& m) {
    if (!m.contains("export") || !m.at("export").is_object()) return;
    const Json& exp = m.at("export");
    if (!exp.contains("quantization")) return;
    const std::string where = "manifest.export.quantization";
    const Json& record = exp.at("quantization");
    if (!record.is_object())
        throw BundleError(where + ": expected an object, got " + manifest::render(record));
    if (!record.contains("gate") || record.at("gate").is_null())
        throw BundleError(where +
                          ".gate: missing: this quantized bundle was written before its accuracy "
                          "gate ran (an interrupted or failed quantize), its accuracy is unknown");
    const Json& gate = record.at("gate");
    if (!gate.is_object())
        throw BundleError(where + ".gate: expected an object, got " + manifest::render(gate));
    const Json passed = gate.contains("passed") ? gate.at("passed") : Json(nullptr);
    if (passed.is_null() && gate.contains("skipped") && gate.at("skipped").is_string()) return;
    if (!(passed.is_boolean() && passed.get<bool>()))
        throw BundleError(where + ".gate.passed: " + manifest::render(passed) +
                          ": the bundle did not pass its accuracy gate (true, or null with "
                          "gate.skipped naming why it was not verified, is expected)");
}

// The staging folder of a writer that did not finish (rapsam_edge/assets.py resolve_bundle).
void refuse_staging_folder(const std::string& dir) {
    const std::string mark = contract::kPartialBundleMark;
    std::string name = fs::path(dir).lexically_normal().filename().string();
    if (name.empty()) name = fs::path(dir).lexically_normal().parent_path().filename().string();
    std::error_code ec;
    const std::string real = fs::weakly_canonical(fs::path(dir), ec).filename().string();
    if (name.find(mark) != std::string::npos || real.find(mark) != std::string::npos)
        throw BundleError("bundle '" + dir + "': " + (real.empty() ? name : real) +
                          " is the staging folder of an export or quantize that did not finish "
                          "(interrupted or failed): not a bundle");
}

}  // namespace

Bundle load_bundle(const std::string& dir, bool verify_files) {
    refuse_staging_folder(dir);
    Bundle b;
    b.root = dir;
    const std::string path = (fs::path(dir) / kManifest).string();
    std::string text;
    try {
        text = read_regular(path, "manifest", contract::kMaxManifestBytes);
    } catch (const FileError& e) {
        throw BundleError(e.what());
    }
    const Json m = manifest::parse_json(text, path);
    try {
        manifest::validate(m);
        check_gate_record(m);
        fill(b, m);
    } catch (const BundleError& e) {
        throw BundleError(path + ": " + e.what());
    } catch (const nlohmann::json::exception& e) {  // a case validate missed: still an error
        throw BundleError(path + ": malformed manifest (" + e.what() + ")");
    }
    if (verify_files) {
        try {
            verify(b);
        } catch (const fs::filesystem_error& e) {  // an unreadable sub-directory, ...
            throw BundleError("bundle " + b.root + ": cannot read (" + e.what() + ")");
        }
    }
    return b;
}

}  // namespace rapsam
