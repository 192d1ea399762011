// Click-to-track in the C++ runtime: objects given once by a box or clicks follow the video,
// the twin of Python's rapsam_edge/runtime/prompt_tracker.py (same method, settings and
// errors; tests/test_cpp_prompt_tracker.py checks ids, states, boxes and masks against it).
//
//     rapsam::PromptTracker pt(seg);                  // one per video
//     rapsam::TrackPrompts prompts;
//     prompts.boxes = {x0, y0, x1, y1};               // and / or points + labels
//     auto ids = pt.add(frame0, h, w, prompts);
//     for (...) { auto res = pt.step(frame, h, w); /* res.objects: id, mask, box, state */ }
//
// Method (the Python module's doc gives it with its sources and measures): per frame one
// encoder pass; every object has two candidate prompts, its last box enlarged by `margin`
// and the prompt whose mask it accepted last (at first its given box, or the box a single
// click is decoded as), and while occluded or lost also its last box enlarged by
// `search_margin`; all go to one prompt-decoder call (split at max_prompts). A candidate
// passes with predicted IoU >= min_score and >= min_area pixels; the passing one whose
// appearance (the unit-norm mean of the encoder features over the feature cells whose centre
// lies in the mask) is most similar to the object's memory (a moving average of that
// appearance) is kept when that similarity is >= min_similarity. States: "tracked" while one
// is kept (the next prompt box is the mask's box cut to the last box grown by `max_growth`),
// "occluded" when none is, "lost" after max_occluded failures in a row; an occluded or lost
// object returns under its own id.
//
// Errors: std::invalid_argument for bad input, naming it (an unknown id, no frame yet, a
// frame of another size mid-stream, malformed prompts or labels, prompts outside the frame,
// too many objects, an empty first mask, a bad PromptTrackerConfig setting), as Python's
// InputError / ConfigError. Not thread-safe: one tracker per video, frames in order.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rapsam_contract.hpp"
#include "segmenter.hpp"

namespace rapsam {

/// Settings of a PromptTracker (Python's PromptTrackerConfig; defaults from contract.json).
struct PromptTrackerConfig {
    double margin = contract::prompt_tracker::kMargin;                 ///< [0, 10]
    double max_growth = contract::prompt_tracker::kMaxBoxGrowth;       ///< [0, 10]
    double search_margin = contract::prompt_tracker::kSearchMargin;    ///< [margin, 10]
    double min_score = contract::prompt_tracker::kMinScore;            ///< [0, 1]
    double min_similarity = contract::prompt_tracker::kMinSimilarity;  ///< [-1, 1]
    int min_area = contract::prompt_tracker::kMinMaskPixels;           ///< >= 1
    int max_occluded = contract::prompt_tracker::kMaxOccluded;         ///< >= 1
    double momentum = contract::prompt_tracker::kMomentum;             ///< [0, 1]
    int max_objects = 0;  ///< 0: the Segmenter's max_prompts; else in [1, max_prompts]

    /// Throws std::invalid_argument naming the first bad setting.
    void validate() const;
};

/// Prompts of add() / refine(): clicks (P x 2 frame pixels, labels 1 positive / 0 negative,
/// empty labels: all positive) and boxes (P x 4 x0, y0, x1, y1 frame pixels).
struct TrackPrompts {
    std::vector<double> points;
    std::vector<int> labels;
    std::vector<double> boxes;
};

/// One prompted object on one frame (Python's PromptTrack).
struct PromptTrack {
    int id = 0;
    std::vector<uint8_t> mask;      ///< H x W 0 / 1 (empty unless state is "tracked")
    int32_t box[4] = {0, 0, 0, 0};  ///< x0, y0, x1, y1 exclusive max
    float score = 0;                ///< predicted IoU of this frame's candidate
    float similarity = 0;           ///< to the object's memory (-1: no candidate)
    std::string state;              ///< "tracked", "occluded" or "lost"
};

struct PromptTrackResult {
    int64_t frame_index = 0;
    std::vector<PromptTrack> objects;  ///< in ids() order
    int height = 0, width = 0;
};

class PromptTracker {
public:
    /// Throws std::invalid_argument for a bad config (max_objects above max_prompts too).
    /// `segmenter` must outlive the tracker.
    explicit PromptTracker(Segmenter& segmenter, const PromptTrackerConfig& config = {});

    /// Start tracking new objects: one per box, and one for the clicks (at least one
    /// positive); the clicks' object first. On a frame (one encoder pass; it becomes the
    /// current frame), an embedding of this Segmenter, or the frame stepped last.
    std::vector<int> add(const uint8_t* frame, int frame_h, int frame_w,
                         const TrackPrompts& prompts);
    std::vector<int> add(const ImageEmbedding& embedding, const TrackPrompts& prompts);
    std::vector<int> add(const TrackPrompts& prompts);

    /// Track every object into the next frame (the stream's frame size).
    PromptTrackResult step(const uint8_t* frame, int frame_h, int frame_w);

    /// Correct object `id` with clicks on the frame stepped last; its corrected record.
    PromptTrack refine(int id, const TrackPrompts& clicks);
    /// Stop tracking `id` (std::invalid_argument if unknown).
    void remove(int id);
    /// Forget every object and the last frame; ids restart at 1.
    void reset();

    std::vector<int> ids() const;
    const std::string& state(int id) const;
    int64_t frame_index() const { return frame_index_; }
    int max_objects() const { return max_objects_; }
    const PromptTrackerConfig& config() const { return config_; }

    struct Cells;    ///< the feature cells' centres on a frame (prompt_tracker.cpp)
    struct Object {  ///< one object's bounded state
        double box[4] = {0, 0, 0, 0};     ///< frame pixels, exclusive max
        double prompt[4] = {0, 0, 0, 0};  ///< the prompt box whose mask was accepted last
        std::vector<float> memory;        ///< D, unit norm
        std::string state = "tracked";
        int missed = 0;
    };

private:
    Segmenter& seg_;
    PromptTrackerConfig config_;
    int max_objects_ = 0;
    std::vector<std::pair<int, Object>> objects_;  ///< in the order added
    int next_id_ = 1;
    std::shared_ptr<const ImageEmbedding> emb_;  ///< the frame stepped (or added on) last
    int64_t frame_index_ = 0;

    std::vector<int> add_on(std::shared_ptr<const ImageEmbedding> emb, const TrackPrompts& p);
    Object& get(int id);
    const Object& get(int id) const;
    void check_size(const ImageEmbedding& emb) const;
    const ImageEmbedding& last() const;
    void reset_object(Object& obj, const ImageEmbedding& emb, const uint8_t* mask,
                      const double* prompt) const;
    PromptResult decode(const ImageEmbedding& emb, const std::vector<double>& boxes);
    void search_boxes(int h, int w, std::vector<double>& boxes, std::vector<size_t>& owner) const;
    PromptTrack verify(int id, Object& obj, const PromptResult& res,
                       const std::vector<double>& prompts, const std::vector<int32_t>& boxes,
                       const std::vector<size_t>& cand, const ImageEmbedding& emb,
                       const Cells& cells) const;
};

}  // namespace rapsam
