// The backend table of the C++ runtime (backend.hpp): one literal list of the backends
// compiled into this build.
#include "backend.hpp"

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

}  // namespace

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
