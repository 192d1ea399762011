// The OpenVINO backend of the C++ runtime (backend.hpp), configured as the Python
// OpenVINO backend (rapsam_edge/runtime/backends/openvino.py): LATENCY hint, and on CPU the
// inference precision the manifest records (bf16 where the bundle says so, else f32).
#include <map>
#include <openvino/openvino.hpp>
#include <stdexcept>

#include "backend.hpp"

namespace rapsam {
namespace {

class OpenVinoBackend final : public Backend {
public:
    OpenVinoBackend(const Bundle& bundle, const BackendOptions& options) : graphs_(bundle.graphs) {
        for (const auto& [name, graph] : bundle.graphs) {
            const std::string fmt = graph.files.count("openvino") ? "openvino" : "onnx";
            auto model = core_.read_model(bundle.graph_path(name, fmt));
            ov::AnyMap config{ov::hint::performance_mode(ov::hint::PerformanceMode::LATENCY)};
            if (options.device.rfind("CPU", 0) == 0) {
                config.emplace(ov::hint::inference_precision(
                    graph.precision == "bf16" ? ov::element::bf16 : ov::element::f32));
                if (options.threads > 0) config.emplace(ov::inference_num_threads(options.threads));
            }
            requests_[name] = core_.compile_model(model, options.device, config).create_infer_request();
        }
    }

    std::vector<OutputTensor> run(const std::string& name,
                                  const std::vector<InputView>& inputs) override {
        const auto req = requests_.find(name);
        if (req == requests_.end()) throw std::invalid_argument("the bundle has no graph " + name);
        const GraphEntry& g = graphs_.at(name);
        if (inputs.size() != g.inputs.size())
            throw std::invalid_argument(name + " takes " + std::to_string(g.inputs.size()) +
                                        " inputs, got " + std::to_string(inputs.size()));
        for (size_t i = 0; i < inputs.size(); ++i) {
            const InputView& in = inputs[i];
            ov::Shape shape;
            for (int64_t d : in.shape) {
                if (d < 0) throw std::invalid_argument(name + ": negative input dimension");
                shape.push_back(static_cast<size_t>(d));
            }
            const auto type = in.type == InputView::Type::u8 ? ov::element::u8 : ov::element::f32;
            // OpenVINO reads a borrowed input buffer; it never writes into it
            req->second.set_tensor(g.inputs[i], ov::Tensor(type, shape, const_cast<void*>(in.data)));
        }
        req->second.infer();
        std::vector<OutputTensor> out;
        for (const std::string& o : g.outputs) {
            const ov::Tensor t = req->second.get_tensor(o);
            if (t.get_element_type() != ov::element::f32)
                throw std::runtime_error(name + " output " + o + " is not float32");
            OutputTensor r;
            for (size_t d : t.get_shape()) r.shape.push_back(static_cast<int64_t>(d));
            const float* p = t.data<const float>();
            r.data.assign(p, p + t.get_size());
            out.push_back(std::move(r));
        }
        return out;
    }

    std::string name() const override { return "openvino"; }

private:
    std::map<std::string, GraphEntry> graphs_;  // tensor names, contract order
    ov::Core core_;
    std::map<std::string, ov::InferRequest> requests_;
};

}  // namespace

std::unique_ptr<Backend> make_openvino_backend(const Bundle& bundle, const BackendOptions& options) {
    return std::make_unique<OpenVinoBackend>(bundle, options);
}

}  // namespace rapsam
