// The C++ runtime: a bundle's graphs run with OpenVINO's C++ API, and the post-processing
// core (postprocess.hpp), with the results of the Python rapsam_edge.Segmenter
// (tests/test_cpp_runtime.py checks them frame for frame on the shipped bundle).
//
// Frames are H x W x 3 uint8, row-major, in `color_order` ("RGB" or "BGR"), at most
// kMaxFramePixels. Result maps are at the frame's size. Errors: std::invalid_argument for bad
// input (the message names the argument), BundleError for an unusable bundle (at load: a
// manifest that does not describe its graphs), BackendError for a graph output whose shape is
// not what the manifest and the frame imply (checked before it is read) or that holds NaN /
// infinity (graph and tensor named; Python raises BackendError for both too),
// std::runtime_error for other backend failures.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend.hpp"
#include "bundle.hpp"
#include "postprocess.hpp"
#include "rapsam_contract.hpp"
#include "tracker.hpp"

namespace rapsam {

/// Largest frame (H * W pixels) the Segmenter takes: contract.json's frames.max_pixels, as
/// Python's rapsam_edge.runtime.inputs.MAX_FRAME_PIXELS.
constexpr int64_t kMaxFramePixels = contract::kMaxFramePixels;

struct SegmenterOptions {
    std::string backend = "auto";             ///< a name of backend_names(), or "auto" (the first)
    std::string device = "CPU";               ///< OpenVINO device
    int threads = 0;                          ///< CPU inference threads (0 = the backend's default)
    std::string color_order = "RGB";          ///< of the frames passed in
    int input_size = 0;                       ///< network long side (0 = the bundle's)
    int max_prompts = contract::kMaxPrompts;  ///< at most contract::kMaxPrompts
    bool static_copies = true;  ///< BackendOptions::static_copies (false: dynamic only)
};

/// A letterboxed frame (network input) and its geometry.
struct PreparedFrame {
    std::vector<uint8_t> image;  ///< pad_h x pad_w x 3 RGB (the encoder's input)
    LetterboxGeometry geometry;
    int frame_h = 0, frame_w = 0;
};

/// Encoder features of one frame, for any number of prompt() calls.
struct ImageEmbedding {
    PreparedFrame prepared;
    std::vector<float> feats;  ///< 1 x D x h x w
    int64_t dim = 0, feat_h = 0, feat_w = 0;
};

struct PanopticResult {
    std::vector<int32_t> panoptic_map;  ///< frame_h x frame_w segment ids (0 = void)
    std::vector<Segment> segments;      ///< id order; `cls` indexes Segmenter::class_names()
    std::vector<float> query_embed;     ///< segments.size() x D (for tracking)
    int height = 0, width = 0;
};

struct PromptResult {
    std::vector<uint8_t> masks;  ///< P x frame_h x frame_w, 0 / 1 (points first, then boxes)
    std::vector<float> iou;      ///< P predicted mask quality (the IoU head)
    std::vector<float> stability;
    int count = 0, height = 0, width = 0;
};

struct TrackResult {
    int64_t frame_index = 0;
    std::vector<int32_t> track_map;  ///< frame_h x frame_w track ids (0 = none)
    std::vector<int32_t> track_ids;  ///< live tracks seen this frame
    std::vector<int32_t> track_classes;
    std::vector<float> track_scores;
    PanopticResult panoptic;
};

class Segmenter {
public:
    /// Opens the bundle's three graphs on `options.backend` (backend.hpp; OpenVINO: IR, else
    /// ONNX, on `options.device`), after checking the manifest's tensors against what the
    /// Segmenter feeds and reads (count, dtype, rank per role) and, in the backend, against the
    /// graph files (check_signature); then runs the encoder once on a blank frame to check the
    /// feature grid (feat_stride), as the Python Segmenter does. Throws BundleError (bundle),
    /// std::invalid_argument (options) or std::runtime_error (backend).
    Segmenter(const Bundle& bundle, const SegmenterOptions& options = {});
    ~Segmenter();
    Segmenter(const Segmenter&) = delete;
    Segmenter& operator=(const Segmenter&) = delete;

    /// Letterbox a frame (frame_h x frame_w x 3 uint8) to the network input.
    PreparedFrame prepare(const uint8_t* frame, int frame_h, int frame_w) const;
    /// MaskFormer panoptic segmentation of one frame.
    PanopticResult panoptic(const uint8_t* frame, int frame_h, int frame_w);
    /// Run the encoder once for prompt() calls on this frame.
    ImageEmbedding set_image(const uint8_t* frame, int frame_h, int frame_w);
    /// One mask per prompt. points: P1 x 2 (x, y) frame pixels in [0, W] x [0, H];
    /// boxes: P2 x 4 (x0, y0, x1, y1) frame pixels, x1 > x0, y1 > y0, overlapping the frame
    /// (clipped to it). The same rule as the Python prompt(); std::invalid_argument otherwise.
    PromptResult prompt(const ImageEmbedding& embedding, const std::vector<float>& points,
                        const std::vector<float>& boxes);
    /// The same on double coordinates (n_points x 2 and n_boxes x 4 values; either pointer
    /// may be null when its count is 0), as Python's prompt() reads float64 prompts (what
    /// the PromptTracker feeds: its boxes are not rounded to float before scaling).
    PromptResult prompt(const ImageEmbedding& embedding, const double* points, size_t n_points,
                        const double* boxes, size_t n_boxes);

    /// Online video instance segmentation: thing segments get stable ids from `tracker`
    /// (one per video; tracker.hpp, the twin of the Python tracker), as Segmenter.track().
    TrackResult track(const uint8_t* frame, int frame_h, int frame_w, OnlineTracker& tracker);

    const Bundle& bundle() const { return bundle_; }
    /// The backend the graphs run on ("openvino", ...).
    std::string backend_name() const { return backend_->name(); }
    std::vector<std::string> class_names() const;
    /// Most prompts one prompt() call takes (SegmenterOptions::max_prompts).
    int max_prompts() const { return options_.max_prompts; }

private:
    Bundle bundle_;
    SegmenterOptions options_;
    std::unique_ptr<Backend> backend_;
    std::vector<uint8_t> is_thing_;
    int64_t feat_dim_ = -1;  ///< the manifest's fixed feature width D (-1: a named axis)
    std::vector<float> encode(const PreparedFrame& p, int64_t& dim, int64_t& fh, int64_t& fw);
    void check_feature_grid();
    void check_embedding(const ImageEmbedding& e) const;
    const std::string& output_name(const char* graph, int index) const;
};

}  // namespace rapsam
