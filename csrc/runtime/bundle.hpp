// A model bundle for the C++ runtime: the same directory the Python runtime loads
// (manifest.json + graph files), parsed and verified without Python.
//
// Verification follows rapsam_edge.bundle.verify_files: every listed file is a regular file
// inside the bundle (no symlink, no path leaving it) whose sha256 matches the manifest, and
// every file in the directory is listed. Manifest fields are documented in
// rapsam_edge/contract/manifest.py (the one schema both runtimes read).
#pragma once

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

/// One graph: file per format and tensor names in contract order (rapsam_edge.contract.graphs
/// GRAPH_IO: encoder image -> feats; panoptic_decoder feats -> cls_logits, mask_logits,
/// query_embed; prompt_decoder feats, boxes -> mask_logits, iou).
struct GraphEntry {
    std::map<std::string, std::string> files;  ///< format ("onnx", "openvino") -> relative path
    std::string precision;                     ///< "fp32", "bf16", "fp16", "int8", ...
    std::vector<std::string> inputs, outputs;  ///< tensor names, contract order
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
/// Throws BundleError.
Bundle load_bundle(const std::string& dir, bool verify = true);

/// sha256 of a file, lower-case hex (OpenSSL's EVP). Throws BundleError if unreadable.
std::string sha256_file(const std::string& path);

}  // namespace rapsam
