// Per-frame post-processing of RAP-SAM outputs: letterbox, panoptic fusion, prompt masks,
// mask boxes. Twins of rapsam_edge.ops._numpy with identical integer results.
// All buffers are C-contiguous (row-major) and owned by the caller. Large calls run on the
// persistent pool of parallel.hpp; the results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "common.hpp"
#include "rapsam_contract.hpp"

namespace rapsam {

// ------------------------------------------------------------------ letterbox
/// Geometry of an aspect-preserving resize of in_h x in_w into box_h x box_w, padded
/// bottom/right up to multiples of pad_divisor.
struct LetterboxGeometry {
    double scale = 1.0;        ///< network pixel = original pixel * scale
    int new_h = 0, new_w = 0;  ///< resized image extent (top-left of the padded image)
    int pad_h = 0, pad_w = 0;  ///< padded output size
};

/// Validates sizes (throws std::invalid_argument) and returns the letterbox geometry.
LetterboxGeometry letterbox_geometry(int in_h, int in_w, int box_h, int box_w, int pad_divisor);

/// Resizes `image` (in_h x in_w x channels uint8, channels 1..4) with 11-bit fixed-point
/// bilinear weights into `out` (g.pad_h x g.pad_w x channels), pad with pad_value.
/// swap_rb swaps channels 0 and 2 (needs channels >= 3).
/// n_threads: 0 = the pool's setting (rapsam::num_threads()), > 0 = at most that many.
void letterbox(const uint8_t* image, int in_h, int in_w, int channels, const LetterboxGeometry& g,
               int pad_value, bool swap_rb, uint8_t* out, int n_threads = 0);

// ------------------------------------------------------------------ panoptic fusion
/// One panoptic segment; same layout as rapsam_edge.ops.SEGMENT_DTYPE (32 bytes).
struct Segment {
    int32_t id;     ///< segment id in the label map (1..K)
    int32_t cls;    ///< class index ("class" in numpy)
    int32_t query;  ///< first query of the segment
    float score;    ///< max class score over the merged queries
    int64_t area;   ///< pixels
    bool is_thing;
    uint8_t padding[7] = {};  ///< always zero: records are deterministic as bytes
};
static_assert(sizeof(Segment) == 32, "Segment must match SEGMENT_DTYPE (aligned)");

struct PanopticParams {
    double valid_h = 0, valid_w = 0;  ///< unpadded extent in mask cells, (0, mask size]
    int out_h = 0, out_w = 0;         ///< output size, [1, kMaxSide]
    double score_threshold = contract::kScoreThreshold;
    double overlap_threshold = contract::kOverlapThreshold;
    int n_threads = 0;         ///< 0 = rapsam::num_threads(), > 0 = at most that many
    bool check_finite = true;  ///< throw on NaN / inf logits (bindings check beforehand)
};

/// MaskFormer panoptic fusion (see _numpy.panoptic_fuse).
/// cls_logits: n_queries x n_cls1 (last column = no object); mask_logits: n_queries x
/// mask_h x mask_w; is_thing: n_cls1 - 1 flags; label_map: out_h x out_w, written.
/// Returns the segments in id order. Throws std::invalid_argument on bad arguments.
std::vector<Segment> panoptic_fuse(const float* cls_logits, int n_queries, int n_cls1,
                                   const float* mask_logits, int mask_h, int mask_w,
                                   const bool* is_thing, const PanopticParams& params,
                                   int32_t* label_map);

// ------------------------------------------------------------------ prompt masks
/// Upsamples n x mask_h x mask_w prompt logits (valid crop) to out_h x out_w and thresholds:
/// masks (n x out_h x out_w, 0/1 bytes) = logit > threshold; stability (n floats) = SAM's
/// stability score. Throws std::invalid_argument on bad arguments. n_threads as letterbox's.
void prompt_masks(const float* mask_logits, int n, int mask_h, int mask_w, double valid_h,
                  double valid_w, int out_h, int out_w, double threshold, double stability_offset,
                  uint8_t* masks, float* stability, int n_threads = 0, bool check_finite = true);

// ------------------------------------------------------------------ boxes
/// n x h x w masks (nonzero = set) -> n x 4 int32 boxes (x0, y0, x1, y1), x1/y1 exclusive;
/// an empty mask gives (0, 0, 0, 0).
void masks_to_boxes(const uint8_t* masks, int64_t n, int64_t h, int64_t w, int32_t* boxes);

}  // namespace rapsam
