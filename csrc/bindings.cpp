// pybind11 module rapsam_edge._core: the compiled kernels behind rapsam_edge.ops.
//
// The arguments are checked ONCE, in Python (rapsam_edge/ops/_checks.py), for both
// implementations; rapsam_edge.ops hands this module arguments that are already valid. The
// functions here only convert (sizes, pairs, dtypes, contiguity), release the GIL and call
// the core. What remains below are cheap guards where a wrong array would make the core read
// or write out of bounds (shapes that must agree, element sizes): they raise
// rapsam_edge.errors.InputError with a short message, as do the core's own checks (it is a
// C++ library too). This is the only file that includes Python headers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "assignment.hpp"
#include "build_info.hpp"
#include "common.hpp"
#include "overlay.hpp"
#include "parallel.hpp"
#include "postprocess.hpp"
#include "rle.hpp"
#include "tracker.hpp"

namespace py = pybind11;
using namespace pybind11::literals;
namespace contract = rapsam::contract;

namespace {

// rapsam_edge.errors classes, looked up once at import; deliberately never released (no
// decref after the interpreter has shut down).
py::handle g_input_error, g_config_error;

// A memory-safety guard failed (the core's own checks throw the same type); the module's
// exception translator raises it as rapsam_edge.errors.InputError.
void require(bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(what);
}

template <typename T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// An aligned array with the same contents (numpy arrays can be unaligned views).
template <typename T>
carray<T> aligned(carray<T> a) {
    if (a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) return a;
    return carray<T>::ensure(a.attr("copy")());
}

// size: an int (a square box) or a (height, width) pair
std::pair<int, int> hw_of(const py::handle& v) {
    if (!py::isinstance<py::sequence>(v)) {
        const int n = v.cast<int>();
        return {n, n};
    }
    return v.cast<std::pair<int, int>>();
}

// bool / uint8 masks, H x W or N x H x W -> C-contiguous N x H x W uint8 and "was single"
std::pair<carray<uint8_t>, bool> mask_stack(const py::array& a) {
    require(a.itemsize() == 1 && (a.dtype().kind() == 'b' || a.dtype().kind() == 'u'),
            "masks must be bool or uint8");
    require(a.ndim() == 2 || a.ndim() == 3, "masks must be H x W or N x H x W");
    const bool single = a.ndim() == 2;
    py::array bytes = a.attr("view")("uint8");
    if (single) bytes = bytes.attr("reshape")(py::make_tuple(1, a.shape(0), a.shape(1)));
    return {aligned(carray<uint8_t>::ensure(bytes)), single};
}

}  // namespace

namespace {

// ------------------------------------------------------------------ the ops
py::tuple letterbox(carray<uint8_t> image, const py::object& size, int pad_divisor, int pad_value,
                    bool swap_rb) {
    require(image.ndim() == 2 || image.ndim() == 3, "image must be H x W or H x W x C");
    image = aligned(image);
    const auto box = hw_of(size);
    const int in_h = static_cast<int>(image.shape(0)), in_w = static_cast<int>(image.shape(1));
    const int channels = image.ndim() == 3 ? static_cast<int>(image.shape(2)) : 1;
    const rapsam::LetterboxGeometry g = rapsam::letterbox_geometry(in_h, in_w, box.first,
                                                                   box.second, pad_divisor);
    std::vector<py::ssize_t> shape = {g.pad_h, g.pad_w};
    if (image.ndim() == 3) shape.push_back(channels);
    py::array_t<uint8_t> out(shape);
    const uint8_t* src = image.data();
    uint8_t* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        rapsam::letterbox(src, in_h, in_w, channels, g, pad_value, swap_rb, dst);
    }
    return py::make_tuple(out, g.scale, py::make_tuple(g.new_h, g.new_w));
}

py::tuple panoptic_fuse(carray<float> cls, carray<float> masks, std::pair<double, double> valid,
                        std::pair<int, int> out, carray<bool> is_thing, double score_threshold,
                        double overlap_threshold) {
    require(cls.ndim() == 2 && masks.ndim() == 3 && masks.shape(0) == cls.shape(0),
            "cls_logits must be N x (C+1) and mask_logits N x h x w");
    require(is_thing.ndim() == 1 && is_thing.shape(0) == cls.shape(1) - 1,
            "is_thing must have C entries");
    cls = aligned(cls);
    masks = aligned(masks);
    is_thing = aligned(is_thing);
    rapsam::PanopticParams params;
    params.valid_h = valid.first;
    params.valid_w = valid.second;
    params.out_h = out.first;
    params.out_w = out.second;
    params.score_threshold = score_threshold;
    params.overlap_threshold = overlap_threshold;
    params.check_finite = false;  // rapsam_edge.ops checked them (one scan)
    py::array_t<int32_t> label_map(
        {static_cast<py::ssize_t>(out.first), static_cast<py::ssize_t>(out.second)});
    const int n = static_cast<int>(cls.shape(0)), c1 = static_cast<int>(cls.shape(1));
    const int mh = static_cast<int>(masks.shape(1)), mw = static_cast<int>(masks.shape(2));
    const float *c = cls.data(), *m = masks.data();
    const bool* t = is_thing.data();
    int32_t* lm = label_map.mutable_data();
    std::vector<rapsam::Segment> segments;
    {
        py::gil_scoped_release release;
        segments = rapsam::panoptic_fuse(c, n, c1, m, mh, mw, t, params, lm);
    }
    py::array_t<rapsam::Segment> records(static_cast<py::ssize_t>(segments.size()));
    if (!segments.empty())
        std::memcpy(records.mutable_data(), segments.data(),
                    segments.size() * sizeof(rapsam::Segment));
    return py::make_tuple(label_map, records);
}

py::tuple prompt_masks(carray<float> masks, std::pair<double, double> valid,
                       std::pair<int, int> out, double threshold, double stability_offset) {
    require(masks.ndim() == 3, "mask_logits must be P x h x w");
    masks = aligned(masks);
    const py::ssize_t n = masks.shape(0);
    py::array result(py::dtype("bool"), std::vector<py::ssize_t>{n, out.first, out.second});
    py::array_t<float> stability(n);
    const float* src = masks.data();
    uint8_t* dst = static_cast<uint8_t*>(result.mutable_data());
    float* stab = stability.mutable_data();
    const int mh = static_cast<int>(masks.shape(1)), mw = static_cast<int>(masks.shape(2));
    {
        py::gil_scoped_release release;
        rapsam::prompt_masks(src, static_cast<int>(n), mh, mw, valid.first, valid.second, out.first,
                             out.second, threshold, stability_offset, dst, stab, 0,
                             /*check_finite=*/false);  // rapsam_edge.ops checked them
    }
    return py::make_tuple(result, stability);
}

py::array masks_to_boxes(const py::array& masks) {
    auto [stack, single] = mask_stack(masks);
    const int64_t n = stack.shape(0), h = stack.shape(1), w = stack.shape(2);
    py::array_t<int32_t> boxes({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(4)});
    const uint8_t* src = stack.data();
    int32_t* dst = boxes.mutable_data();
    {
        py::gil_scoped_release release;
        rapsam::masks_to_boxes(src, n, h, w, dst);
    }
    if (single) return boxes.attr("reshape")(4);
    return boxes;
}

py::object rle_encode(const py::array& mask) {
    auto [stack, single] = mask_stack(mask);
    const int64_t n = stack.shape(0), h = stack.shape(1), w = stack.shape(2);
    const uint8_t* src = stack.data();
    std::vector<std::string> strings(static_cast<size_t>(n));
    {
        py::gil_scoped_release release;
        for (int64_t i = 0; i < n; ++i) strings[i] = rapsam::rle_encode(src + i * h * w, h, w);
    }
    py::list out;
    for (const std::string& s : strings) {
        py::dict d;
        d["size"] = py::list(py::make_tuple(h, w));
        d["counts"] = py::bytes(s);
        out.append(d);
    }
    if (single) return out[0];
    return std::move(out);
}

// one uncompressed run length (a Python int) as int64, saturating: the core's run checks
// then name the problem (negative, or a sum that is not H*W)
int64_t run_value(const py::handle& c) {
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(c.ptr(), &overflow);
    if (x == -1 && PyErr_Occurred()) throw py::error_already_set();
    if (overflow < 0) return -1;
    if (overflow > 0) throw std::invalid_argument("rle counts sum to more than 2^63, expected H*W");
    return x;
}

py::array rle_decode_one(const py::handle& rle) {
    const auto hw = rle["size"].cast<std::pair<int64_t, int64_t>>();
    py::object counts = rle["counts"];
    if (py::isinstance<py::str>(counts)) counts = counts.attr("encode")("ascii");
    std::vector<int64_t> runs;
    if (py::isinstance<py::bytes>(counts)) {
        char* buffer = nullptr;
        py::ssize_t length = 0;
        if (PyBytes_AsStringAndSize(counts.ptr(), &buffer, &length) != 0)
            throw py::error_already_set();
        runs = rapsam::rle_counts_from_string(buffer, static_cast<size_t>(length));
    } else {
        for (py::handle c : counts)
            runs.push_back(run_value(py::int_(py::reinterpret_borrow<py::object>(c))));
    }
    rapsam::rle_check_runs(runs, hw.first, hw.second);  // sizes and sum: the output's bounds
    py::array out(py::dtype("bool"), std::vector<py::ssize_t>{hw.first, hw.second});
    uint8_t* dst = static_cast<uint8_t*>(out.mutable_data());
    {
        py::gil_scoped_release release;
        rapsam::rle_decode(runs, hw.first, hw.second, dst);
    }
    return out;
}

py::array rle_decode(const py::object& rle) {
    if (!(py::isinstance<py::list>(rle) || py::isinstance<py::tuple>(rle)))
        return rle_decode_one(rle);
    std::vector<py::array> masks;
    for (py::handle r : rle) masks.push_back(rle_decode_one(r));
    require(!masks.empty(), "rle list is empty");
    for (const py::array& m : masks)
        if (m.shape(0) != masks[0].shape(0) || m.shape(1) != masks[0].shape(1))
            throw std::invalid_argument("all RLEs in a list must have the same size");
    return py::module_::import("numpy").attr("stack")(masks);
}

py::tuple linear_assignment(carray<double> cost, bool maximize) {
    require(cost.ndim() == 2, "cost must be 2-D");
    cost = aligned(cost);
    const double* data = cost.data();
    const int64_t n_rows = cost.shape(0), n_cols = cost.shape(1);
    rapsam::Assignment a;
    {
        py::gil_scoped_release release;
        a = rapsam::linear_assignment(data, n_rows, n_cols, maximize);
    }
    py::array_t<int64_t> rows(static_cast<py::ssize_t>(a.rows.size()));
    py::array_t<int64_t> cols(static_cast<py::ssize_t>(a.cols.size()));
    if (!a.rows.empty()) {
        std::memcpy(rows.mutable_data(), a.rows.data(), a.rows.size() * sizeof(int64_t));
        std::memcpy(cols.mutable_data(), a.cols.data(), a.cols.size() * sizeof(int64_t));
    }
    return py::make_tuple(rows, cols);
}

py::array overlay(carray<uint8_t> image, carray<int32_t> labels, double alpha, bool boundary) {
    require(image.ndim() == 3 && image.shape(2) == 3, "image must be H x W x 3 uint8");
    require(labels.ndim() == 2 && labels.shape(0) == image.shape(0) &&
                labels.shape(1) == image.shape(1),
            "labels must be H x W, as the image");
    image = aligned(image);
    labels = aligned(labels);
    const int h = static_cast<int>(image.shape(0)), w = static_cast<int>(image.shape(1));
    py::array_t<uint8_t> out(
        {static_cast<py::ssize_t>(h), static_cast<py::ssize_t>(w), static_cast<py::ssize_t>(3)});
    const uint8_t* src = image.data();
    const int32_t* lab = labels.data();
    uint8_t* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        rapsam::overlay(src, lab, h, w, alpha, boundary, dst);
    }
    return out;
}

bool all_finite(carray<float> a) {
    a = aligned(a);
    const float* data = a.data();
    const size_t n = static_cast<size_t>(a.size());
    py::gil_scoped_release release;
    return rapsam::all_finite(data, n);
}

// ------------------------------------------------------------------ threads and build
void set_num_threads(int n) {
    py::gil_scoped_release release;  // idle workers beyond n are joined
    rapsam::set_num_threads(n);      // std::invalid_argument unless 1 <= n <= kMaxThreads
}

py::dict build_info() {
    const rapsam::BuildInfo b = rapsam::build_info();
    py::dict d;
    d["version"] = b.version;
    d["compiler"] = b.compiler;
    d["arch"] = b.arch;
    d["simd"] = b.simd;
    d["build_type"] = b.build_type;
    d["cxx_flags"] = b.cxx_flags;
    d["cores"] = rapsam::available_cores();
    d["max_threads"] = rapsam::kMaxThreads;
    return d;
}

// ------------------------------------------------------------------ the module, by topic
// rapsam_edge.errors for the core's exceptions (std::invalid_argument -> InputError), and
// RAPSAM_EDGE_THREADS read once, here: a bad value fails the import (ConfigError).
void bind_errors() {
    py::module_ errors = py::module_::import("rapsam_edge.errors");
    g_input_error = py::object(errors.attr("InputError")).release();  // never released
    g_config_error = py::object(errors.attr("ConfigError")).release();
    py::register_local_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::invalid_argument& e) {
            PyErr_SetString(g_input_error.ptr(), e.what());
        }
    });
    try {
        rapsam::num_threads();
    } catch (const std::invalid_argument& e) {
        PyErr_SetString(g_config_error.ptr(), e.what());
        throw py::error_already_set();
    }
}

// threads, the finite scan and the build description
void bind_threads_and_build(py::module_& m) {
    m.def(
        "get_num_threads", [] { return rapsam::num_threads(); },
        R"doc(get_num_threads() -> int: threads a large op uses (the calling thread included).
Set by set_num_threads, else RAPSAM_EDGE_THREADS, else the cores this process may use.)doc");
    m.def("set_num_threads", &set_num_threads, "n"_a,
          R"doc(set_num_threads(n: int) -> None: use n threads (1 to max_threads) in every later op.
The persistent worker pool shrinks at once and grows on demand; results do not depend on n.)doc");
    m.def(
        "parse_num_threads",
        [](const std::string& raw) -> py::object {
            std::optional<int> n;
            try {
                n = rapsam::parse_num_threads(raw);  // every byte, an embedded NUL too
            } catch (const std::invalid_argument& e) {
                PyErr_SetString(g_config_error.ptr(), e.what());  // a setting: as Python's
                throw py::error_already_set();
            }
            return n ? py::object(py::int_(*n)) : py::object(py::none());
        },
        "raw"_a,
        R"doc(parse_num_threads(raw: str) -> int | None: the core's rule for the threads variable
(rapsam_edge.contract.threads.parse_threads is the same rule); ConfigError when broken.)doc");
    m.def("all_finite", &all_finite, "a"_a,
          R"doc(all_finite(a: float32 array) -> bool: no NaN and no infinity in ``a`` (the core's
multi-threaded scan; rapsam_edge.ops' checks use it while the core is in use).)doc");
    m.def("build_info", &build_info,
          R"doc(build_info() -> dict: version, compiler, arch, simd (compile-time extensions),
build_type and cxx_flags of this build, cores (usable by this process) and max_threads.)doc");
}

// the per-frame post-processing (postprocess.hpp) and the segment records' dtype
void bind_postprocess(py::module_& m) {
    // the segment records: same fields, names and offsets as SEGMENT_DTYPE
    PYBIND11_NUMPY_DTYPE_EX(rapsam::Segment, id, "id", cls, "class", query, "query", score, "score",
                            area, "area", is_thing, "is_thing");

    m.def("letterbox", &letterbox, "image"_a, "size"_a, "pad_divisor"_a = 32, "pad_value"_a = 0,
          "swap_rb"_a = false,
          R"doc(Resize ``image`` (H x W x C or H x W uint8, C <= 4) to fit inside ``size`` (int =
square box, or (box_h, box_w)) keeping its aspect ratio (11-bit fixed-point bilinear), place it
top-left and pad bottom/right with ``pad_value`` up to multiples of ``pad_divisor``. ``swap_rb``
swaps channels 0 and 2. Returns (padded uint8, scale, (new_h, new_w)).)doc");

    m.def("panoptic_fuse", &panoptic_fuse, "cls_logits"_a, "mask_logits"_a, "valid_hw"_a,
          "out_hw"_a, "is_thing"_a, "score_threshold"_a = rapsam::contract::kScoreThreshold,
          "overlap_threshold"_a = rapsam::contract::kOverlapThreshold,
          R"doc(MaskFormer panoptic fusion, upsampling only the kept queries.

cls_logits: N x (C+1) float32 (last column = no object); mask_logits: N x h x w float32;
valid_hw: unpadded extent in mask cells; out_hw: output size; is_thing: C bools.
Returns (label_map out_h x out_w int32, 0 = void; segments: structured array of
SEGMENT_DTYPE records id, class, query, score, area, is_thing).)doc");

    m.def("prompt_masks", &prompt_masks, "mask_logits"_a, "valid_hw"_a, "out_hw"_a,
          "threshold"_a = rapsam::contract::kPromptThreshold,
          "stability_offset"_a = rapsam::contract::kStabilityOffset,
          R"doc(Upsample P x h x w float32 prompt logits (valid crop) to ``out_hw`` and threshold.
Returns (masks P x out_h x out_w bool: logit > threshold; stability P float32: SAM's stability
score area(logit > threshold + offset) / area(logit > threshold - offset), 0 if empty).)doc");

    m.def("masks_to_boxes", &masks_to_boxes, "masks"_a,
          R"doc(N x H x W (or H x W) bool/uint8 masks -> N x 4 (or 4) int32 boxes
(x0, y0, x1, y1), x1/y1 exclusive; an empty mask gives (0, 0, 0, 0).)doc");
}

// COCO run-length encoding (rle.hpp)
void bind_rle(py::module_& m) {
    m.def("rle_encode", &rle_encode, "mask"_a,
          R"doc(H x W (or N x H x W) bool/uint8 mask -> COCO compressed RLE
{"size": [H, W], "counts": bytes} (or a list), byte-identical to pycocotools.mask.encode.)doc");

    m.def("rle_decode", &rle_decode, "rle"_a,
          R"doc(COCO RLE dict (compressed bytes/str counts, or an uncompressed list) -> H x W
bool; a list of RLEs of one size -> N x H x W bool.)doc");
}

// linear assignment (assignment.hpp)
void bind_assignment(py::module_& m) {
    m.def("linear_assignment", &linear_assignment, "cost"_a, "maximize"_a = false,
          R"doc(Optimal assignment on an R x C cost matrix (rectangular allowed), like
scipy.optimize.linear_sum_assignment: returns (rows, cols) int64, rows ascending, min(R, C)
pairs. +inf (-inf with maximize) forbids a pair; an infeasible matrix or NaN raises
ValueError. Same shortest-augmenting-path algorithm and tie-breaking as the numpy twin.)doc");
}

// the online tracker (tracker.hpp)

// `x` as a C-contiguous array of T, refused (InputError) unless its numpy kind is one of
// `kinds` ("iu" integers, "iuf" real numbers; never bool, complex, str or object) or it is
// empty.
template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <typename T>
CArray<T> tracker_array(const py::object& x, const char* name, const char* kinds) {
    const py::array a = py::array::ensure(x);
    if (!a) throw std::invalid_argument(std::string(name) + " must be an array");
    const char kind = a.dtype().kind();
    if (a.size() > 0 && std::string(kinds).find(kind) == std::string::npos)
        throw std::invalid_argument(std::string(name) + " must hold " +
                                    (std::string(kinds) == "iu" ? "integers" : "real numbers") +
                                    ", got dtype kind '" + std::string(1, kind) + "'");
    CArray<T> out = CArray<T>::ensure(a);
    if (!out) throw std::invalid_argument(std::string(name) + " cannot be converted");
    return out;
}

// classes: integers in [0, int32 max], checked on the values as given (before the int32 cast)
CArray<int32_t> tracker_classes(const py::object& x) {
    const auto wide = tracker_array<int64_t>(x, "classes", "iu");
    const int64_t* v = wide.data();
    for (py::ssize_t i = 0; i < wide.size(); ++i)
        if (v[i] < 0 || v[i] > std::numeric_limits<int32_t>::max())
            throw std::invalid_argument("classes must be class indices in [0, 2147483647], got " +
                                        std::to_string(v[i]));
    return CArray<int32_t>::ensure(wide);
}

void bind_tracker(py::module_& m) {
    py::class_<rapsam::OnlineTracker>(
        m, "OnlineTracker",
        R"doc(The C++ twin of rapsam_edge.runtime.tracker.OnlineTracker (the C++ runtime's
tracker): query-embedding association with the same rules and defaults.)doc")
        .def(py::init([](double match_threshold, double class_change_penalty, double birth_score,
                         int max_missed, double momentum) {
                 rapsam::TrackerConfig c;
                 c.match_threshold = match_threshold;
                 c.class_change_penalty = class_change_penalty;
                 c.birth_score = birth_score;
                 c.max_missed = max_missed;
                 c.momentum = momentum;
                 return rapsam::OnlineTracker(c);
             }),
             "match_threshold"_a = rapsam::contract::kMatchThreshold,
             "class_change_penalty"_a = rapsam::contract::kClassChangePenalty,
             "birth_score"_a = rapsam::contract::kBirthScore,
             "max_missed"_a = rapsam::contract::kMaxMissed,
             "momentum"_a = rapsam::contract::kMomentum)
        .def(
            "update",
            [](rapsam::OnlineTracker& t, const py::object& embeddings_in,
               const py::object& classes_in, const py::object& scores_in) {
                // kinds first (no silent cast of a float class, a bool or a complex value),
                // then the values in OnlineTracker::check, all before any state changes
                const auto embeddings = tracker_array<float>(embeddings_in, "embeddings", "iuf");
                const auto classes = tracker_classes(classes_in);
                const auto scores = tracker_array<float>(scores_in, "scores", "iuf");
                if (embeddings.ndim() != 2) throw std::invalid_argument("embeddings must be N x D");
                const int64_t n = embeddings.shape(0), d = embeddings.shape(1);
                if (classes.ndim() != 1 || scores.ndim() != 1 || classes.shape(0) != n ||
                    scores.shape(0) != n)
                    throw std::invalid_argument("classes and scores must be N long");
                std::vector<int32_t> ids;
                {
                    py::gil_scoped_release release;
                    ids = t.update(embeddings.data(), n, d, classes.data(), scores.data());
                }
                return py::array_t<int32_t>(static_cast<py::ssize_t>(ids.size()), ids.data());
            },
            "embeddings"_a, "classes"_a, "scores"_a,
            R"doc(update(embeddings N x D float32, classes N int32, scores N float32) -> N int32
track ids (0: neither matched nor started a track).)doc")
        .def("reset", &rapsam::OnlineTracker::reset)
        .def_property_readonly("tracks_started", &rapsam::OnlineTracker::tracks_started)
        .def_property_readonly("frame_index", &rapsam::OnlineTracker::frame_index)
        .def_property_readonly("live_tracks",
                               [](const rapsam::OnlineTracker& t) { return t.tracks().size(); })
        .def_property_readonly(
            "tracks",
            [](const rapsam::OnlineTracker& t) {
                py::list out;
                for (const rapsam::Track& k : t.tracks()) {
                    py::dict scores;
                    for (const auto& [cls, sum] : k.class_scores) scores[py::int_(cls)] = sum;
                    out.append(py::dict("track_id"_a = k.track_id,
                                        "embedding"_a = py::array_t<double>(
                                            static_cast<py::ssize_t>(k.embedding.size()),
                                            k.embedding.data()),
                                        "class_scores"_a = scores, "hits"_a = k.hits,
                                        "missed"_a = k.missed));
                }
                return out;
            },
            "the live tracks, oldest first: dicts of track_id, embedding (D float64, unit "
            "norm), class_scores ({class: score sum}, in first-seen order), hits, missed");
}

// the label overlay (overlay.hpp)
void bind_overlay(py::module_& m) {
    m.def("overlay", &overlay, "image"_a, "labels"_a, "alpha"_a = 0.5, "boundary"_a = true,
          R"doc(Blend a palette colour per label id (0 = void) into an H x W x 3 uint8 image;
with ``boundary`` the pixels whose right or lower neighbour has another label get the full
colour. Returns a new H x W x 3 uint8 image.)doc");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    bind_errors();
    m.doc() =
        "Compiled C++ twins of rapsam_edge.ops._numpy (per-frame post-processing). Same "
        "names, arguments and results. The arguments must be valid: rapsam_edge.ops checks "
        "them (rapsam_edge.ops.impl('cpp') is this module behind those checks).";
    m.attr("__version__") = rapsam::core_version();

    bind_threads_and_build(m);
    bind_postprocess(m);
    bind_rle(m);
    bind_assignment(m);
    bind_tracker(m);
    bind_overlay(m);
}
