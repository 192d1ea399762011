// The C++ PromptTracker (prompt_tracker.hpp): every step mirrors a function of Python's
// rapsam_edge/runtime/prompt_tracker.py, named after it, so that both give the same ids,
// states, boxes and masks.
#include "prompt_tracker.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "postprocess.hpp"

namespace rapsam {
namespace {

[[noreturn]] void invalid(const std::string& what) { throw std::invalid_argument(what); }

// Python's _clicks: validated clicks (labels all 1 when none given); false when there are none.
bool clicks(const TrackPrompts& p, bool required, std::vector<int>& labels) {
    if (p.points.empty()) {
        if (required) invalid("refine() needs points (with labels)");
        if (!p.labels.empty()) invalid("labels given without points");
        return false;
    }
    if (p.points.size() % 2)
        invalid("points must be P x 2 numbers, got " + std::to_string(p.points.size()) + " values");
    const size_t n = p.points.size() / 2;
    if (p.labels.empty()) {
        labels.assign(n, 1);
    } else {
        if (p.labels.size() != n)
            invalid("labels must be " + std::to_string(n) +
                    " ints (1 positive, 0 negative), one per point; got " +
                    std::to_string(p.labels.size()));
        for (int l : p.labels)
            if (l != 0 && l != 1)
                invalid("labels must be 1 (positive) or 0 (negative), got " + std::to_string(l));
        labels = p.labels;
    }
    if (std::find(labels.begin(), labels.end(), 1) == labels.end())
        invalid("the clicks need at least one positive point (label 1)");
    return true;
}

// Python's _combine: the union of the positive clicks' masks less the negative clicks' masks
// (masks: the first labels.size() masks of `res`).
std::vector<uint8_t> combine(const PromptResult& res, const std::vector<int>& labels) {
    const size_t hw = static_cast<size_t>(res.height) * res.width;
    std::vector<uint8_t> pos(hw, 0), neg(hw, 0);
    for (size_t k = 0; k < labels.size(); ++k) {
        std::vector<uint8_t>& into = labels[k] == 1 ? pos : neg;
        const uint8_t* m = res.masks.data() + k * hw;
        for (size_t i = 0; i < hw; ++i) into[i] |= m[i];
    }
    for (size_t i = 0; i < hw; ++i) pos[i] = pos[i] && !neg[i];
    return pos;
}

// Python's _mask_box: (x0, y0, x1, y1) of a mask, exclusive max; false when empty.
bool mask_box(const uint8_t* mask, int h, int w, double box[4]) {
    int32_t b[4];
    masks_to_boxes(mask, 1, h, w, b);
    for (int k = 0; k < 4; ++k) box[k] = b[k];
    return b[2] > b[0];
}

}  // namespace

// Python's _cells: frame-pixel rows and cols of the centres of the feature cells inside
// the frame.
struct PromptTracker::Cells {
    std::vector<int64_t> rows, cols;
};

namespace {

using Cells = PromptTracker::Cells;

Cells cells(const ImageEmbedding& emb, int stride) {
    const LetterboxGeometry& g = emb.prepared.geometry;
    const auto centres = [&](int valid, int size) {
        std::vector<int64_t> out;
        const int n = (valid + stride - 1) / stride;
        for (int i = 0; i < n; ++i) {
            const double c = (i + 0.5) * stride / g.scale;
            out.push_back(std::min<int64_t>(static_cast<int64_t>(c), size - 1));
        }
        return out;
    };
    return {centres(g.new_h, emb.prepared.frame_h), centres(g.new_w, emb.prepared.frame_w)};
}

// Python's _pool: the unit-norm mean of the encoder features over the feature cells whose
// centre lies in `mask` (the mask's own centre cell when it is smaller than a cell).
std::vector<float> pool(const ImageEmbedding& emb, const uint8_t* mask, const Cells& c) {
    const int64_t w = emb.prepared.frame_w, h = emb.prepared.frame_h;
    const size_t nr = c.rows.size(), nc = c.cols.size();
    std::vector<std::pair<size_t, size_t>> inside;
    for (size_t r = 0; r < nr; ++r)
        for (size_t k = 0; k < nc; ++k)
            if (mask[c.rows[r] * w + c.cols[k]]) inside.emplace_back(r, k);
    if (inside.empty()) {  // a mask smaller than one cell: its centre's cell
        double sy = 0, sx = 0, n = 0;
        for (int64_t y = 0; y < h; ++y)
            for (int64_t x = 0; x < w; ++x)
                if (mask[y * w + x]) sy += y, sx += x, n += 1;
        const auto at = [](const std::vector<int64_t>& v, double m) {  // np.searchsorted
            const size_t i = static_cast<size_t>(
                std::lower_bound(v.begin(), v.end(), m,
                                 [](int64_t a, double b) { return double(a) < b; }) -
                v.begin());
            return std::min(i, v.size() - 1);
        };
        inside.emplace_back(at(c.rows, sy / n), at(c.cols, sx / n));
    }
    const size_t plane = static_cast<size_t>(emb.feat_h * emb.feat_w);
    std::vector<float> v(static_cast<size_t>(emb.dim));
    double norm = 0;
    for (size_t d = 0; d < v.size(); ++d) {
        const float* f = emb.feats.data() + d * plane;
        double s = 0;
        for (const auto& [r, k] : inside) s += f[r * emb.feat_w + k];
        v[d] = static_cast<float>(s / double(inside.size()));
        norm += double(v[d]) * v[d];
    }
    norm = std::max(std::sqrt(norm), 1e-12);
    for (float& x : v) x = static_cast<float>(x / norm);
    return v;
}

// Python's _click_box: the box prompt (frame pixels) one click is decoded as, POINT_BOX_HALF
// of the network input around it cut to the frame; false unless there is exactly one click.
bool click_box(const ImageEmbedding& emb, const std::vector<double>& points, double box[4]) {
    if (points.size() != 2) return false;
    const double half = contract::kPointBoxHalf / emb.prepared.geometry.scale;
    const double lim[4] = {double(emb.prepared.frame_w), double(emb.prepared.frame_h),
                           double(emb.prepared.frame_w), double(emb.prepared.frame_h)};
    const double b[4] = {points[0] - half, points[1] - half, points[0] + half, points[1] + half};
    for (int k = 0; k < 4; ++k) box[k] = std::clamp(b[k], 0.0, lim[k]);
    return true;
}

// Python's _clamp_growth: `box` cut to `last` enlarged by `growth` of its size on each side;
// `box` itself when the two do not overlap.
void clamp_growth(const double box[4], const double last[4], double growth, double out[4]) {
    const double gx = growth * (last[0] - last[2]), gy = growth * (last[1] - last[3]);
    const double c[4] = {std::max(box[0], last[0] + gx), std::max(box[1], last[1] + gy),
                         std::min(box[2], last[2] - gx), std::min(box[3], last[3] - gy)};
    const bool ok = c[2] > c[0] && c[3] > c[1];
    for (int k = 0; k < 4; ++k) out[k] = ok ? c[k] : box[k];
}

float dot(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
    return static_cast<float>(s);
}

}  // namespace

void PromptTrackerConfig::validate() const {
    const auto need = [](bool ok, const std::string& name, const std::string& rule, double value) {
        if (!ok)
            invalid("PromptTrackerConfig." + name + " must be " + rule + ", got " +
                    std::to_string(value));
    };
    const auto in = [](double v, double lo, double hi) { return v >= lo && v <= hi; };
    need(in(margin, 0, 10), "margin", "a number in [0, 10]", margin);
    need(in(max_growth, 0, 10), "max_growth", "a number in [0, 10]", max_growth);
    need(in(search_margin, 0, 10) && search_margin >= margin, "search_margin",
         "a number in [margin, 10]", search_margin);
    need(in(min_score, 0, 1), "min_score", "a number in [0, 1]", min_score);
    need(in(min_similarity, -1, 1), "min_similarity", "a number in [-1, 1]", min_similarity);
    need(min_area >= 1, "min_area", "an int >= 1", min_area);
    need(max_occluded >= 1, "max_occluded", "an int >= 1", max_occluded);
    need(in(momentum, 0, 1), "momentum", "a number in [0, 1]", momentum);
    need(max_objects >= 0, "max_objects", "0 (the Segmenter's max_prompts) or an int >= 1",
         max_objects);
}

PromptTracker::PromptTracker(Segmenter& segmenter, const PromptTrackerConfig& config)
    : seg_(segmenter), config_(config) {
    config_.validate();
    const int limit = seg_.max_prompts();
    if (config_.max_objects > limit)
        invalid("PromptTrackerConfig.max_objects=" + std::to_string(config_.max_objects) +
                " exceeds the Segmenter's max_prompts=" + std::to_string(limit) +
                " (all objects go to one decoder call)");
    max_objects_ = config_.max_objects == 0 ? limit : config_.max_objects;
}

// ------------------------------------------------------------------ public API
std::vector<int> PromptTracker::ids() const {
    std::vector<int> out;
    for (const auto& [id, obj] : objects_) out.push_back(id);
    return out;
}

const std::string& PromptTracker::state(int id) const { return get(id).state; }

void PromptTracker::reset() {
    objects_.clear();
    objects_.shrink_to_fit();
    next_id_ = 1;
    emb_.reset();
    frame_index_ = 0;
}

void PromptTracker::remove(int id) {
    get(id);
    objects_.erase(std::find_if(objects_.begin(), objects_.end(),
                                [id](const auto& o) { return o.first == id; }));
}

std::vector<int> PromptTracker::add(const uint8_t* frame, int frame_h, int frame_w,
                                    const TrackPrompts& prompts) {
    auto emb = std::make_shared<ImageEmbedding>(seg_.set_image(frame, frame_h, frame_w));
    return add_on(std::move(emb), prompts);
}

std::vector<int> PromptTracker::add(const ImageEmbedding& embedding, const TrackPrompts& prompts) {
    return add_on(std::make_shared<ImageEmbedding>(embedding), prompts);
}

std::vector<int> PromptTracker::add(const TrackPrompts& prompts) {
    last();  // no frame yet: the error
    return add_on(emb_, prompts);
}

std::vector<int> PromptTracker::add_on(std::shared_ptr<const ImageEmbedding> emb,
                                       const TrackPrompts& p) {
    check_size(*emb);
    std::vector<int> labels;
    const bool has_clicks = clicks(p, false, labels);
    if (p.boxes.size() % 4)
        invalid("boxes must be P x 4 numbers, got " + std::to_string(p.boxes.size()) + " values");
    const size_t n_box = p.boxes.size() / 4, n_new = (has_clicks ? 1 : 0) + n_box;
    if (n_new == 0) invalid("add() needs boxes or points (with labels)");
    if (objects_.size() + n_new > static_cast<size_t>(max_objects_))
        invalid(std::to_string(objects_.size()) + " objects tracked + " + std::to_string(n_new) +
                " new exceeds max_objects=" + std::to_string(max_objects_) +
                "; remove() some first");
    const PromptResult res = seg_.prompt(*emb, p.points.data(), p.points.size() / 2, p.boxes.data(),
                                         n_box);
    const size_t hw = static_cast<size_t>(res.height) * res.width;
    std::vector<Object> made;  // all made before any is kept: a failed add changes nothing
    size_t k = 0;
    if (has_clicks) {
        const std::vector<uint8_t> mask = combine(res, labels);
        double prompt[4];
        const bool one = click_box(*emb, p.points, prompt);
        reset_object(made.emplace_back(), *emb, mask.data(), one ? prompt : nullptr);
        k = labels.size();
    }
    const double lim[4] = {double(res.width), double(res.height), double(res.width),
                           double(res.height)};
    for (size_t b = 0; k < static_cast<size_t>(res.count); ++k, ++b) {
        double prompt[4];  // a box is its object's first prompt
        for (int c = 0; c < 4; ++c) prompt[c] = std::clamp(p.boxes[4 * b + c], 0.0, lim[c]);
        reset_object(made.emplace_back(), *emb, res.masks.data() + k * hw, prompt);
    }
    std::vector<int> out;
    for (Object& obj : made) {
        out.push_back(next_id_);
        objects_.emplace_back(next_id_++, std::move(obj));
    }
    emb_ = std::move(emb);
    return out;
}

PromptTrack PromptTracker::refine(int id, const TrackPrompts& c) {
    Object& obj = get(id);
    const ImageEmbedding& emb = last();
    std::vector<int> labels;
    clicks(c, true, labels);
    if (!c.boxes.empty()) invalid("refine() takes clicks only (points and labels), not boxes");
    const PromptResult res = seg_.prompt(emb, c.points.data(), labels.size(), nullptr, 0);
    const std::vector<uint8_t> mask = combine(res, labels);
    double prompt[4];
    const bool one = click_box(emb, c.points, prompt);
    reset_object(obj, emb, mask.data(), one ? prompt : nullptr);
    double score = 0, n = 0;
    for (size_t k = 0; k < labels.size(); ++k)
        if (labels[k] == 1) score += res.iou[k], n += 1;
    PromptTrack t;
    t.id = id;
    t.mask = mask;
    for (int k = 0; k < 4; ++k) t.box[k] = static_cast<int32_t>(obj.box[k]);
    t.score = static_cast<float>(score / n);
    t.similarity = 1.0f;
    t.state = obj.state;
    return t;
}

PromptTrackResult PromptTracker::step(const uint8_t* frame, int frame_h, int frame_w) {
    auto emb = std::make_shared<const ImageEmbedding>(seg_.set_image(frame, frame_h, frame_w));
    check_size(*emb);
    emb_ = emb;
    PromptTrackResult out;
    out.frame_index = frame_index_++;
    out.height = frame_h;
    out.width = frame_w;
    if (objects_.empty()) return out;
    std::vector<double> boxes;
    std::vector<size_t> owner;
    search_boxes(frame_h, frame_w, boxes, owner);
    const PromptResult res = decode(*emb, boxes);
    std::vector<int32_t> boxes_out(owner.size() * 4);
    masks_to_boxes(res.masks.data(), res.count, res.height, res.width, boxes_out.data());
    const Cells c = cells(*emb, seg_.bundle().feat_stride);
    for (size_t k = 0; k < objects_.size(); ++k) {
        std::vector<size_t> cand;
        for (size_t i = 0; i < owner.size(); ++i)
            if (owner[i] == k) cand.push_back(i);
        out.objects.push_back(
            verify(objects_[k].first, objects_[k].second, res, boxes, boxes_out, cand, *emb, c));
    }
    return out;
}

// ------------------------------------------------------------------ internals
PromptTracker::Object& PromptTracker::get(int id) {
    return const_cast<Object&>(static_cast<const PromptTracker*>(this)->get(id));
}

const PromptTracker::Object& PromptTracker::get(int id) const {
    for (const auto& [k, obj] : objects_)
        if (k == id) return obj;
    std::string known;
    for (const auto& [k, obj] : objects_) known += (known.empty() ? "" : ", ") + std::to_string(k);
    invalid("no tracked object with id " + std::to_string(id) + "; tracked ids: [" + known + "]");
}

const ImageEmbedding& PromptTracker::last() const {
    if (!emb_)
        invalid(
            "no frame yet: pass a frame (or an ImageEmbedding) to add(), or step() one "
            "first");
    return *emb_;
}

// Python's _embedding: a frame of another size than the stream's, while objects are tracked
void PromptTracker::check_size(const ImageEmbedding& emb) const {
    if (!emb_ || objects_.empty()) return;
    const int h = emb_->prepared.frame_h, w = emb_->prepared.frame_w;
    if (emb.prepared.frame_h != h || emb.prepared.frame_w != w)
        invalid("frame of " + std::to_string(emb.prepared.frame_h) + " x " +
                std::to_string(emb.prepared.frame_w) + " in a stream of " + std::to_string(h) +
                " x " + std::to_string(w) +
                " frames: the tracked objects' boxes belong to that size; reset() for a new "
                "video");
}

// Python's _reset_object: (re)start `obj` from `mask` on `emb`
void PromptTracker::reset_object(Object& obj, const ImageEmbedding& emb, const uint8_t* mask,
                                 const double* prompt) const {
    double box[4];
    if (!mask_box(mask, emb.prepared.frame_h, emb.prepared.frame_w, box))
        invalid(
            "the prompt gives an empty mask on this frame: nothing to track (prompt "
            "inside the object, or give a box)");
    std::copy(box, box + 4, obj.box);
    std::copy(prompt ? prompt : box, (prompt ? prompt : box) + 4, obj.prompt);  // null: the box
    obj.memory = pool(emb, mask, cells(emb, seg_.bundle().feat_stride));
    obj.state = "tracked";
    obj.missed = 0;
}

// Python's _search_boxes: per object its last box enlarged by margin (and by search_margin
// while occluded / lost) and its last accepted prompt (owner: the object's index)
void PromptTracker::search_boxes(int h, int w, std::vector<double>& boxes,
                                 std::vector<size_t>& owner) const {
    const double lim[4] = {double(w), double(h), double(w), double(h)};
    for (size_t k = 0; k < objects_.size(); ++k) {
        const Object& obj = objects_[k].second;
        const double* b = obj.box;
        std::vector<double> margins = {config_.margin};
        if (obj.state != "tracked") margins.push_back(config_.search_margin);
        for (double m : margins) {
            const double dx = m * (b[2] - b[0]), dy = m * (b[3] - b[1]);
            const double e[4] = {b[0] - dx, b[1] - dy, b[2] + dx, b[3] + dy};
            for (int i = 0; i < 4; ++i) boxes.push_back(std::clamp(e[i], 0.0, lim[i]));
            owner.push_back(k);
        }
        if (!std::equal(obj.prompt, obj.prompt + 4, boxes.end() - 4)) {  // the last accepted
            boxes.insert(boxes.end(), obj.prompt, obj.prompt + 4);
            owner.push_back(k);
        }
    }
}

// Python's _decode: Segmenter::prompt on `boxes`, in calls of at most max_prompts boxes (an
// object may have up to three candidates)
PromptResult PromptTracker::decode(const ImageEmbedding& emb, const std::vector<double>& boxes) {
    const size_t n = boxes.size() / 4, step = static_cast<size_t>(seg_.max_prompts());
    if (n <= step) return seg_.prompt(emb, nullptr, 0, boxes.data(), n);
    PromptResult all;
    for (size_t i = 0; i < n; i += step) {
        PromptResult part = seg_.prompt(emb, nullptr, 0, boxes.data() + 4 * i,
                                        std::min(step, n - i));
        all.masks.insert(all.masks.end(), part.masks.begin(), part.masks.end());
        all.iou.insert(all.iou.end(), part.iou.begin(), part.iou.end());
        all.stability.insert(all.stability.end(), part.stability.begin(), part.stability.end());
        all.count += part.count;
        all.height = part.height;
        all.width = part.width;
    }
    return all;
}

// Python's _verify: the object's best candidate (highest similarity among those with enough
// area and score) and its state machine
PromptTrack PromptTracker::verify(int id, Object& obj, const PromptResult& res,
                                  const std::vector<double>& prompts,
                                  const std::vector<int32_t>& boxes,
                                  const std::vector<size_t>& cand, const ImageEmbedding& emb,
                                  const Cells& c) const {
    const PromptTrackerConfig& cfg = config_;
    const size_t hw = static_cast<size_t>(res.height) * res.width;
    bool found = false;
    float best_sim = -1;
    size_t best = 0;
    std::vector<float> best_feat;
    for (size_t i : cand) {
        const int32_t* b = boxes.data() + 4 * i;
        const uint8_t* mask = res.masks.data() + i * hw;
        if (b[2] <= b[0] || double(res.iou[i]) < cfg.min_score) continue;
        if (cfg.min_area > 1) {
            int64_t area = 0;
            for (int32_t y = b[1]; y < b[3]; ++y)
                for (int32_t x = b[0]; x < b[2]; ++x) area += mask[size_t(y) * res.width + x];
            if (area < cfg.min_area) continue;
        }
        std::vector<float> feat = pool(emb, mask, c);
        const float sim = dot(feat, obj.memory);
        if (!found || sim > best_sim) {
            found = true;
            best_sim = sim;
            best = i;
            best_feat = std::move(feat);
        }
    }
    PromptTrack t;
    t.id = id;
    if (found && double(best_sim) >= cfg.min_similarity) {
        double box[4];  // the mask's box is reported; the next prompt is cut
        for (int k = 0; k < 4; ++k) box[k] = boxes[4 * best + k];
        if (obj.state == "tracked")  // against box creep: grow at most max_growth a side
            clamp_growth(box, obj.box, cfg.max_growth, obj.box);
        else
            std::copy(box, box + 4, obj.box);
        std::copy(prompts.begin() + 4 * best, prompts.begin() + 4 * best + 4, obj.prompt);
        obj.state = "tracked";
        obj.missed = 0;
        const float a = static_cast<float>(cfg.momentum), b = static_cast<float>(1 - cfg.momentum);
        double norm = 0;
        for (size_t d = 0; d < obj.memory.size(); ++d) {
            obj.memory[d] = a * obj.memory[d] + b * best_feat[d];
            norm += double(obj.memory[d]) * obj.memory[d];
        }
        norm = std::max(std::sqrt(norm), 1e-12);
        for (float& x : obj.memory) x = static_cast<float>(x / norm);
        t.mask.assign(res.masks.begin() + best * hw, res.masks.begin() + (best + 1) * hw);
        std::copy(boxes.begin() + 4 * best, boxes.begin() + 4 * best + 4, t.box);
        t.score = res.iou[best];
        t.similarity = best_sim;
        t.state = "tracked";
        return t;
    }
    if (obj.missed < std::numeric_limits<int>::max()) obj.missed += 1;  // saturates
    obj.state = obj.missed >= cfg.max_occluded ? "lost" : "occluded";
    t.mask.assign(hw, 0);
    for (int k = 0; k < 4; ++k) t.box[k] = static_cast<int32_t>(obj.box[k]);
    t.score = -1;
    for (size_t i : cand) t.score = std::max(t.score, res.iou[i]);
    t.similarity = found ? best_sim : -1.0f;
    t.state = obj.state;
    return t;
}

}  // namespace rapsam
