// Online tracker (see tracker.hpp), step for step as rapsam_edge/runtime/tracker.py.
#include "tracker.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "assignment.hpp"

namespace rapsam {
namespace {

std::vector<double> unit(const double* x, int64_t d) {
    double sq = 0.0;
    for (int64_t i = 0; i < d; ++i) sq += x[i] * x[i];
    const double norm = std::max(std::sqrt(sq), 1e-12);
    std::vector<double> out(x, x + d);
    for (double& v : out) v /= norm;
    return out;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0.0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

void absorb(Track& t, const std::vector<double>& unit_emb, int32_t cls, double score,
            double momentum) {
    const double m = t.hits ? momentum : 0.0;
    std::vector<double> mixed(unit_emb.size());
    for (size_t i = 0; i < mixed.size(); ++i)
        mixed[i] = m * (t.embedding.empty() ? 0.0 : t.embedding[i]) + (1.0 - m) * unit_emb[i];
    t.embedding = unit(mixed.data(), static_cast<int64_t>(mixed.size()));
    bool found = false;
    for (auto& [c, s] : t.class_scores)
        if (c == cls) {
            s += score;
            found = true;
        }
    if (!found) t.class_scores.emplace_back(cls, score);
    t.hits += 1;
    t.missed = 0;
}

}  // namespace

int32_t Track::class_id() const {
    int32_t best = class_scores.empty() ? -1 : class_scores[0].first;
    double best_s = class_scores.empty() ? 0.0 : class_scores[0].second;
    for (const auto& [c, s] : class_scores)
        if (s > best_s) {
            best = c;
            best_s = s;
        }
    return best;
}

namespace {
// The ranges of rapsam_edge.ops._checks.tracker_args (the Python side checks them there, for
// both implementations; this guards a C++ caller, e.g. the C++ runtime).
void require_in(double v, const char* name, double lo, double hi) {
    if (!(std::isfinite(v) && lo <= v && v <= hi))
        throw std::invalid_argument(std::string(name) + " must be a finite number in [" +
                                    std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                    std::to_string(v));
}
}  // namespace

OnlineTracker::OnlineTracker(const TrackerConfig& config) : config_(config) {
    require_in(config_.match_threshold, "match_threshold", -1.0, 1.0);
    require_in(config_.class_change_penalty, "class_change_penalty", 0.0,
               std::numeric_limits<double>::max());
    require_in(config_.birth_score, "birth_score", 0.0, 1.0);
    require_in(config_.momentum, "momentum", 0.0, 1.0);
    if (config_.max_missed < 0) throw std::invalid_argument("max_missed must be >= 0");
}

void OnlineTracker::reset() {
    tracks_.clear();
    next_id_ = 1;
    frame_index_ = -1;
}

void OnlineTracker::check(const float* embeddings, int64_t n, int64_t dim, const int32_t* classes,
                          const float* scores) const {
    if (n < 0) throw std::invalid_argument("detections: n must be >= 0");
    if (n == 0) return;
    if (dim < 1) throw std::invalid_argument("embeddings: dim must be >= 1");
    if (embeddings == nullptr || classes == nullptr || scores == nullptr)
        throw std::invalid_argument("detections: null embeddings, classes or scores");
    if (!tracks_.empty() && static_cast<int64_t>(tracks_[0].embedding.size()) != dim)
        throw std::invalid_argument("embeddings: dim differs from the tracks'");
    for (int64_t i = 0; i < n * dim; ++i)
        if (!std::isfinite(embeddings[i]))
            throw std::invalid_argument("embeddings contains NaN or infinity");
    for (int64_t c = 0; c < n; ++c) {
        if (classes[c] < 0)
            throw std::invalid_argument("classes must be class indices >= 0, got " +
                                        std::to_string(classes[c]));
        if (!std::isfinite(scores[c]))
            throw std::invalid_argument("scores contains NaN or infinity");
        if (scores[c] < 0.0f || scores[c] > 1.0f)
            throw std::invalid_argument("scores must be in [0, 1], got " +
                                        std::to_string(scores[c]));
    }
}

std::vector<int32_t> OnlineTracker::update(const float* embeddings, int64_t n, int64_t dim,
                                           const int32_t* classes, const float* scores) {
    check(embeddings, n, dim, classes, scores);  // the whole frame, before any state changes
    frame_index_ += 1;
    std::vector<int32_t> ids(static_cast<size_t>(n), 0);
    std::vector<std::vector<double>> det(static_cast<size_t>(n));
    for (int64_t c = 0; c < n; ++c) {
        std::vector<double> e(embeddings + c * dim, embeddings + (c + 1) * dim);
        det[c] = unit(e.data(), dim);
    }
    std::vector<bool> matched(tracks_.size(), false);
    if (n > 0 && !tracks_.empty()) {
        const int64_t nt = static_cast<int64_t>(tracks_.size());
        std::vector<double> cost(static_cast<size_t>(nt * n));
        for (int64_t r = 0; r < nt; ++r) {
            const int32_t tc = tracks_[r].class_id();
            for (int64_t c = 0; c < n; ++c)
                cost[r * n + c] = (1.0 - dot(tracks_[r].embedding, det[c])) +
                                  config_.class_change_penalty * (tc != classes[c] ? 1.0 : 0.0);
        }
        const Assignment a = linear_assignment(cost.data(), nt, n, false);
        for (size_t k = 0; k < a.rows.size(); ++k) {
            const int64_t r = a.rows[k], c = a.cols[k];
            if (dot(tracks_[r].embedding, det[c]) < config_.match_threshold) continue;
            absorb(tracks_[r], det[c], classes[c], scores[c], config_.momentum);
            ids[c] = tracks_[r].track_id;
            matched[r] = true;
        }
    }
    std::vector<Track> alive;
    for (size_t i = 0; i < tracks_.size(); ++i) {
        if (!matched[i]) tracks_[i].missed += 1;
        if (tracks_[i].missed <= config_.max_missed) alive.push_back(std::move(tracks_[i]));
    }
    tracks_ = std::move(alive);
    for (int64_t c = 0; c < n; ++c) {
        if (ids[c] == 0 && scores[c] >= config_.birth_score) {
            Track t;
            t.track_id = next_id_++;
            absorb(t, det[c], classes[c], scores[c], config_.momentum);
            tracks_.push_back(std::move(t));
            ids[c] = tracks_.back().track_id;
        }
    }
    return ids;
}

}  // namespace rapsam
