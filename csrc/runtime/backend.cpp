// The backend table of the C++ runtime (backend.hpp): one literal list of the backends
// compiled into this build, and what every backend shares: the manifest's tensor specs and
// their comparison with the graph a backend opened (check_signature).
#include "backend.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <utility>

namespace rapsam {
namespace {

using Factory = std::unique_ptr<Backend> (*)(const Bundle&, const BackendOptions&);

const std::vector<std::pair<std::string, Factory>>& table() {
    static const std::vector<std::pair<std::string, Factory>> backends = {
        {"openvino", &make_openvino_backend},
    };
    return backends;
}

// A manifest is a few kB; anything near this is not one (and is not read into memory).
constexpr int64_t kMaxManifestBytes = int64_t{64} << 20;

// The manifest's text, read only if it is a regular file (opened non-blocking: a named pipe
// or a device is refused by fstat before any read, never waited on) of at most
// kMaxManifestBytes.
std::string read_manifest(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw BundleError(path + ": cannot open (" + std::strerror(errno) + ")");
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st{};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        throw BundleError(path + ": not a regular file");
    if (st.st_size > kMaxManifestBytes)
        throw BundleError(path + ": " + std::to_string(st.st_size) + " bytes, more than a " +
                          "manifest can be (" + std::to_string(kMaxManifestBytes) + ")");
    std::string text(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    while (got < text.size()) {
        const ssize_t n = ::read(fd, &text[got], text.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw BundleError(path + ": read failed or the file shrank while read");
        got += static_cast<size_t>(n);
    }
    return text;
}

std::vector<TensorSpec> tensor_specs(const nlohmann::json& list, const std::string& where) {
    if (!list.is_array()) throw BundleError(where + ": expected a list of tensors");
    std::vector<TensorSpec> out;
    for (size_t i = 0; i < list.size(); ++i) {
        const std::string w = where + "[" + std::to_string(i) + "]";
        const nlohmann::json& t = list[i];
        if (!t.is_object()) throw BundleError(w + ": expected a tensor object");
        TensorSpec spec;
        for (const char* key : {"name", "dtype"}) {
            if (!t.contains(key) || !t.at(key).is_string())
                throw BundleError(w + "." + key + ": expected a string");
        }
        spec.name = t.at("name").get<std::string>();
        spec.dtype = t.at("dtype").get<std::string>();
        if (!t.contains("shape") || !t.at("shape").is_array())
            throw BundleError(w + ".shape: expected a list");
        const nlohmann::json& shape = t.at("shape");
        for (size_t a = 0; a < shape.size(); ++a) {
            const nlohmann::json& d = shape[a];
            const std::string wa = w + ".shape[" + std::to_string(a) + "]";
            if (d.is_string()) {
                spec.shape.push_back(TensorSpec::kAnyDim);
            } else if (d.is_number_integer()) {
                // a fixed size: positive and within what any tensor axis can be
                if (d.is_number_unsigned()
                        ? d.get<uint64_t>() > (uint64_t{1} << 40)
                        : (d.get<int64_t>() < 1 || d.get<int64_t>() > (int64_t{1} << 40)))
                    throw BundleError(wa + ": " + d.dump() + " is not a positive size");
                spec.shape.push_back(d.get<int64_t>());
            } else {
                throw BundleError(wa + ": expected a size or an axis name");
            }
        }
        out.push_back(std::move(spec));
    }
    return out;
}

std::string list_text(const std::vector<std::string>& names) {
    std::string out = "[";
    for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
    return out + "]";
}

std::string shape_text(const std::vector<int64_t>& dims) {
    std::string out = "[";
    for (size_t i = 0; i < dims.size(); ++i)
        out += (i ? ", " : "") + (dims[i] < 0 ? std::string("?") : std::to_string(dims[i]));
    return out + "]";
}

}  // namespace

std::map<std::string, GraphSpec> manifest_tensors(const Bundle& bundle) {
    const std::string path = (std::filesystem::path(bundle.root) / "manifest.json").string();
    nlohmann::json m;
    try {
        m = nlohmann::json::parse(read_manifest(path));
    } catch (const nlohmann::json::exception& e) {
        throw BundleError(path + ": not valid JSON (" + e.what() + ")");
    }
    std::map<std::string, GraphSpec> out;
    try {
        if (!m.is_object() || !m.contains("graphs") || !m.at("graphs").is_object())
            throw BundleError("manifest.graphs: missing");
        for (const auto& [name, g] : m.at("graphs").items()) {
            const std::string w = "manifest.graphs." + name;
            if (!g.is_object() || !g.contains("inputs") || !g.contains("outputs"))
                throw BundleError(w + ": expected inputs and outputs");
            GraphSpec spec;
            spec.inputs = tensor_specs(g.at("inputs"), w + ".inputs");
            spec.outputs = tensor_specs(g.at("outputs"), w + ".outputs");
            out[name] = std::move(spec);
        }
    } catch (const nlohmann::json::exception& e) {
        throw BundleError(path + ": malformed manifest (" + e.what() + ")");
    } catch (const BundleError& e) {
        throw BundleError(path + ": " + e.what());
    }
    return out;
}

void check_signature(const std::string& backend, const std::string& graph, const std::string& file,
                     const GraphSpec& spec, const std::vector<GraphPort>& ports) {
    std::vector<std::string> problems;
    std::map<std::string, std::pair<const TensorSpec*, bool>> wanted;  // name -> spec, is input
    for (const auto* list : {&spec.inputs, &spec.outputs})
        for (const TensorSpec& t : *list)
            if (!wanted.emplace(t.name, std::make_pair(&t, list == &spec.inputs)).second)
                problems.push_back(t.name + ": listed twice in the manifest");
    std::map<std::string, const GraphPort*> found;  // manifest name -> the port carrying it
    std::vector<std::string> graph_only;
    for (const GraphPort& port : ports) {
        std::string name;  // the manifest's name for this port, else its first name
        for (const std::string& n : port.names)
            if (wanted.count(n) && (name.empty() || n < name)) name = n;
        if (name.empty()) {
            graph_only.push_back(port.names.empty()
                                     ? std::string("(unnamed)")
                                     : *std::min_element(port.names.begin(), port.names.end()));
            continue;
        }
        found[name] = &port;
    }
    std::vector<std::string> manifest_only;
    for (const auto& [name, entry] : wanted)
        if (!found.count(name)) manifest_only.push_back(name);
    std::sort(graph_only.begin(), graph_only.end());
    if (!manifest_only.empty() || !graph_only.empty())
        problems.push_back("tensor names differ (manifest only " + list_text(manifest_only) +
                           ", graph only " + list_text(graph_only) + ")");
    for (const auto& [name, port] : found) {
        const TensorSpec& want = *wanted.at(name).first;
        const bool is_input = wanted.at(name).second;
        if (port->is_input != is_input) {
            problems.push_back(name + ": an " + (port->is_input ? "input" : "output") +
                               " of the graph, an " + (is_input ? "input" : "output") +
                               " in the manifest");
            continue;
        }
        if (port->dtype != want.dtype)
            problems.push_back(name + ": element type " + port->dtype + " in the graph, " +
                               want.dtype + " in the manifest");
        if (port->rank < 0) continue;  // a dynamic rank: nothing more to compare before a run
        if (static_cast<size_t>(port->rank) != want.shape.size()) {
            problems.push_back(name + ": rank " + std::to_string(port->rank) + " in the graph, " +
                               std::to_string(want.shape.size()) + " in the manifest");
            continue;
        }
        for (size_t a = 0; a < want.shape.size(); ++a)
            if (want.shape[a] >= 0 && port->dims[a] >= 0 && want.shape[a] != port->dims[a])
                problems.push_back(name + ": axis " + std::to_string(a) + " is " +
                                   std::to_string(port->dims[a]) + " in the graph, " +
                                   std::to_string(want.shape[a]) + " in the manifest (graph " +
                                   shape_text(port->dims) + ")");
    }
    if (problems.empty()) return;
    std::string text;
    for (const std::string& p : problems) text += (text.empty() ? "" : "; ") + p;
    throw BundleError(backend + "/" + graph + ": the manifest does not describe the graph file " +
                      file + ": " + text);
}

std::vector<std::string> backend_names() {
    std::vector<std::string> out;
    for (const auto& [name, factory] : table()) out.push_back(name);
    return out;
}

std::unique_ptr<Backend> make_backend(const std::string& name, const Bundle& bundle,
                                      const BackendOptions& options) {
    const std::string want = name == "auto" ? table().front().first : name;
    for (const auto& [known, factory] : table())
        if (known == want) return factory(bundle, options);
    std::string names;
    for (const auto& n : backend_names()) names += (names.empty() ? "" : ", ") + n;
    throw std::invalid_argument("backend '" + name +
                                "' is not compiled into this build (have: " + names + ", auto)");
}

}  // namespace rapsam
