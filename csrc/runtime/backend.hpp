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
#include <memory>
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
