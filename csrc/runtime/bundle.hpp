// A model bundle for the C++ runtime: the same directory the Python runtime loads
// (manifest.json + graph files), parsed and verified without Python.
//
// Verification follows rapsam_edge.bundle.verify_files: every listed file is a regular file
// inside the bundle (no symlink, no path leaving it) whose sha256 matches the manifest, and
// every file in the directory is listed; a named pipe, device or socket anywhere in it is
// refused without being opened. The manifest (a regular file of at most
// contract::kMaxManifestBytes) is validated by manifest_check.hpp: the field rules of
// rapsam_edge/contract/manifest.schema.json (the one schema both runtimes read) and the rules
// between fields, refusing what the Python runtime refuses with the same field named.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "rapsam_contract.hpp"

namespace rapsam {

/// A bundle that cannot be used (missing or malformed manifest field, checksum mismatch,
/// symlink, unlisted file); the message names the file or field.
class BundleError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct ClassEntry {
    int id = 0;
    std::string name;
    bool is_thing = false;
};

/// One tensor of a graph as the manifest lists it (rapsam_edge.contract.TensorSpec).
struct TensorSpec {
    std::string name;                 ///< the name the graph file uses
    std::string role;                 ///< its role in the contract ("image", "feats", ...)
    std::string dtype;                ///< numpy spelling: "uint8", "float32", ...
    std::vector<int64_t> dims;        ///< fixed size per axis, -1 where the axis is dynamic
    std::vector<std::string> labels;  ///< the dynamic axis' label ("B", "H/8"), "" where fixed
};

/// One graph: file per format and tensors in contract order (rapsam_edge.contract.graphs
/// GRAPH_IO: encoder image -> feats; panoptic_decoder feats -> cls_logits, mask_logits,
/// query_embed; prompt_decoder feats, boxes -> mask_logits, iou).
struct GraphEntry {
    std::map<std::string, std::string> files;  ///< format ("onnx", "openvino") -> relative path
    std::string precision;                     ///< "fp32", "bf16", "fp16", "int8", ...
    std::vector<std::string> inputs, outputs;  ///< tensor names, contract order
    std::vector<TensorSpec> input_specs, output_specs;  ///< the same tensors in full
};

struct Bundle {
    std::string root;  ///< the bundle directory
    std::string name, variant;
    int long_side = 0, pad_divisor = 32, pad_value = 0;
    std::string color_order = "RGB";  ///< channel order the encoder expects
    int feat_stride = 8, num_queries = 0;
    std::vector<ClassEntry> classes;
    std::map<std::string, GraphEntry> graphs;  ///< "encoder", "panoptic_decoder", "prompt_decoder"
    double score_threshold = contract::kScoreThreshold;
    double overlap_threshold = contract::kOverlapThreshold;
    double prompt_threshold = contract::kPromptThreshold;
    std::map<std::string, std::string> files;  ///< relative path -> sha256 (hex)

    /// Absolute path of `graph` in `format`; throws BundleError when absent.
    std::string graph_path(const std::string& graph, const std::string& format) const;
};

/// Parse `dir/manifest.json` and (with `verify`) check every file as described above.
/// Throws BundleError ("<dir>/manifest.json: manifest.input.pad_value: 300 > 255").
Bundle load_bundle(const std::string& dir, bool verify = true);

/// sha256 of a regular file, lower-case hex (OpenSSL's EVP). Throws BundleError if it is not a
/// regular file (never opened in blocking mode) or unreadable.
std::string sha256_file(const std::string& path);

}  // namespace rapsam
