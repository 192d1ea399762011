// Online tracking by query-embedding association: the twin of
// rapsam_edge.runtime.tracker.OnlineTracker (same rules, double precision; track ids agree
// with it except where a similarity ties a threshold to the last bits, since BLAS sums in
// another order).
//
// Tracks keep an exponential moving average of unit embeddings; detections are assigned to
// tracks by optimal linear assignment (assignment.hpp) on cosine distance plus a penalty for
// a class change; a match needs cosine similarity >= match_threshold; unmatched detections
// with score >= birth_score start tracks; a track unmatched for more than max_missed frames
// dies. Only live tracks are kept.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "rapsam_contract.hpp"

namespace rapsam {

struct TrackerConfig {
    double match_threshold = contract::kMatchThreshold;
    double class_change_penalty = contract::kClassChangePenalty;
    double birth_score = contract::kBirthScore;
    int max_missed = contract::kMaxMissed;
    double momentum = contract::kMomentum;
};

struct Track {
    int32_t track_id = 0;
    std::vector<double> embedding;                         ///< D, unit norm
    std::vector<std::pair<int32_t, double>> class_scores;  ///< insertion order: (class, sum)
    int64_t hits = 0, missed = 0;
    int32_t class_id() const;  ///< the class with the largest score sum (first on ties)
};

class OnlineTracker {
public:
    explicit OnlineTracker(const TrackerConfig& config = {});
    /// One frame: n detections with embeddings (n x dim, row-major), classes and scores.
    /// Returns one track id per detection (0: neither matched nor started a track).
    /// Throws std::invalid_argument (the checks of rapsam_edge.ops._checks.
    /// tracker_update_args) for n < 0, dim < 1, a dim differing from the tracks', a NaN or
    /// infinite embedding value, a class < 0 or a score that is not a finite number in
    /// [0, 1]; the whole frame is checked first, so after a throw the tracker (frame index,
    /// tracks, ids) is exactly as before the call.
    std::vector<int32_t> update(const float* embeddings, int64_t n, int64_t dim,
                                const int32_t* classes, const float* scores);
    /// The checks of update(), without running it (throws as update() does).
    void check(const float* embeddings, int64_t n, int64_t dim, const int32_t* classes,
               const float* scores) const;
    void reset();
    int32_t tracks_started() const { return next_id_ - 1; }
    int64_t frame_index() const { return frame_index_; }
    const std::vector<Track>& tracks() const { return tracks_; }
    const TrackerConfig& config() const { return config_; }

private:
    TrackerConfig config_;
    std::vector<Track> tracks_;
    int32_t next_id_ = 1;
    int64_t frame_index_ = -1;
};

}  // namespace rapsam
