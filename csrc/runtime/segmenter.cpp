// The C++ runtime's Segmenter (see segmenter.hpp) over a Backend (backend.hpp). Every step mirrors
// rapsam_edge/runtime/segmenter.py so that both give the same label maps and masks.
#include "segmenter.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>

#include "rapsam_contract.hpp"

namespace rapsam {
namespace {

using contract::kPointBoxHalf;
using contract::kStabilityOffset;
namespace encoder = contract::graphs::encoder;
namespace panoptic_decoder = contract::graphs::panoptic_decoder;
namespace prompt_decoder = contract::graphs::prompt_decoder;
constexpr float kSaturatedLogit = static_cast<float>(contract::kSaturatedLogit);

[[noreturn]] void invalid(const std::string& what) { throw std::invalid_argument(what); }

// One axis a graph output must have: its name in messages and its size (kAny: any size >= 1).
struct Axis {
    static constexpr int64_t kAny = -1;
    const char* name;
    int64_t size;
};

std::string dims_text(const std::vector<int64_t>& dims) {
    std::string out = "[";
    for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
    return out + "]";
}

// Output `t` of `graph` checked before anything indexes it: exactly the axes `want` (rank and
// every fixed size), every size in [1, INT_MAX], and exactly as many values as the shape holds
// (the product computed without overflow). Throws BackendError naming the graph and tensor,
// as Python's runtime/outputs.check_shapes does.
void check_output(const OutputTensor& t, const std::string& graph, const std::string& tensor,
                  const std::vector<Axis>& want) {
    bool ok = t.shape.size() == want.size();
    size_t count = 1;
    for (size_t a = 0; ok && a < want.size(); ++a) {
        const int64_t d = t.shape[a];
        ok = d >= 1 && d <= std::numeric_limits<int>::max() &&
             (want[a].size == Axis::kAny || d == want[a].size) &&
             count <= std::numeric_limits<size_t>::max() / static_cast<size_t>(d);
        if (ok) count *= static_cast<size_t>(d);
    }
    if (ok && count == t.data.size()) return;
    std::string expected = "[";
    for (size_t a = 0; a < want.size(); ++a) {
        expected += std::string(a ? ", " : "") + want[a].name;
        if (want[a].size != Axis::kAny) expected += "=" + std::to_string(want[a].size);
    }
    throw BackendError(graph + " output " + tensor + " has shape " + dims_text(t.shape) + " (" +
                       std::to_string(t.data.size()) + " values), expected " + expected +
                       "]: the graph does not give what its manifest describes");
}

// The one pass over a decoder's logits before post-processing: +/-inf -> +/-kSaturatedLogit
// (a definite decision); NaN is a broken graph. The ops then skip their own finite check.
// A graph output that is not a logit (iou, query_embed): an infinity carries no decision, so
// NaN or infinity is a broken graph, as in the Python runtime (same messages).
void require_finite(const float* a, size_t n, const std::string& where) {
    for (size_t i = 0; i < n; ++i)
        if (!std::isfinite(a[i]))
            throw BackendError(where +
                               " holds NaN or infinity (a numerically broken graph, e.g. FP16 "
                               "overflow)");
}

void saturate(std::vector<float>& a, const std::string& where) {
    for (float& v : a) {
        if (std::isnan(v))
            throw BackendError(where +
                               " holds NaN (a numerically broken graph, e.g. FP16 overflow)");
        if (std::isinf(v)) v = v > 0 ? kSaturatedLogit : -kSaturatedLogit;
    }
}

}  // namespace

Segmenter::Segmenter(const Bundle& bundle, const SegmenterOptions& options)
    : bundle_(bundle), options_(options) {
    if (options_.color_order != "RGB" && options_.color_order != "BGR")
        invalid("color_order must be RGB or BGR, got " + options_.color_order);
    if (options_.input_size == 0) options_.input_size = bundle_.long_side;
    if (options_.input_size < 1 || options_.input_size % bundle_.pad_divisor)
        invalid("input_size must be a positive multiple of " + std::to_string(bundle_.pad_divisor));
    if (options_.max_prompts < 1 || options_.max_prompts > contract::kMaxPrompts)
        invalid("max_prompts must be in [1, " + std::to_string(contract::kMaxPrompts) + "]");
    for (const auto& c : bundle_.classes) is_thing_.push_back(c.is_thing ? 1 : 0);
    // the loader validated every listed graph's tensors per role (bundle.cpp, the Python
    // rules); a bundle may hold the encoder alone, the Segmenter needs all three graphs
    for (const char* g : contract::graphs::kNames)
        if (!bundle_.graphs.count(g))
            throw BundleError("manifest.graphs." + std::string(g) +
                              ": missing (the Segmenter runs every graph)");
    feat_dim_ = bundle_.graphs.at(encoder::name).output_specs.at(encoder::out_feats).dims.at(1);
    BackendOptions backend_options;
    backend_options.device = options_.device;
    backend_options.threads = options_.threads;
    backend_options.static_copies = options_.static_copies;
    backend_ = make_backend(options_.backend, bundle_, backend_options);
    check_feature_grid();
}

const std::string& Segmenter::output_name(const char* graph, int index) const {
    return bundle_.graphs.at(graph).outputs.at(static_cast<size_t>(index));
}

// As Python's Segmenter._check_feature_grid: the encoder run once on a small blank frame must
// give the features the manifest implies (feat_stride, feature width); a wrong stride would
// otherwise give misplaced masks. Also the encoder's first (allocating) run.
void Segmenter::check_feature_grid() {
    const int pad = bundle_.pad_divisor;
    const int side = pad * std::max(1, (64 + pad - 1) / pad);
    const std::vector<uint8_t> image(static_cast<size_t>(side) * side * 3, 0);
    const OutputTensor feats = std::move(
        backend_->run(encoder::name, {{InputView::Type::u8, {1, side, side, 3}, image.data()}})
            .at(encoder::out_feats));
    const int64_t width = feat_dim_ != Axis::kAny   ? feat_dim_
                          : feats.shape.size() == 4 ? feats.shape[1]
                                                    : 0;
    const std::vector<int64_t> want = {1, width, side / bundle_.feat_stride,
                                       side / bundle_.feat_stride};
    if (feats.shape != want)
        throw BundleError("bundle '" + bundle_.name + "': the encoder maps a " +
                          std::to_string(side) + " x " + std::to_string(side) +
                          " frame to features " + dims_text(feats.shape) +
                          ", the manifest implies " + dims_text(want) + " (feat_stride " +
                          std::to_string(bundle_.feat_stride) + ")");
}

Segmenter::~Segmenter() = default;

std::vector<std::string> Segmenter::class_names() const {
    std::vector<std::string> out;
    for (const auto& c : bundle_.classes) out.push_back(c.name);
    return out;
}

PreparedFrame Segmenter::prepare(const uint8_t* frame, int frame_h, int frame_w) const {
    if (frame == nullptr) invalid("frame is null");
    if (frame_h < 1 || frame_w < 1) invalid("frame is empty");
    if (int64_t{frame_h} * frame_w > kMaxFramePixels)
        invalid("frame of " + std::to_string(frame_h) + " x " + std::to_string(frame_w) + " = " +
                std::to_string(int64_t{frame_h} * frame_w) +
                " pixels is larger than kMaxFramePixels (" + std::to_string(kMaxFramePixels) +
                "); resize it first");
    PreparedFrame p;
    p.geometry = letterbox_geometry(frame_h, frame_w, options_.input_size, options_.input_size,
                                    bundle_.pad_divisor);
    p.image.resize(static_cast<size_t>(p.geometry.pad_h) * p.geometry.pad_w * 3);
    letterbox(frame, frame_h, frame_w, 3, p.geometry, bundle_.pad_value,
              options_.color_order != bundle_.color_order, p.image.data());
    p.frame_h = frame_h;
    p.frame_w = frame_w;
    return p;
}

std::vector<float> Segmenter::encode(const PreparedFrame& p, int64_t& dim, int64_t& fh,
                                     int64_t& fw) {
    InputView image{InputView::Type::u8,
                    {1, p.geometry.pad_h, p.geometry.pad_w, 3},
                    p.image.data()};
    OutputTensor feats = std::move(backend_->run(encoder::name, {image}).at(encoder::out_feats));
    // the feature grid of this frame (check_feature_grid checked the stride at load)
    check_output(feats, encoder::name, output_name(encoder::name, encoder::out_feats),
                 {{"B", 1},
                  {"D", feat_dim_},
                  {"h", p.geometry.pad_h / bundle_.feat_stride},
                  {"w", p.geometry.pad_w / bundle_.feat_stride}});
    require_finite(feats.data.data(), feats.data.size(),
                   std::string(encoder::name) + " " +
                       output_name(encoder::name, encoder::out_feats));
    dim = feats.shape[1];
    fh = feats.shape[2];
    fw = feats.shape[3];
    return std::move(feats.data);
}

PanopticResult Segmenter::panoptic(const uint8_t* frame, int frame_h, int frame_w) {
    const PreparedFrame p = prepare(frame, frame_h, frame_w);
    int64_t dim, fh, fw;
    std::vector<float> feats = encode(p, dim, fh, fw);
    auto outs = backend_->run(panoptic_decoder::name,
                              {{InputView::Type::f32, {1, dim, fh, fw}, feats.data()}});
    // every output checked against the others, the frame's feature grid and the manifest
    // (N queries, C + 1 class columns) before any pointer into it is formed
    const char* g = panoptic_decoder::name;
    const int64_t c1 = static_cast<int64_t>(is_thing_.size()) + 1, nq = bundle_.num_queries;
    OutputTensor& cls_t = outs.at(panoptic_decoder::out_cls_logits);
    OutputTensor& masks_t = outs.at(panoptic_decoder::out_mask_logits);
    const OutputTensor& emb_t = outs.at(panoptic_decoder::out_query_embed);
    check_output(cls_t, g, output_name(g, panoptic_decoder::out_cls_logits),
                 {{"B", 1}, {"N", nq}, {"C+1", c1}});
    check_output(masks_t, g, output_name(g, panoptic_decoder::out_mask_logits),
                 {{"B", 1}, {"N", nq}, {"h", fh}, {"w", fw}});
    check_output(emb_t, g, output_name(g, panoptic_decoder::out_query_embed),
                 {{"B", 1}, {"N", nq}, {"D", dim}});
    const int n = static_cast<int>(nq);
    std::vector<float> cls = std::move(cls_t.data), masks = std::move(masks_t.data);
    PanopticParams params;
    params.valid_h = double(p.geometry.new_h) / bundle_.feat_stride;
    params.valid_w = double(p.geometry.new_w) / bundle_.feat_stride;
    params.out_h = frame_h;
    params.out_w = frame_w;
    params.score_threshold = bundle_.score_threshold;
    params.overlap_threshold = bundle_.overlap_threshold;
    PanopticResult r;
    r.height = frame_h;
    r.width = frame_w;
    r.panoptic_map.resize(static_cast<size_t>(frame_h) * frame_w);
    std::unique_ptr<bool[]> thing(new bool[is_thing_.size() + 1]);
    for (size_t i = 0; i < is_thing_.size(); ++i) thing[i] = is_thing_[i] != 0;
    const std::string where = std::string(g) + " ";
    saturate(cls, where + output_name(g, panoptic_decoder::out_cls_logits));
    saturate(masks, where + output_name(g, panoptic_decoder::out_mask_logits));
    params.check_finite = false;  // saturate() has looked at every value
    r.segments = panoptic_fuse(cls.data(), n, static_cast<int>(c1), masks.data(),
                               static_cast<int>(fh), static_cast<int>(fw), thing.get(), params,
                               r.panoptic_map.data());
    // every output is checked before it is used, as in Python (rapsam_edge/runtime/outputs.py)
    require_finite(emb_t.data.data(), emb_t.data.size(),
                   where + output_name(g, panoptic_decoder::out_query_embed));
    const float* emb = emb_t.data.data();
    const size_t d = static_cast<size_t>(emb_t.shape[2]);
    for (const Segment& s : r.segments) {  // the kept queries' embeddings, for tracking
        r.query_embed.insert(r.query_embed.end(), emb + s.query * d, emb + (s.query + 1) * d);
    }
    return r;
}

TrackResult Segmenter::track(const uint8_t* frame, int frame_h, int frame_w,
                             OnlineTracker& tracker) {
    TrackResult t;
    t.panoptic = panoptic(frame, frame_h, frame_w);
    const auto& segs = t.panoptic.segments;
    const size_t d = segs.empty() ? 0 : t.panoptic.query_embed.size() / segs.size();
    std::vector<float> emb, scores;
    std::vector<int32_t> classes;
    std::vector<size_t> things;
    for (size_t i = 0; i < segs.size(); ++i) {
        if (!segs[i].is_thing) continue;
        things.push_back(i);
        const float* e = t.panoptic.query_embed.data() + i * d;
        emb.insert(emb.end(), e, e + d);
        classes.push_back(segs[i].cls);
        scores.push_back(segs[i].score);
    }
    const auto ids = tracker.update(emb.data(), static_cast<int64_t>(things.size()),
                                    static_cast<int64_t>(std::max<size_t>(d, 1)), classes.data(),
                                    scores.data());
    int32_t max_id = 0;
    for (const Segment& s : segs) max_id = std::max(max_id, s.id);
    std::vector<int32_t> lut(static_cast<size_t>(max_id) + 1, 0);
    for (size_t k = 0; k < things.size(); ++k) {
        lut[segs[things[k]].id] = ids[k];
        if (ids[k] > 0) {
            t.track_ids.push_back(ids[k]);
            t.track_classes.push_back(classes[k]);
            t.track_scores.push_back(scores[k]);
        }
    }
    t.track_map.resize(t.panoptic.panoptic_map.size());
    for (size_t i = 0; i < t.track_map.size(); ++i)
        t.track_map[i] = lut[t.panoptic.panoptic_map[i]];
    t.frame_index = tracker.frame_index();
    return t;
}

ImageEmbedding Segmenter::set_image(const uint8_t* frame, int frame_h, int frame_w) {
    ImageEmbedding e;
    e.prepared = prepare(frame, frame_h, frame_w);
    e.feats = encode(e.prepared, e.dim, e.feat_h, e.feat_w);
    return e;
}

// An embedding is the caller's struct: its sizes must agree with each other, the frame and
// the encoder before the decoder reads e.feats through them (set_image makes such).
void Segmenter::check_embedding(const ImageEmbedding& e) const {
    const PreparedFrame& p = e.prepared;
    const int64_t stride = bundle_.feat_stride;
    if (p.frame_h < 1 || p.frame_w < 1 || int64_t{p.frame_h} * p.frame_w > kMaxFramePixels ||
        p.geometry.pad_h < 1 || p.geometry.pad_w < 1 || p.geometry.pad_h > kMaxSide ||
        p.geometry.pad_w > kMaxSide || p.geometry.new_h < 1 || p.geometry.new_w < 1 ||
        p.geometry.new_h > p.geometry.pad_h || p.geometry.new_w > p.geometry.pad_w ||
        !(p.geometry.scale > 0))
        invalid(
            "embedding: its frame geometry is not one prepare() makes; pass what "
            "set_image() returned");
    // feat_h, feat_w <= pad / stride <= 2^15 and dim < 2^24: the product cannot overflow
    const bool grid = e.dim >= 1 && e.dim < (int64_t{1} << 24) &&
                      (feat_dim_ < 0 || e.dim == feat_dim_) && e.feat_h >= 1 && e.feat_w >= 1 &&
                      e.feat_h == p.geometry.pad_h / stride &&
                      e.feat_w == p.geometry.pad_w / stride &&
                      e.feats.size() == static_cast<uint64_t>(e.dim) *
                                            static_cast<uint64_t>(e.feat_h) *
                                            static_cast<uint64_t>(e.feat_w);
    if (!grid)
        invalid("embedding: " + std::to_string(e.feats.size()) + " feature values for 1 x " +
                std::to_string(e.dim) + " x " + std::to_string(e.feat_h) + " x " +
                std::to_string(e.feat_w) +
                ", not the encoder's features of its frame; pass what "
                "set_image() returned");
}

PromptResult Segmenter::prompt(const ImageEmbedding& e, const std::vector<float>& points,
                               const std::vector<float>& boxes) {
    if (points.size() % 2 || boxes.size() % 4) invalid("points are P x 2 and boxes P x 4");
    const std::vector<double> p(points.begin(), points.end()), b(boxes.begin(), boxes.end());
    return prompt(e, p.data(), p.size() / 2, b.data(), b.size() / 4);
}

PromptResult Segmenter::prompt(const ImageEmbedding& e, const double* points, size_t n_points,
                               const double* boxes, size_t n_boxes) {
    check_embedding(e);
    if ((n_points && points == nullptr) || (n_boxes && boxes == nullptr))
        invalid("points or boxes is null with a nonzero count");
    const size_t np = n_points, nb = n_boxes, total = np + nb;
    if (total == 0) invalid("prompt() needs at least one point or box");
    if (total > static_cast<size_t>(options_.max_prompts))
        invalid(std::to_string(total) + " prompts in one call; at most max_prompts=" +
                std::to_string(options_.max_prompts));
    const double w = e.prepared.frame_w, h = e.prepared.frame_h, s = e.prepared.geometry.scale;
    std::vector<float> net;  // 1 x P x 4 network-input pixels
    for (size_t i = 0; i < np; ++i) {
        const double x = points[2 * i], y = points[2 * i + 1];
        if (!std::isfinite(x) || !std::isfinite(y)) invalid("points must be finite numbers");
        if (x < 0 || y < 0 || x > w || y > h)
            invalid("points must lie inside the " + std::to_string(int(h)) + " x " +
                    std::to_string(int(w)) + " (H x W) frame");
        for (double v : {x * s - kPointBoxHalf, y * s - kPointBoxHalf, x * s + kPointBoxHalf,
                         y * s + kPointBoxHalf})
            net.push_back(static_cast<float>(v));
    }
    for (size_t i = 0; i < nb; ++i) {
        double b[4] = {boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]};
        for (double v : b)
            if (!std::isfinite(v)) invalid("boxes must be finite numbers");
        if (b[2] <= b[0] || b[3] <= b[1]) invalid("boxes need x1 > x0 and y1 > y0");
        if (b[2] <= 0 || b[3] <= 0 || b[0] >= w || b[1] >= h)
            invalid("boxes must overlap the " + std::to_string(int(h)) + " x " +
                    std::to_string(int(w)) + " (H x W) frame");
        const double lim[4] = {w, h, w, h};
        for (int k = 0; k < 4; ++k)
            net.push_back(static_cast<float>(std::clamp(b[k], 0.0, lim[k]) * s));
    }
    // Python's prompt_decoder_boxes: padded (the last box repeated) to a multiple of
    // kPromptCountBucket, at most max_prompts, so the decoder sees few distinct prompt counts
    // (OpenVINO's static copies); prompts do not interact, the first `total` rows are kept
    const size_t bucket = static_cast<size_t>(contract::kPromptCountBucket);
    const size_t padded = std::max(total, std::min((total + bucket - 1) / bucket * bucket,
                                                   static_cast<size_t>(options_.max_prompts)));
    for (size_t i = total; i < padded; ++i)
        for (int k = 0; k < 4; ++k) net.push_back(net[4 * (total - 1) + k]);
    auto outs =
        backend_->run(prompt_decoder::name,
                      {{InputView::Type::f32, {1, e.dim, e.feat_h, e.feat_w}, e.feats.data()},
                       {InputView::Type::f32, {1, static_cast<int64_t>(padded), 4}, net.data()}});
    // both outputs checked against the padded prompt count and the embedding's feature grid
    // before any pointer into them is formed
    const char* g = prompt_decoder::name;
    const int64_t p = static_cast<int64_t>(padded);
    OutputTensor& logits_t = outs.at(prompt_decoder::out_mask_logits);
    OutputTensor& iou_t = outs.at(prompt_decoder::out_iou);
    check_output(logits_t, g, output_name(g, prompt_decoder::out_mask_logits),
                 {{"B", 1}, {"P", p}, {"h", e.feat_h}, {"w", e.feat_w}});
    check_output(iou_t, g, output_name(g, prompt_decoder::out_iou), {{"B", 1}, {"P", p}});
    std::vector<float> logits = std::move(logits_t.data);
    PromptResult r;
    r.count = static_cast<int>(total);
    r.height = e.prepared.frame_h;
    r.width = e.prepared.frame_w;
    const std::string where = std::string(g) + " ";
    // the outputs in role order, as Python (rapsam_edge/runtime/outputs.py)
    saturate(logits, where + output_name(g, prompt_decoder::out_mask_logits));
    r.iou = std::move(iou_t.data);
    require_finite(r.iou.data(), r.iou.size(), where + output_name(g, prompt_decoder::out_iou));
    // every row checked (as Python's checked_outputs); the caller gets the first `total`
    r.iou.resize(total);
    r.masks.resize(total * r.height * r.width);
    r.stability.resize(total);
    prompt_masks(logits.data(), static_cast<int>(total), static_cast<int>(e.feat_h),
                 static_cast<int>(e.feat_w),
                 double(e.prepared.geometry.new_h) / bundle_.feat_stride,
                 double(e.prepared.geometry.new_w) / bundle_.feat_stride, r.height, r.width,
                 bundle_.prompt_threshold, kStabilityOffset, r.masks.data(), r.stability.data(), 0,
                 /*check_finite=*/false);
    return r;
}

}  // namespace rapsam
