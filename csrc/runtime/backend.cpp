// The backend table of the C++ runtime (backend.hpp): one literal list of the backends
// compiled into this build, and what every backend shares: the comparison of the manifest's
// tensor specs (Bundle, parsed and validated by bundle.cpp) with the graph a backend opened
// (check_signature).
#include "backend.hpp"

#include <algorithm>
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

void check_signature(const std::string& backend, const std::string& graph, const std::string& file,
                     const GraphEntry& spec, const std::vector<GraphPort>& ports) {
    std::vector<std::string> problems;
    std::map<std::string, std::pair<const TensorSpec*, bool>> wanted;  // name -> spec, is input
    for (const auto* list : {&spec.input_specs, &spec.output_specs})
        for (const TensorSpec& t : *list)
            if (!wanted.emplace(t.name, std::make_pair(&t, list == &spec.input_specs)).second)
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
        if (static_cast<size_t>(port->rank) != want.dims.size()) {
            problems.push_back(name + ": rank " + std::to_string(port->rank) + " in the graph, " +
                               std::to_string(want.dims.size()) + " in the manifest");
            continue;
        }
        for (size_t a = 0; a < want.dims.size(); ++a)
            if (want.dims[a] >= 0 && port->dims[a] >= 0 && want.dims[a] != port->dims[a])
                problems.push_back(name + ": axis " + std::to_string(a) + " is " +
                                   std::to_string(port->dims[a]) + " in the graph, " +
                                   std::to_string(want.dims[a]) + " in the manifest (graph " +
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
