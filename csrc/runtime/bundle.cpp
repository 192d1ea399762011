// Bundle loading for the C++ runtime (see bundle.hpp).
#include "bundle.hpp"

#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

namespace fs = std::filesystem;
using nlohmann::json;

namespace rapsam {
namespace {

constexpr const char* kManifest = "manifest.json";

[[noreturn]] void bad(const std::string& where, const std::string& what) {
    throw BundleError(where + ": " + what);
}

const json& field(const json& d, const char* key, const std::string& where) {
    if (!d.is_object() || !d.contains(key)) bad(where + "." + key, "missing");
    return d.at(key);
}

int int_field(const json& d, const char* key, const std::string& where, int minimum) {
    const json& v = field(d, key, where);
    if (!v.is_number_integer()) bad(where + "." + key, "expected an integer");
    const auto x = v.get<int64_t>();
    if (x < minimum || x > (int64_t{1} << 30)) bad(where + "." + key, "out of range");
    return static_cast<int>(x);
}

double num_field(const json& d, const char* key, const std::string& where) {
    const json& v = field(d, key, where);
    if (!v.is_number()) bad(where + "." + key, "expected a number");
    return v.get<double>();
}

std::string str_field(const json& d, const char* key, const std::string& where) {
    const json& v = field(d, key, where);
    if (!v.is_string()) bad(where + "." + key, "expected a string");
    return v.get<std::string>();
}

std::vector<std::string> tensor_names(const json& list, const std::string& where) {
    if (!list.is_array()) bad(where, "expected a list of tensors");
    std::vector<std::string> out;
    for (size_t i = 0; i < list.size(); ++i)
        out.push_back(str_field(list[i], "name", where + "[" + std::to_string(i) + "]"));
    return out;
}

bool is_relative_inside(const std::string& rel) {
    const fs::path p(rel);
    if (rel.empty() || p.is_absolute() || rel.find('\\') != std::string::npos) return false;
    for (const auto& part : p)
        if (part == "..") return false;
    return true;
}

void verify(const Bundle& b) {
    const fs::path root(b.root);
    if (fs::is_symlink(root / kManifest)) bad(b.root, "manifest.json is a symbolic link");
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
         ++it) {
        const std::string rel = fs::relative(it->path(), root).generic_string();
        if (it->is_symlink())
            bad(b.root, "'" + rel + "' is a symbolic link; bundle files must be regular files");
        if (it->is_regular_file() && rel != kManifest && !b.files.count(rel))
            bad(b.root,
                "'" + rel + "' is not listed in the manifest (every file carries a sha256)");
    }
    const fs::path real_root = fs::canonical(root);
    for (const auto& [rel, digest] : b.files) {
        const fs::path path = root / rel;
        if (!fs::is_regular_file(path)) bad(b.root, "'" + rel + "' is listed but missing");
        const fs::path real = fs::canonical(path);
        const auto mismatch = std::mismatch(real_root.begin(), real_root.end(), real.begin());
        if (mismatch.first != real_root.end()) bad(b.root, "'" + rel + "' leaves the bundle");
        const std::string got = sha256_file(path.string());
        if (got != digest)
            bad(b.root, "'" + rel + "' sha256 " + got + " does not match the manifest's " + digest);
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
    std::ifstream in(path, std::ios::binary);
    if (!in) throw BundleError(path + ": cannot read");
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
        throw BundleError("sha256: OpenSSL initialisation failed");
    std::vector<char> block(1 << 20);
    while (in) {
        in.read(block.data(), static_cast<std::streamsize>(block.size()));
        if (in.gcount() > 0)
            EVP_DigestUpdate(ctx.get(), block.data(), static_cast<size_t>(in.gcount()));
    }
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
}

Bundle load_bundle(const std::string& dir, bool verify_files) {
    Bundle b;
    b.root = dir;
    const std::string path = (fs::path(dir) / kManifest).string();
    std::ifstream in(path);
    if (!in) throw BundleError(path + ": cannot read (not a bundle directory?)");
    json m;
    try {
        m = json::parse(in);
    } catch (const json::exception& e) {
        throw BundleError(path + ": not valid JSON (" + e.what() + ")");
    }
    const std::string w = "manifest";
    try {
        if (str_field(m, "format", w) != "rapsam-edge-bundle")
            bad(w + ".format", "not a rapsam-edge bundle");
        if (int_field(m, "format_version", w, 1) != 1) bad(w + ".format_version", "unsupported");
        b.name = str_field(m, "name", w);
        b.variant = str_field(m, "variant", w);
        const json& input = field(m, "input", w);
        b.long_side = int_field(input, "long_side", w + ".input", 1);
        b.pad_divisor = int_field(input, "pad_divisor", w + ".input", 1);
        b.pad_value = int_field(input, "pad_value", w + ".input", 0);
        b.color_order = str_field(input, "color_order", w + ".input");
        b.feat_stride = int_field(m, "feat_stride", w, 1);
        b.num_queries = int_field(m, "num_queries", w, 1);
        const json& classes = field(m, "classes", w);
        for (size_t i = 0; i < classes.size(); ++i) {
            const std::string cw = w + ".classes[" + std::to_string(i) + "]";
            ClassEntry c;
            c.id = int_field(classes[i], "id", cw, 0);
            c.name = str_field(classes[i], "name", cw);
            const json& t = field(classes[i], "is_thing", cw);
            if (!t.is_boolean()) bad(cw + ".is_thing", "expected true or false");
            c.is_thing = t.get<bool>();
            if (c.id != static_cast<int>(i)) bad(cw + ".id", "ids must be 0..C-1 in order");
            b.classes.push_back(c);
        }
        for (const auto& [gname, g] : field(m, "graphs", w).items()) {
            const std::string gw = w + ".graphs." + gname;
            GraphEntry e;
            for (const auto& [fmt, rel] : field(g, "files", gw).items()) {
                if (!rel.is_string() || !is_relative_inside(rel.get<std::string>()))
                    bad(gw + ".files." + fmt, "must be a relative path inside the bundle");
                e.files[fmt] = rel.get<std::string>();
            }
            e.precision = str_field(g, "precision", gw);
            e.inputs = tensor_names(field(g, "inputs", gw), gw + ".inputs");
            e.outputs = tensor_names(field(g, "outputs", gw), gw + ".outputs");
            b.graphs[gname] = e;
        }
        for (const char* g : contract::graphs::kNames)
            if (!b.graphs.count(g)) bad(w + ".graphs", std::string("no ") + g);
        const json& pp = field(m, "postprocess", w);
        b.score_threshold = num_field(pp, "score_threshold", w + ".postprocess");
        b.overlap_threshold = num_field(pp, "overlap_threshold", w + ".postprocess");
        b.prompt_threshold = num_field(pp, "prompt_threshold", w + ".postprocess");
        for (const auto& [rel, digest] : field(m, "files", w).items()) {
            if (!is_relative_inside(rel)) bad(w + ".files", "'" + rel + "' leaves the bundle");
            if (!digest.is_string()) bad(w + ".files." + rel, "expected a sha256 string");
            b.files[rel] = digest.get<std::string>();
        }
    } catch (const json::exception& e) {
        throw BundleError(path + ": malformed manifest (" + e.what() + ")");
    } catch (const BundleError& e) {
        throw BundleError(path + ": " + e.what());
    }
    if (verify_files) verify(b);
    return b;
}

}  // namespace rapsam
