// pybind11 module rapsam_edge._core: the compiled twins of rapsam_edge.ops._numpy.
// Same function names, argument names, defaults, return types and argument checks (the
// same rapsam_edge.errors.InputError messages, in the same order, as
// rapsam_edge.ops._checks). Scalars are taken as Python objects and checked here, so a
// wrongly typed one is an InputError naming it, not pybind11's generic TypeError. All heavy
// work runs with the GIL released, on the core's persistent thread pool. This is the only
// file that includes Python headers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
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
#include "tracker.hpp"
#include "rle.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace {

// Python classes looked up once at import; deliberately never released (no decref after
// the interpreter has shut down).
struct PyRefs {
    py::handle input_error, config_error, real, np_integer, np_bool, sequence, numpy;
};
PyRefs g_py;

// Every argument error (of the bindings and of the C++ core) is a std::invalid_argument;
// the module's exception translator raises it as rapsam_edge.errors.InputError.
[[noreturn]] void input_error(const std::string& message) { throw std::invalid_argument(message); }

std::string pyrepr(const py::handle& obj) { return py::repr(obj).cast<std::string>(); }
std::string pystr(const py::handle& obj) { return py::str(obj).cast<std::string>(); }
std::string shape_repr(const py::array& a) { return pyrepr(a.attr("shape")); }
std::string type_name(const py::handle& obj) {
    return py::type::handle_of(obj).attr("__name__").cast<std::string>();
}

py::object numpy() { return py::reinterpret_borrow<py::object>(g_py.numpy); }

// True for a Python TypeError / ValueError: a conversion of a bad argument failed.
bool conversion_error(const py::error_already_set& e) {
    return e.matches(PyExc_TypeError) || e.matches(PyExc_ValueError);
}

bool is_dtype(const py::array& a, const char* name) {
    // numpy's own dtype equality, as the twin's `x.dtype != np.float32`
    return py::reinterpret_borrow<py::object>(a.dtype()).equal(py::dtype(name));
}

// _checks._require_array
py::array require_array(const py::object& x, const char* name) {
    if (!py::isinstance<py::array>(x))
        input_error(std::string(name) + " must be a numpy array, got " + type_name(x));
    py::array a = py::reinterpret_borrow<py::array>(x);
    if (!(a.flags() & py::array::c_style))
        input_error(std::string(name) + " must be C-contiguous (use np.ascontiguousarray)");
    return a;
}

// An aligned array with the same contents (numpy arrays can be unaligned views).
py::array aligned(const py::array& a) {
    if (a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) return a;
    return numpy().attr("ascontiguousarray")(a.attr("copy")());
}

// _checks.check_image
py::array check_image(const py::object& obj, const char* name) {
    py::array image = require_array(obj, name);
    const std::string n(name);
    if (!is_dtype(image, "uint8"))
        input_error(n + " must be uint8, got " + pystr(image.attr("dtype")));
    if (!(image.ndim() == 2 || image.ndim() == 3) ||
        (image.ndim() == 3 && !(image.shape(2) >= 1 && image.shape(2) <= 4)))
        input_error(n + " must be H x W or H x W x C (C <= 4), got shape " + shape_repr(image));
    if (image.shape(0) < 1 || image.shape(1) < 1)
        input_error(n + " is empty: shape " + shape_repr(image));
    if (std::max(image.shape(0), image.shape(1)) > rapsam::kMaxSide)
        input_error(n + " sides must be <= " + std::to_string(rapsam::kMaxSide) + ", got " +
                    pyrepr(py::make_tuple(image.shape(0), image.shape(1))));
    return aligned(image);
}

bool is_instance(const py::handle& v, const py::handle& cls) {
    const int r = PyObject_IsInstance(v.ptr(), cls.ptr());
    if (r < 0) throw py::error_already_set();
    return r == 1;
}

bool is_integer(const py::handle& v) {
    return PyLong_Check(v.ptr()) || is_instance(v, g_py.np_integer);
}

bool is_sequence(const py::handle& v) { return is_instance(v, g_py.sequence); }

// numbers.Real, as _checks.check_float: int, float, bool, numpy numbers
bool is_real(const py::handle& v) {
    return PyFloat_Check(v.ptr()) || PyLong_Check(v.ptr()) || is_instance(v, g_py.real);
}

// float(v) of a real number; false on overflow (a huge int)
bool real_value(const py::handle& v, double& out) {
    out = PyFloat_AsDouble(v.ptr());
    if (out == -1.0 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) throw py::error_already_set();
        PyErr_Clear();
        return false;
    }
    return true;
}

// _checks.check_int
long long check_int(const py::object& value, const char* name, long long lo, long long hi) {
    const std::string n(name);
    if (!is_integer(value)) input_error(n + " must be an integer, got " + type_name(value));
    const py::int_ lo_(lo), hi_(hi);
    if (!(PyObject_RichCompareBool(lo_.ptr(), value.ptr(), Py_LE) == 1 &&
          PyObject_RichCompareBool(value.ptr(), hi_.ptr(), Py_LE) == 1))
        input_error(n + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                    "], got " + pystr(value));
    return py::int_(value).cast<long long>();
}

// _checks.check_float
double check_float(const py::object& value, const char* name) {
    const std::string n(name);
    if (!is_real(value)) input_error(n + " must be a real number, got " + type_name(value));
    double v = 0.0;
    if (!real_value(value, v)) input_error(n + " is out of range, got " + pystr(value));
    return v;
}

// _checks.check_bool
bool check_bool(const py::object& value, const char* name) {
    if (PyBool_Check(value.ptr())) return value.ptr() == Py_True;
    if (!(is_instance(value, g_py.np_bool) || is_integer(value)))
        input_error(std::string(name) + " must be a bool, got " + type_name(value));
    const int truth = PyObject_IsTrue(value.ptr());
    if (truth < 0) throw py::error_already_set();
    return truth == 1;
}

// _checks.check_hw
std::pair<int, int> check_hw(const py::object& value_in, const char* name, bool allow_int) {
    const std::string n(name);
    py::object value = value_in;
    if (allow_int && is_integer(value)) value = py::make_tuple(value, value);
    if (!is_sequence(value) || py::len(value) != 2)
        input_error(n + " must be a (height, width) pair, got " + pyrepr(value));
    py::object h = value[py::int_(0)], w = value[py::int_(1)];
    if (!is_integer(h) || !is_integer(w))
        input_error(n + " must hold integers, got " + pyrepr(value));
    const py::int_ lo(1), hi(rapsam::kMaxSide);
    auto in_range = [&](const py::object& v) {
        return PyObject_RichCompareBool(lo.ptr(), v.ptr(), Py_LE) == 1 &&
               PyObject_RichCompareBool(v.ptr(), hi.ptr(), Py_LE) == 1;
    };
    if (!(in_range(h) && in_range(w)))
        input_error(n + " must be in [1, " + std::to_string(rapsam::kMaxSide) + "], got " +
                    pyrepr(value));
    return {py::int_(h).cast<int>(), py::int_(w).cast<int>()};
}

// _checks.check_valid_hw
std::pair<double, double> check_valid_hw(const py::object& valid_hw, int64_t h, int64_t w) {
    if (!is_sequence(valid_hw) || py::len(valid_hw) != 2)
        input_error("valid_hw must be a (height, width) pair, got " + pyrepr(valid_hw));
    py::object h_obj = valid_hw[py::int_(0)], w_obj = valid_hw[py::int_(1)];
    if (!is_real(h_obj) || !is_real(w_obj))
        input_error("valid_hw must hold real numbers, got " + pyrepr(valid_hw));
    double vh = 0.0, vw = 0.0;
    const bool fits = real_value(h_obj, vh) && real_value(w_obj, vw);
    if (!(fits && std::isfinite(vh) && std::isfinite(vw) && 0 < vh && vh <= h && 0 < vw && vw <= w))
        input_error("valid_hw must be in (0, mask size " + std::to_string(h) + " x " +
                    std::to_string(w) + "], got " + pyrepr(valid_hw));
    return {vh, vw};
}

bool finite(const py::array& a) {
    const float* data = static_cast<const float*>(a.data());
    const size_t n = static_cast<size_t>(a.size());
    py::gil_scoped_release release;
    return rapsam::all_finite(data, n);
}

// _checks.check_logits
py::array check_logits(const py::object& x, const char* name, int ndim) {
    py::array a = require_array(x, name);
    const std::string n(name);
    if (!is_dtype(a, "float32")) input_error(n + " must be float32, got " + pystr(a.attr("dtype")));
    if (a.ndim() != ndim)
        input_error(n + " must have " + std::to_string(ndim) + " dimensions, got shape " +
                    shape_repr(a));
    a = aligned(a);
    if (!finite(a)) input_error(n + " contains NaN or infinity");
    if (ndim == 2 && a.shape(1) < 1)
        input_error(n + " needs at least one column, got shape " + shape_repr(a));
    return a;
}

// _checks.check_mask_stack (n < 0: any number of masks)
py::array check_mask_stack(const py::object& x, const char* name, int64_t n) {
    py::array a = check_logits(x, name, 3);
    const std::string nm(name);
    if (n >= 0 && a.shape(0) != n)
        input_error(nm + " has " + std::to_string(a.shape(0)) + " masks, expected " +
                    std::to_string(n) + " (one per query)");
    if (a.shape(1) < 1 || a.shape(2) < 1)
        input_error(nm + " masks are empty: shape " + shape_repr(a));
    return a;
}

// _numpy._as_mask_stack: bool/uint8, 2 or 3 dims (any strides); returns a C-contiguous
// N x H x W uint8 view/copy and whether the input was a single mask.
std::pair<py::array, bool> as_mask_stack(const py::object& x, const char* name) {
    const std::string n(name);
    if (!py::isinstance<py::array>(x))
        input_error(n + " must be a numpy array, got " + type_name(x));
    py::array a = py::reinterpret_borrow<py::array>(x);
    if (!(is_dtype(a, "bool") || is_dtype(a, "uint8")))
        input_error(n + " must be bool or uint8, got " + pystr(a.attr("dtype")));
    if (a.ndim() != 2 && a.ndim() != 3)
        input_error(n + " must be H x W or N x H x W, got shape " + shape_repr(a));
    const bool single = a.ndim() == 2;
    py::array stack = numpy().attr("ascontiguousarray")(a);
    if (is_dtype(stack, "bool")) stack = stack.attr("view")("uint8");
    if (single) stack = stack.attr("reshape")(py::make_tuple(1, a.shape(0), a.shape(1)));
    return {aligned(stack), single};
}

// ------------------------------------------------------------------ the ops
py::tuple letterbox(const py::object& image_in, const py::object& size,
                    const py::object& pad_divisor_in, const py::object& pad_value_in,
                    const py::object& swap_rb_in) {
    py::array image = check_image(image_in, "image");
    const auto box = check_hw(size, "size", true);
    const long long pad_divisor = check_int(pad_divisor_in, "pad_divisor", 1, 4096);
    const long long pad_value = check_int(pad_value_in, "pad_value", 0, 255);
    const bool swap_rb = check_bool(swap_rb_in, "swap_rb");
    const int in_h = static_cast<int>(image.shape(0)), in_w = static_cast<int>(image.shape(1));
    const int channels = image.ndim() == 3 ? static_cast<int>(image.shape(2)) : 1;
    if (swap_rb && channels < 3)
        input_error("swap_rb needs an image with >= 3 channels, got " + std::to_string(channels));
    const rapsam::LetterboxGeometry g =
        rapsam::letterbox_geometry(in_h, in_w, box.first, box.second, static_cast<int>(pad_divisor));
    std::vector<py::ssize_t> shape = {g.pad_h, g.pad_w};
    if (image.ndim() == 3) shape.push_back(channels);
    py::array_t<uint8_t> out(shape);
    const uint8_t* src = static_cast<const uint8_t*>(image.data());
    uint8_t* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        rapsam::letterbox(src, in_h, in_w, channels, g, static_cast<int>(pad_value), swap_rb, dst);
    }
    return py::make_tuple(out, g.scale, py::make_tuple(g.new_h, g.new_w));
}

py::tuple panoptic_fuse(const py::object& cls_in, const py::object& mask_in,
                        const py::object& valid_hw, const py::object& out_hw,
                        const py::object& is_thing_in, const py::object& score_threshold_in,
                        const py::object& overlap_threshold_in) {
    py::array cls = check_logits(cls_in, "cls_logits", 2);
    const int64_t n_queries = cls.shape(0), n_cls1 = cls.shape(1);
    py::array masks = check_mask_stack(mask_in, "mask_logits", n_queries);
    const auto out = check_hw(out_hw, "out_hw", false);
    const auto valid = check_valid_hw(valid_hw, masks.shape(1), masks.shape(2));
    py::array is_thing;
    try {
        is_thing = numpy().attr("ascontiguousarray")(is_thing_in, "dtype"_a = "bool");
    } catch (const py::error_already_set& e) {
        if (!conversion_error(e)) throw;
        input_error("is_thing must be an array of C = " + std::to_string(n_cls1 - 1) +
                    " bools, got " + pyrepr(is_thing_in));
    }
    if (!(is_thing.ndim() == 1 && is_thing.shape(0) == n_cls1 - 1))
        input_error("is_thing must have C = " + std::to_string(n_cls1 - 1) +
                    " entries (cls_logits has C+1 columns), got shape " + shape_repr(is_thing));
    is_thing = aligned(is_thing);
    const double score_threshold = check_float(score_threshold_in, "score_threshold");
    const double overlap_threshold = check_float(overlap_threshold_in, "overlap_threshold");
    rapsam::PanopticParams params;
    params.valid_h = valid.first;
    params.valid_w = valid.second;
    params.out_h = out.first;
    params.out_w = out.second;
    params.score_threshold = score_threshold;
    params.overlap_threshold = overlap_threshold;
    params.check_finite = false;  // checked above, with the twin's messages
    py::array_t<int32_t> label_map({static_cast<py::ssize_t>(out.first),
                                    static_cast<py::ssize_t>(out.second)});
    const float* c = static_cast<const float*>(cls.data());
    const float* m = static_cast<const float*>(masks.data());
    const bool* t = static_cast<const bool*>(is_thing.data());
    int32_t* lm = label_map.mutable_data();
    std::vector<rapsam::Segment> segments;
    {
        py::gil_scoped_release release;
        segments = rapsam::panoptic_fuse(c, static_cast<int>(n_queries), static_cast<int>(n_cls1), m,
                                         static_cast<int>(masks.shape(1)),
                                         static_cast<int>(masks.shape(2)), t, params, lm);
    }
    py::array_t<rapsam::Segment> records(static_cast<py::ssize_t>(segments.size()));
    if (!segments.empty())
        std::memcpy(records.mutable_data(), segments.data(), segments.size() * sizeof(rapsam::Segment));
    return py::make_tuple(label_map, records);
}

py::tuple prompt_masks(const py::object& mask_in, const py::object& valid_hw,
                       const py::object& out_hw, const py::object& threshold_in,
                       const py::object& stability_offset_in) {
    py::array masks = check_mask_stack(mask_in, "mask_logits", -1);
    const auto out = check_hw(out_hw, "out_hw", false);
    const auto valid = check_valid_hw(valid_hw, masks.shape(1), masks.shape(2));
    const double threshold = check_float(threshold_in, "threshold");
    const double stability_offset = check_float(stability_offset_in, "stability_offset");
    if (!std::isfinite(threshold))
        input_error("threshold must be finite, got " + pyrepr(py::float_(threshold)));
    if (!std::isfinite(stability_offset))
        input_error("stability_offset must be finite, got " + pyrepr(py::float_(stability_offset)));
    if (stability_offset < 0)
        input_error("stability_offset must be >= 0, got " + pyrepr(py::float_(stability_offset)));
    const py::ssize_t n = masks.shape(0);
    py::array result(py::dtype("bool"), std::vector<py::ssize_t>{n, out.first, out.second});
    py::array_t<float> stability(n);
    const float* src = static_cast<const float*>(masks.data());
    uint8_t* dst = static_cast<uint8_t*>(result.mutable_data());
    float* stab = stability.mutable_data();
    {
        py::gil_scoped_release release;
        rapsam::prompt_masks(src, static_cast<int>(n), static_cast<int>(masks.shape(1)),
                             static_cast<int>(masks.shape(2)), valid.first, valid.second,
                             out.first, out.second, threshold, stability_offset, dst, stab, 0,
                             false);
    }
    return py::make_tuple(result, stability);
}

py::array masks_to_boxes(const py::object& masks_in) {
    auto [stack, single] = as_mask_stack(masks_in, "masks");
    const int64_t n = stack.shape(0), h = stack.shape(1), w = stack.shape(2);
    py::array_t<int32_t> boxes({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(4)});
    const uint8_t* src = static_cast<const uint8_t*>(stack.data());
    int32_t* dst = boxes.mutable_data();
    {
        py::gil_scoped_release release;
        rapsam::masks_to_boxes(src, n, h, w, dst);
    }
    if (single) return boxes.attr("reshape")(4);
    return boxes;
}

py::object rle_encode(const py::object& mask) {
    auto [stack, single] = as_mask_stack(mask, "mask");
    const int64_t n = stack.shape(0), h = stack.shape(1), w = stack.shape(2);
    const uint8_t* src = static_cast<const uint8_t*>(stack.data());
    std::vector<std::string> strings(n);
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

int64_t run_value(const py::handle& c) {
    py::int_ v(py::reinterpret_borrow<py::object>(c));
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
    if (overflow < 0) input_error("rle counts must be non-negative");
    if (overflow > 0) input_error("rle counts sum to more than 2^63, expected H*W");
    return x;
}

py::array rle_decode_one(const py::handle& rle) {
    if (!py::isinstance<py::dict>(rle) || !rle.contains("size") || !rle.contains("counts"))
        input_error("rle must be a dict with 'size' and 'counts'");
    py::object size = rle["size"];
    std::vector<py::int_> hw;
    try {
        for (py::handle v : size) {
            hw.emplace_back(py::reinterpret_borrow<py::object>(v));  // int(v)
            if (hw.size() > 2) break;
        }
    } catch (const py::error_already_set& e) {
        if (!conversion_error(e)) throw;
        input_error("rle size must be a (height, width) pair of integers, got " + pyrepr(size));
    }
    if (hw.size() != 2) input_error("rle size must be a (height, width) pair, got " + pyrepr(size));
    const py::int_ zero(0), limit(int64_t{1} << 62);
    for (const py::int_& v : hw) {
        if (PyObject_RichCompareBool(v.ptr(), zero.ptr(), Py_LT) == 1)
            input_error("rle size must be non-negative, got " + pyrepr(size));
        if (PyObject_RichCompareBool(v.ptr(), limit.ptr(), Py_GE) == 1)
            input_error("rle size is too large, got " + pyrepr(size));
    }
    const int64_t height = hw[0].cast<int64_t>(), width = hw[1].cast<int64_t>();
    py::object counts = rle["counts"];
    if (py::isinstance<py::str>(counts)) {
        try {
            counts = counts.attr("encode")("ascii");
        } catch (const py::error_already_set& e) {
            if (!e.matches(PyExc_UnicodeError)) throw;
            input_error("rle counts string must be ASCII");
        }
    }
    std::vector<int64_t> runs;
    if (py::isinstance<py::bytes>(counts)) {
        char* buffer = nullptr;
        py::ssize_t length = 0;
        if (PyBytes_AsStringAndSize(counts.ptr(), &buffer, &length) != 0) throw py::error_already_set();
        runs = rapsam::rle_counts_from_string(buffer, static_cast<size_t>(length));
    } else {
        try {
            for (py::handle c : counts) runs.push_back(run_value(c));
        } catch (const py::error_already_set& e) {
            if (!conversion_error(e)) throw;
            input_error("rle counts must be a string or a list of integers, got " + type_name(counts));
        }
    }
    rapsam::rle_check_runs(runs, height, width);
    py::array out(py::dtype("bool"), std::vector<py::ssize_t>{height, width});
    uint8_t* dst = static_cast<uint8_t*>(out.mutable_data());
    {
        py::gil_scoped_release release;
        rapsam::rle_decode(runs, height, width, dst);
    }
    return out;
}

py::array rle_decode(const py::object& rle) {
    if (py::isinstance<py::list>(rle) || py::isinstance<py::tuple>(rle)) {
        if (py::len(rle) == 0) input_error("rle list is empty");
        py::list masks;
        bool same = true;
        for (py::handle r : rle) {
            py::array m = rle_decode_one(r);
            if (py::len(masks) > 0 && !(m.shape(0) == py::array(masks[0]).shape(0) &&
                                        m.shape(1) == py::array(masks[0]).shape(1)))
                same = false;
            masks.append(m);
        }
        if (!same) input_error("all RLEs in a list must have the same size");
        return numpy().attr("stack")(masks);
    }
    return rle_decode_one(rle);
}

py::tuple linear_assignment(const py::object& cost_in, const py::object& maximize_in) {
    if (!py::isinstance<py::array>(cost_in))
        input_error("cost must be a numpy array, got " + type_name(cost_in));
    py::array cost = py::reinterpret_borrow<py::array>(cost_in);
    if (cost.ndim() != 2) input_error("cost must be 2-D, got shape " + shape_repr(cost));
    const char kind = cost.dtype().kind();
    if (!(kind == 'f' || kind == 'i' || kind == 'u' || kind == 'b'))
        input_error("cost must be numeric, got " + pystr(cost.attr("dtype")));
    const bool maximize = check_bool(maximize_in, "maximize");
    py::array c = numpy().attr("ascontiguousarray")(cost, "dtype"_a = "float64");
    c = aligned(c);
    const double* data = static_cast<const double*>(c.data());
    const int64_t n_rows = c.shape(0), n_cols = c.shape(1);
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

py::array overlay(const py::object& image_in, const py::object& labels_in,
                  const py::object& alpha_in, const py::object& boundary_in) {
    py::array image = check_image(image_in, "image");
    if (image.ndim() != 3 || image.shape(2) != 3)
        input_error("image must be H x W x 3 uint8, got shape " + shape_repr(image));
    if (!py::isinstance<py::array>(labels_in) ||
        !is_dtype(py::reinterpret_borrow<py::array>(labels_in), "int32"))
        input_error("labels must be an int32 numpy array");
    py::array labels = py::reinterpret_borrow<py::array>(labels_in);
    if (!(labels.ndim() == 2 && labels.shape(0) == image.shape(0) &&
          labels.shape(1) == image.shape(1)))
        input_error("labels shape " + shape_repr(labels) + " must equal image H x W " +
                    pyrepr(py::make_tuple(image.shape(0), image.shape(1))));
    const double alpha = check_float(alpha_in, "alpha");
    if (!(0.0 <= alpha && alpha <= 1.0))
        input_error("alpha must be in [0, 1], got " + pyrepr(py::float_(alpha)));
    const bool boundary = check_bool(boundary_in, "boundary");
    labels = aligned(numpy().attr("ascontiguousarray")(labels));
    const int h = static_cast<int>(image.shape(0)), w = static_cast<int>(image.shape(1));
    py::array_t<uint8_t> out({static_cast<py::ssize_t>(h), static_cast<py::ssize_t>(w),
                              static_cast<py::ssize_t>(3)});
    const uint8_t* src = static_cast<const uint8_t*>(image.data());
    const int32_t* lab = static_cast<const int32_t*>(labels.data());
    uint8_t* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        rapsam::overlay(src, lab, h, w, alpha, boundary, dst);
    }
    return out;
}

// ------------------------------------------------------------------ threads and build
void set_num_threads(const py::object& n_in) {
    const int n = static_cast<int>(check_int(n_in, "n", 1, rapsam::kMaxThreads));
    py::gil_scoped_release release;  // idle workers beyond n are joined
    rapsam::set_num_threads(n);
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

}  // namespace

PYBIND11_MODULE(_core, m) {
    const auto keep = [](py::object obj) { return obj.release(); };  // never released
    py::object np = py::module_::import("numpy");
    g_py.numpy = keep(np);
    g_py.np_integer = keep(np.attr("integer"));
    g_py.np_bool = keep(np.attr("bool_"));
    g_py.real = keep(py::module_::import("numbers").attr("Real"));
    g_py.sequence = keep(py::module_::import("collections.abc").attr("Sequence"));
    py::module_ errors = py::module_::import("rapsam_edge.errors");
    g_py.input_error = keep(errors.attr("InputError"));
    g_py.config_error = keep(errors.attr("ConfigError"));
    py::register_local_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::invalid_argument& e) {
            PyErr_SetString(g_py.input_error.ptr(), e.what());
        }
    });
    // RAPSAM_EDGE_THREADS is read once, here: a bad value fails the import
    try {
        rapsam::num_threads();
    } catch (const std::invalid_argument& e) {
        PyErr_SetString(g_py.config_error.ptr(), e.what());
        throw py::error_already_set();
    }

    // the segment records: same fields, names and offsets as SEGMENT_DTYPE
    PYBIND11_NUMPY_DTYPE_EX(rapsam::Segment, id, "id", cls, "class", query, "query", score,
                            "score", area, "area", is_thing, "is_thing");
    m.doc() =
        "Compiled C++ twins of rapsam_edge.ops._numpy (per-frame post-processing). Same "
        "names, arguments and results; argument errors raise rapsam_edge.errors.InputError "
        "(a ValueError) naming the argument.";
    m.attr("__version__") = rapsam::core_version();

    m.def("get_num_threads", [] { return rapsam::num_threads(); },
          R"doc(get_num_threads() -> int: threads a large op uses (the calling thread included).
Set by set_num_threads, else RAPSAM_EDGE_THREADS, else the cores this process may use.)doc");
    m.def("set_num_threads", &set_num_threads, "n"_a,
          R"doc(set_num_threads(n: int) -> None: use n threads (1 to 256) in every later op.
The persistent worker pool shrinks at once and grows on demand; results do not depend on n.)doc");
    m.def(
        "parse_num_threads",
        [](const std::string& raw) -> py::object {
            const std::optional<int> n = rapsam::parse_num_threads(raw.c_str());
            return n ? py::object(py::int_(*n)) : py::object(py::none());
        },
        "raw"_a,
        R"doc(parse_num_threads(raw: str) -> int | None: the core's rule for the threads variable
(rapsam_edge.contract.threads.parse_threads is the same rule); InputError when broken.)doc");
    m.def("build_info", &build_info,
          R"doc(build_info() -> dict: version, compiler, arch, simd (compile-time extensions),
build_type and cxx_flags of this build, cores (usable by this process) and max_threads.)doc");

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

    m.def("rle_encode", &rle_encode, "mask"_a,
          R"doc(H x W (or N x H x W) bool/uint8 mask -> COCO compressed RLE
{"size": [H, W], "counts": bytes} (or a list), byte-identical to pycocotools.mask.encode.)doc");

    m.def("rle_decode", &rle_decode, "rle"_a,
          R"doc(COCO RLE dict (compressed bytes/str counts, or an uncompressed list) -> H x W
bool; a list of RLEs of one size -> N x H x W bool.)doc");

    m.def("linear_assignment", &linear_assignment, "cost"_a, "maximize"_a = false,
          R"doc(Optimal assignment on an R x C cost matrix (rectangular allowed), like
scipy.optimize.linear_sum_assignment: returns (rows, cols) int64, rows ascending, min(R, C)
pairs. +inf (-inf with maximize) forbids a pair; an infeasible matrix or NaN raises
ValueError. Same shortest-augmenting-path algorithm and tie-breaking as the numpy twin.)doc");

    py::class_<rapsam::OnlineTracker>(m, "OnlineTracker",
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
        .def("update",
             [](rapsam::OnlineTracker& t,
                py::array_t<float, py::array::c_style | py::array::forcecast> embeddings,
                py::array_t<int32_t, py::array::c_style | py::array::forcecast> classes,
                py::array_t<float, py::array::c_style | py::array::forcecast> scores) {
                 if (embeddings.ndim() != 2)
                     throw std::invalid_argument("embeddings must be N x D");
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
                               [](const rapsam::OnlineTracker& t) { return t.tracks().size(); });

    m.def("overlay", &overlay, "image"_a, "labels"_a, "alpha"_a = 0.5, "boundary"_a = true,
          R"doc(Blend a palette colour per label id (0 = void) into an H x W x 3 uint8 image;
with ``boundary`` the pixels whose right or lower neighbour has another label get the full
colour. Returns a new H x W x 3 uint8 image.)doc");
}
