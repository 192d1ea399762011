// The OpenVINO backend of the C++ runtime (backend.hpp), configured as the Python
// OpenVINO backend (rapsam_edge/runtime/openvino.py): LATENCY hint, and on CPU the
// inference precision the manifest records (bf16 where the bundle says so, else f32).
//
// Shapes, as Python's static_shapes="auto" on CPU: each graph is compiled once with dynamic
// shapes and serves every call; an input-shape set seen twice gets a static copy compiled on
// a background thread (std::async), which serves that shape from the first call after it is
// ready (static graphs run 12-15 % faster; no call waits for the 0.2-0.5 s compile). At most
// kMaxStatic copies per graph; a shape beyond them stays dynamic.
//
// On load every graph is compared with its manifest entry (check_signature, backend.hpp)
// before it is compiled: a manifest that does not describe its graph file is a BundleError.
#include <chrono>
#include <future>
#include <map>
#include <openvino/openvino.hpp>
#include <stdexcept>

#include "backend.hpp"

namespace rapsam {
namespace {

constexpr size_t kMaxStatic = 8;

// OpenVINO's messages run over many lines (with source locations): the first one says it.
std::string first_line(const std::string& text) {
    const size_t end = text.find('\n');
    return end == std::string::npos ? text : text.substr(0, end);
}

using ShapeKey = std::vector<ov::Shape>;

// numpy's spelling of an OpenVINO element type (the manifest's dtype words)
std::string dtype_name(const ov::element::Type& t) {
    static const std::map<ov::element::Type_t, const char*> names = {
        {ov::element::Type_t::u8, "uint8"},     {ov::element::Type_t::i8, "int8"},
        {ov::element::Type_t::u16, "uint16"},   {ov::element::Type_t::i16, "int16"},
        {ov::element::Type_t::u32, "uint32"},   {ov::element::Type_t::i32, "int32"},
        {ov::element::Type_t::u64, "uint64"},   {ov::element::Type_t::i64, "int64"},
        {ov::element::Type_t::f16, "float16"},  {ov::element::Type_t::f32, "float32"},
        {ov::element::Type_t::f64, "float64"},  {ov::element::Type_t::bf16, "bfloat16"},
        {ov::element::Type_t::boolean, "bool"},
    };
    const auto found = names.find(t);
    return found != names.end() ? found->second : "openvino " + t.get_type_name();
}

GraphPort port_of(const ov::Output<const ov::Node>& port, bool is_input) {
    GraphPort p;
    for (const std::string& n : port.get_names()) p.names.push_back(n);
    p.is_input = is_input;
    p.dtype = dtype_name(port.get_element_type());
    const ov::PartialShape& shape = port.get_partial_shape();
    if (shape.rank().is_static()) {
        p.rank = shape.rank().get_length();
        for (const ov::Dimension& d : shape) p.dims.push_back(d.is_static() ? d.get_length() : -1);
    }
    return p;
}

// The ports of `model` against the manifest's `spec` (check_signature), before compiling.
void check_model(const ov::Model& model, const std::string& graph, const std::string& file,
                 const GraphEntry& spec) {
    std::vector<GraphPort> ports;
    for (const auto& in : model.inputs()) ports.push_back(port_of(in, true));
    for (const auto& out : model.outputs()) ports.push_back(port_of(out, false));
    check_signature("openvino", graph, file, spec, ports);
}

struct CompiledGraph {
    std::shared_ptr<ov::Model> model;
    ov::AnyMap config;  // compile properties, shared by the dynamic model and the static copies
    ov::InferRequest dynamic;
    std::map<ShapeKey, ov::InferRequest> statics;
    std::map<ShapeKey, int> seen;
    std::map<ShapeKey, std::future<ov::CompiledModel>> pending;
};

class OpenVinoBackend final : public Backend {
public:
    OpenVinoBackend(const Bundle& bundle, const BackendOptions& options)
        : graphs_(bundle.graphs), device_(options.device) {
        static_copies_ = options.static_copies && options.device.rfind("CPU", 0) == 0;
        for (const auto& [name, graph] : bundle.graphs) {
            const std::string fmt = graph.files.count("openvino") ? "openvino" : "onnx";
            ov::AnyMap config{ov::hint::performance_mode(ov::hint::PerformanceMode::LATENCY)};
            if (options.device.rfind("CPU", 0) == 0) {
                config.emplace(ov::hint::inference_precision(
                    graph.precision == "bf16" ? ov::element::bf16 : ov::element::f32));
                if (options.threads > 0) config.emplace(ov::inference_num_threads(options.threads));
            }
            CompiledGraph& c = compiled_[name];
            const std::string path = bundle.graph_path(name, fmt);
            try {
                c.model = core_.read_model(path);
            } catch (const ov::Exception& e) {
                throw BundleError("openvino/" + name + ": cannot read " + graph.files.at(fmt) +
                                  " (" + first_line(e.what()) + ")");
            }
            check_model(*c.model, name, graph.files.at(fmt), graph);
            c.config = config;
            c.dynamic = core_.compile_model(c.model, device_, config).create_infer_request();
        }
    }

    ~OpenVinoBackend() override {
        for (auto& [name, c] : compiled_)
            for (auto& [key, f] : c.pending) f.wait();  // no compile outlives core_
    }

    std::vector<OutputTensor> run(const std::string& name,
                                  const std::vector<InputView>& inputs) override {
        const auto found = compiled_.find(name);
        if (found == compiled_.end())
            throw std::invalid_argument("the bundle has no graph " + name);
        const GraphEntry& g = graphs_.at(name);
        if (inputs.size() != g.inputs.size())
            throw std::invalid_argument(name + " takes " + std::to_string(g.inputs.size()) +
                                        " inputs, got " + std::to_string(inputs.size()));
        ShapeKey key;
        for (const InputView& in : inputs) {
            ov::Shape shape;
            for (int64_t d : in.shape) {
                if (d < 0) throw std::invalid_argument(name + ": negative input dimension");
                shape.push_back(static_cast<size_t>(d));
            }
            key.push_back(std::move(shape));
        }
        ov::InferRequest& req = request_for(g, found->second, key);
        for (size_t i = 0; i < inputs.size(); ++i) {
            const auto type = inputs[i].type == InputView::Type::u8 ? ov::element::u8
                                                                    : ov::element::f32;
            const auto want = found->second.model->input(g.inputs[i]).get_element_type();
            if (want != type)
                throw std::invalid_argument(name + " input " + g.inputs[i] + " is " +
                                            dtype_name(want) + ", fed " + dtype_name(type));
            // OpenVINO reads a borrowed input buffer; it never writes into it
            req.set_tensor(g.inputs[i],
                           ov::Tensor(type, key[i], const_cast<void*>(inputs[i].data)));
        }
        req.infer();
        std::vector<OutputTensor> out;
        for (const std::string& o : g.outputs) {
            const ov::Tensor t = req.get_tensor(o);
            if (t.get_element_type() != ov::element::f32)
                throw BundleError(name + " output " + o + " is " +
                                  dtype_name(t.get_element_type()) + ", not float32");
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
    // The request serving `key`: a ready static copy, else the dynamic model (starting the
    // static compile at the shape's second call).
    ov::InferRequest& request_for(const GraphEntry& g, CompiledGraph& c, const ShapeKey& key) {
        if (!static_copies_) return c.dynamic;
        const auto st = c.statics.find(key);
        if (st != c.statics.end()) return st->second;
        const auto pend = c.pending.find(key);
        if (pend != c.pending.end()) {
            if (pend->second.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
                return c.dynamic;
            ov::InferRequest* ready = nullptr;
            try {
                ready = &(c.statics[key] = pend->second.get().create_infer_request());
            } catch (const std::exception&) {  // the dynamic model keeps serving this shape
                c.statics.erase(key);
            }
            c.pending.erase(pend);
            return ready ? *ready : c.dynamic;
        }
        if (++c.seen[key] >= 2 && c.statics.size() + c.pending.size() < kMaxStatic) {
            const std::shared_ptr<ov::Model> model = c.model->clone();
            std::map<std::string, ov::PartialShape> shapes;  // by tensor name (manifest order)
            for (size_t i = 0; i < key.size(); ++i) shapes[g.inputs[i]] = key[i];
            model->reshape(shapes);
            const ov::AnyMap config = c.config;
            c.pending[key] = std::async(std::launch::async, [this, model, config] {
                return core_.compile_model(model, device_, config);
            });
        }
        return c.dynamic;
    }

    std::map<std::string, GraphEntry> graphs_;  // tensor names, contract order
    std::string device_;
    bool static_copies_ = true;
    ov::Core core_;
    std::map<std::string, CompiledGraph> compiled_;
};

}  // namespace

std::unique_ptr<Backend> make_openvino_backend(const Bundle& bundle,
                                               const BackendOptions& options) {
    return std::make_unique<OpenVinoBackend>(bundle, options);
}

}  // namespace rapsam
