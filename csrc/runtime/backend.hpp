// The inference backends of the C++ runtime behind one interface (as rapsam_edge.runtime's
// Backend base class): a backend opens a bundle's three graphs and runs one of them on
// named-by-position inputs, returning its outputs in the manifest's order.
//
// Backends compiled into this build are listed by backend_names(); OpenVINO always is (the
// runtime requires it). Others (ONNX Runtime C++, TensorRT) join the table in backend.cpp
// where their headers are found at configure time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bundle.hpp"

namespace rapsam {

/// Options every backend understands.
struct BackendOptions {
    std::string device = "CPU";  ///< OpenVINO device name ("CPU", "GPU", ...)
    int threads = 0;             ///< CPU inference threads (0 = the backend's default)
    /// OpenVINO on CPU: an input-shape set seen twice gets a static copy of the graph compiled
    /// in a background thread, which serves that shape once ready (as Python's
    /// static_shapes="auto"); false: the dynamic-shape model only.
    bool static_copies = true;
};

/// A borrowed input: `shape` (row-major) over `data`, uint8 or float32.
struct InputView {
    enum class Type { u8, f32 } type = Type::f32;
    std::vector<int64_t> shape;
    const void* data = nullptr;
};

/// An owned float32 output (row-major).
struct OutputTensor {
    std::vector<int64_t> shape;
    std::vector<float> data;
};

/// A graph that ran but gave an unusable result (NaN or infinity where a value must be
/// finite): the twin of Python's rapsam_edge.errors.BackendError. The message names the graph
/// and the tensor.
class BackendError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// One input or output of a graph file as the backend opened it.
struct GraphPort {
    std::vector<std::string> names;  ///< every name the port answers to
    bool is_input = false;
    std::string dtype;          ///< numpy spelling ("float32", "uint8", ...)
    int64_t rank = -1;          ///< -1: dynamic rank
    std::vector<int64_t> dims;  ///< rank entries, -1 for a dynamic axis
};

/// The comparison every backend makes when it opens a graph (Python: Backend._check_signature,
/// plus direction and element type): every manifest tensor is a port of the graph file with
/// the same direction, element type and rank and the manifest's fixed sizes, and every port of
/// the graph is one of the manifest's tensors (every graph input is fed). Throws BundleError
/// "<backend>/<graph>: the manifest does not describe the graph file <file>: <problems>",
/// naming each tensor that differs.
void check_signature(const std::string& backend, const std::string& graph, const std::string& file,
                     const GraphEntry& spec, const std::vector<GraphPort>& ports);

class Backend {
public:
    virtual ~Backend() = default;
    /// Runs graph `name` ("encoder", "panoptic_decoder" or "prompt_decoder") on `inputs`
    /// (in the manifest's input order) and returns its outputs in the manifest's output
    /// order. Throws std::invalid_argument for inputs that do not fit the graph and
    /// std::runtime_error for a backend failure.
    virtual std::vector<OutputTensor> run(const std::string& name,
                                          const std::vector<InputView>& inputs) = 0;
    /// The table name of this backend ("openvino", ...).
    virtual std::string name() const = 0;
};

/// Names of the backends compiled into this build, in preference order.
std::vector<std::string> backend_names();

/// Opens `bundle`'s graphs on backend `name` ("auto" = the first of backend_names()).
/// Throws std::invalid_argument for an unknown or not-compiled backend, BundleError for a
/// bundle without a graph file this backend reads.
std::unique_ptr<Backend> make_backend(const std::string& name, const Bundle& bundle,
                                      const BackendOptions& options);

/// The OpenVINO backend (backend_openvino.cpp): IR files where the bundle has them, else ONNX.
std::unique_ptr<Backend> make_openvino_backend(const Bundle& bundle, const BackendOptions& options);

}  // namespace rapsam
