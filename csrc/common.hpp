// Shared helpers of the rapsam_core library: sampling grids and argument checks.
// Plain C++17, no Python, no OpenCV.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace rapsam {

/// Largest accepted image / output side (same as rapsam_edge.ops._checks.MAX_SIDE).
constexpr int kMaxSide = 1 << 15;

/// Bilinear source taps of one axis (see rapsam_edge.ops._numpy.sample_grid):
/// output sample i reads source cells i0[i] and i1[i] with weights (1 - frac[i], frac[i]).
struct Taps {
    std::vector<int64_t> i0, i1;
    std::vector<double> frac;
};

/// Taps for resizing the first `valid_len` cells of a `src_len` axis to `out_len` samples
/// (half-pixel centres, like cv2 INTER_LINEAR), computed in double exactly as the twin.
Taps sample_grid(int64_t out_len, double valid_len, int64_t src_len);

/// True when no element of `data[0..n)` is NaN or +-infinity.
bool all_finite(const float* data, size_t n);

/// Every argument error of the core is a std::invalid_argument (ValueError in Python).
[[noreturn]] inline void fail(const std::string& message) { throw std::invalid_argument(message); }

}  // namespace rapsam
