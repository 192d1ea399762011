// Twins of rapsam_edge.ops._numpy: letterbox, panoptic_fuse, prompt_masks, masks_to_boxes.
//
// Exactness: sampling positions and weights are computed in double as sample_grid does,
// float weights are rounded as _float_weights, interpolation is done in float with the
// twin's operation order (horizontal w0*a + w1*b, then vertical), probabilities in double.
// The library is compiled with -ffp-contract=off so that no FMA changes a rounding.
//
// Speed: a bilinear output pixel between source taps (y0, y1) x (x0, x1) is a convex
// combination of the four corner logits, so whole "cells" (the output pixels that share
// the same four taps) are decided from their corners when possible: the sign of a logit,
// threshold tests and, with probability bounds, which kept query can win the cell. Only
// undecided cells are evaluated per pixel, with exactly the twin's arithmetic.
#include "postprocess.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <utility>

#include "parallel.hpp"

namespace rapsam {

// ------------------------------------------------------------------ shared helpers
Taps sample_grid(int64_t out_len, double valid_len, int64_t src_len) {
    Taps t;
    t.i0.resize(out_len);
    t.i1.resize(out_len);
    t.frac.resize(out_len);
    const double step = valid_len / static_cast<double>(out_len);
    for (int64_t i = 0; i < out_len; ++i) {
        double pos = (static_cast<double>(i) + 0.5) * step - 0.5;
        pos = std::max(pos, 0.0);
        const int64_t i0 = std::min(static_cast<int64_t>(std::floor(pos)), src_len - 1);
        t.i0[i] = i0;
        t.i1[i] = std::min(i0 + 1, src_len - 1);
        t.frac[i] = std::min(pos - static_cast<double>(i0), 1.0);
    }
    return t;
}

static bool all_finite_serial(const float* data, size_t n) {
    // exponent bits all set <=> inf or NaN; an integer OR-reduction vectorises well
    const uint32_t* bits = reinterpret_cast<const uint32_t*>(data);
    uint32_t bad = 0;
    size_t i = 0;
    constexpr size_t kBlock = 4096;
    while (i < n) {
        const size_t end = std::min(n, i + kBlock);
        for (; i < end; ++i) bad |= static_cast<uint32_t>((bits[i] & 0x7f800000u) == 0x7f800000u);
        if (bad) return false;
    }
    return true;
}

bool all_finite(const float* data, size_t n) {
    constexpr size_t kPerPart = size_t{1} << 19;  // memory bound: a few parts are enough
    if (n < 2 * kPerPart) return all_finite_serial(data, n);
    const int parts = std::min(num_threads(), static_cast<int>(std::min<size_t>(n / kPerPart, 8)));
    std::atomic<bool> ok{true};
    parallel_for(parts, [&](int part, int n_parts) {
        const size_t lo = n / n_parts * part,
                     hi = part + 1 == n_parts ? n : n / n_parts * (part + 1);
        if (!all_finite_serial(data + lo, hi - lo)) ok.store(false, std::memory_order_relaxed);
    });
    return ok.load();
}

namespace {

// Output samples sharing the same pair of source taps.
struct Band {
    int64_t t0, t1;
    int begin, end;
};

std::vector<Band> make_bands(const Taps& t) {
    std::vector<Band> bands;
    const int n = static_cast<int>(t.i0.size());
    for (int i = 0; i < n; ++i) {
        if (!bands.empty() && bands.back().t0 == t.i0[i] && bands.back().t1 == t.i1[i]) {
            bands.back().end = i + 1;
        } else {
            bands.push_back({t.i0[i], t.i1[i], i, i + 1});
        }
    }
    return bands;
}

// Float weights as _float_weights: ((1 - frac) as float32, frac as float32).
void float_weights(const Taps& t, std::vector<float>& w0, std::vector<float>& w1) {
    const size_t n = t.frac.size();
    w0.resize(n);
    w1.resize(n);
    for (size_t i = 0; i < n; ++i) {
        w0[i] = static_cast<float>(1.0 - t.frac[i]);
        w1[i] = static_cast<float>(t.frac[i]);
    }
}

// Splits row bands into n_parts contiguous groups of about equal output rows.
std::vector<size_t> split_bands(const std::vector<Band>& bands, int n_parts) {
    std::vector<size_t> cut(n_parts + 1, bands.size());
    cut[0] = 0;
    const double total = bands.empty() ? 0.0 : bands.back().end;
    size_t b = 0;
    for (int p = 1; p < n_parts; ++p) {
        const double target = total * p / n_parts;
        while (b < bands.size() && bands[b].begin < target) ++b;
        cut[p] = b;
    }
    return cut;
}

// Interpolated logits of one cell's columns for its two source rows (the twin's
// horizontal pass): top[c] = wx0*a + wx1*b, bot[c] = wx0*c + wx1*d.
inline void horizontal(const float* wx0, const float* wx1, int c0, int c1, float a, float b,
                       float c, float d, float* top, float* bot) {
    for (int x = c0; x < c1; ++x) {
        top[x - c0] = wx0[x] * a + wx1[x] * b;
        bot[x - c0] = wx0[x] * c + wx1[x] * d;
    }
}

// Largest possible rounding error of a float bilinear value whose corners are bounded
// by m in magnitude (a safe over-estimate: the exact bound is about 3e-7 * m).
inline double interp_margin(double m) { return 4e-6 * m + 1e-30; }

// Bounds (widened by the rounding margin) of every bilinear value inside the cell between the
// source taps of row band ``rb`` and column band ``cb`` of an h x mask_w logit plane.
inline std::pair<double, double> cell_range(const float* L, int64_t mask_w, const Band& rb,
                                            const Band& cb) {
    const float a = L[rb.t0 * mask_w + cb.t0], b = L[rb.t0 * mask_w + cb.t1];
    const float c = L[rb.t1 * mask_w + cb.t0], d = L[rb.t1 * mask_w + cb.t1];
    const float mn = std::min(std::min(a, b), std::min(c, d));
    const float mx = std::max(std::max(a, b), std::max(c, d));
    const double e = interp_margin(std::max(std::fabs(double(mn)), std::fabs(double(mx))));
    return {double(mn) - e, double(mx) + e};
}

void check_valid(double valid_h, double valid_w, int mask_h, int mask_w) {
    if (!(std::isfinite(valid_h) && std::isfinite(valid_w) && valid_h > 0 && valid_h <= mask_h &&
          valid_w > 0 && valid_w <= mask_w)) {
        fail("valid_hw must be in (0, mask size " + std::to_string(mask_h) + " x " +
             std::to_string(mask_w) + "], got (" + std::to_string(valid_h) + ", " +
             std::to_string(valid_w) + ")");
    }
}

void check_out(int out_h, int out_w) {
    if (!(out_h >= 1 && out_h <= kMaxSide && out_w >= 1 && out_w <= kMaxSide)) {
        fail("out_hw must be in [1, " + std::to_string(kMaxSide) + "], got (" +
             std::to_string(out_h) + ", " + std::to_string(out_w) + ")");
    }
}

// numpy's pairwise summation (used by ndarray.sum along a contiguous axis).
double pairwise_sum(const double* a, int64_t n) {
    if (n < 8) {
        double res = 0.0;
        for (int64_t i = 0; i < n; ++i) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; ++j) r[j] = a[j];
        int64_t i = 8;
        for (; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; ++j) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

}  // namespace

// ------------------------------------------------------------------ letterbox
LetterboxGeometry letterbox_geometry(int in_h, int in_w, int box_h, int box_w, int pad_divisor) {
    if (in_h < 1 || in_w < 1 || in_h > kMaxSide || in_w > kMaxSide)
        fail("image sides must be in [1, " + std::to_string(kMaxSide) + "]");
    if (box_h < 1 || box_w < 1 || box_h > kMaxSide || box_w > kMaxSide)
        fail("size must be in [1, " + std::to_string(kMaxSide) + "]");
    if (pad_divisor < 1 || pad_divisor > 4096)
        fail("pad_divisor must be in [1, 4096], got " + std::to_string(pad_divisor));
    LetterboxGeometry g;
    g.scale = std::min(static_cast<double>(box_h) / in_h, static_cast<double>(box_w) / in_w);
    auto side = [&](int in, int box) {
        const double v = std::floor(in * g.scale + 0.5);
        return static_cast<int>(std::min<double>(box, std::max(1.0, v)));
    };
    g.new_h = side(in_h, box_h);
    g.new_w = side(in_w, box_w);
    g.pad_h = (g.new_h + pad_divisor - 1) / pad_divisor * pad_divisor;
    g.pad_w = (g.new_w + pad_divisor - 1) / pad_divisor * pad_divisor;
    return g;
}

void letterbox(const uint8_t* image, int in_h, int in_w, int channels, const LetterboxGeometry& g,
               int pad_value, bool swap_rb, uint8_t* out, int n_threads) {
    if (channels < 1 || channels > 4) fail("image must have 1 to 4 channels");
    if (pad_value < 0 || pad_value > 255)
        fail("pad_value must be in [0, 255], got " + std::to_string(pad_value));
    if (swap_rb && channels < 3)
        fail("swap_rb needs an image with >= 3 channels, got " + std::to_string(channels));
    constexpr int kBits = 11;
    constexpr int64_t kOne = int64_t{1} << kBits;
    const Taps ty = sample_grid(g.new_h, static_cast<double>(in_h), in_h);
    const Taps tx = sample_grid(g.new_w, static_cast<double>(in_w), in_w);
    std::vector<int32_t> wy1(g.new_h), wx1(g.new_w), xo0(g.new_w), xo1(g.new_w);
    for (int y = 0; y < g.new_h; ++y)
        wy1[y] = static_cast<int32_t>(std::floor(ty.frac[y] * kOne + 0.5));
    for (int x = 0; x < g.new_w; ++x) {
        wx1[x] = static_cast<int32_t>(std::floor(tx.frac[x] * kOne + 0.5));
        xo0[x] = static_cast<int32_t>(tx.i0[x] * channels);
        xo1[x] = static_cast<int32_t>(tx.i1[x] * channels);
    }
    const int64_t out_stride = int64_t{g.pad_w} * channels;
    const int64_t in_stride = int64_t{in_w} * channels;
    // swap_rb: output channel ch reads source channel src_ch[ch]
    int src_ch[4] = {0, 1, 2, 3};
    if (swap_rb) std::swap(src_ch[0], src_ch[2]);
    auto body = [&](int part, int parts) {
        const int r0 = static_cast<int>(int64_t{g.pad_h} * part / parts);
        const int r1 = static_cast<int>(int64_t{g.pad_h} * (part + 1) / parts);
        std::vector<uint32_t> top(static_cast<size_t>(g.new_w) * channels),
            bot(static_cast<size_t>(g.new_w) * channels);
        for (int y = r0; y < r1; ++y) {
            uint8_t* row = out + y * out_stride;
            if (y >= g.new_h) {
                std::memset(row, pad_value, out_stride);
                continue;
            }
            const uint8_t* s0 = image + ty.i0[y] * in_stride;
            const uint8_t* s1 = image + ty.i1[y] * in_stride;
            const uint32_t b1 = static_cast<uint32_t>(wy1[y]);
            const uint32_t b0 = static_cast<uint32_t>(kOne) - b1;
            for (int x = 0; x < g.new_w; ++x) {
                const uint32_t a1 = static_cast<uint32_t>(wx1[x]);
                const uint32_t a0 = static_cast<uint32_t>(kOne) - a1;
                const uint8_t* p00 = s0 + xo0[x];
                const uint8_t* p01 = s0 + xo1[x];
                const uint8_t* p10 = s1 + xo0[x];
                const uint8_t* p11 = s1 + xo1[x];
                uint8_t* o = row + int64_t{x} * channels;
                for (int ch = 0; ch < channels; ++ch) {
                    const int sc = src_ch[ch];
                    const uint32_t t = a0 * p00[sc] + a1 * p01[sc];
                    const uint32_t b = a0 * p10[sc] + a1 * p11[sc];
                    // max 2048 * 2048 * 255 + 2^21 < 2^32: exact in uint32
                    const uint32_t acc = b0 * t + b1 * b;
                    o[ch] = static_cast<uint8_t>((acc + (1u << (2 * kBits - 1))) >> (2 * kBits));
                }
            }
            if (g.pad_w > g.new_w)
                std::memset(row + int64_t{g.new_w} * channels, pad_value,
                            out_stride - int64_t{g.new_w} * channels);
        }
    };
    parallel_for(parallel_parts(double(g.pad_h) * g.pad_w * channels, n_threads), body);
}

// ------------------------------------------------------------------ panoptic fusion
namespace {

// exp(x) with a relative error below 1e-8 for -708 <= x <= 709; arguments are clamped to
// that range (so the result over-estimates tiny and under-estimates huge values). Used only
// for bounds and to separate clear winners, never as a result. Branch-free.
inline double fast_exp(double x) {
    x = std::min(std::max(x, -708.0), 709.0);
    const double kMagic = 6755399441055744.0;  // 1.5 * 2^52: round to nearest integer
    const double t = x * 1.4426950408889634 + kMagic;
    const double n = t - kMagic;
    const double f = (x - n * 0.693145751953125) - n * 1.4286068203094173e-06;  // |f| <= 0.35
    const double p =
        1.0 +
        f * (1.0 +
             f * (0.5 + f * (1.0 / 6 + f * (1.0 / 24 + f * (1.0 / 120 +
                                                            f * (1.0 / 720 + f * (1.0 / 5040)))))));
    uint64_t bits;  // unsigned: the shift wraps (a signed overflow would be undefined)
    std::memcpy(&bits, &t, sizeof(bits));
    bits = (bits + 1023) << 52;  // the low bits of t hold n (two's complement)
    double scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

// Relative error of the fast probabilities (a generous over-estimate of fast_exp's).
constexpr double kFastRel = 1e-7;

// exp(x) in float for the vectorised winner search: clamped to [-87, 88] (so the result
// over-estimates tiny values), range reduction by round(x / ln 2) with a two-part ln 2, then
// a degree-6 Taylor polynomial on |f| <= 0.35. Relative error below 6e-7 (truncation 1.7e-7
// plus float rounding); kFastRelF over-estimates it. Branch-free; never a result, only a
// decision with margin (near ties are decided with std::exp in double).
inline float fast_expf(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float kMagic = 12582912.0f;  // 1.5 * 2^23: round to nearest integer
    const float t = x * 1.44269504f + kMagic;
    const float n = t - kMagic;
    const float f = (x - n * 0.693145751953125f) - n * 1.42860677e-06f;
    const float p = 1.0f +
                    f * (1.0f +
                         f * (0.5f + f * (1.0f / 6 +
                                          f * (1.0f / 24 + f * (1.0f / 120 + f * (1.0f / 720))))));
    uint32_t bits;  // the low bits of t hold n (|n| <= 127); unsigned: the shift wraps
    std::memcpy(&bits, &t, sizeof(bits));
    bits = (bits + 127u) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

// A panoptic row band is evaluated densely (every pixel, every kept query) when more than
// 1 / kDenseShare of its (query, cell) pairs change sign inside the cell.
constexpr int kDenseShare = 2;
// Columns per call of the dense row kernel: K x 2 x 256 floats (40 kB for K = 20) in L1.
constexpr int kDenseChunk = 256;

// Relative error of the float fast probabilities s / (1 + fast_expf(-v)) compared in float
// products (a generous over-estimate: fast_expf 6e-7, s rounded to float, 3 roundings).
constexpr float kFastRelF = 1e-6f;

enum Sign : uint8_t { kPos = 0, kNeg = 1, kMixed = 2 };

inline uint8_t sign_class(float mn, float mx) {
    // every value >= 0 when all corners are (non-negative products and sums); every value
    // < 0 when all corners are <= -1e-30 (no underflow to 0)
    return mn >= 0.0f ? kPos : (mx <= -1e-30f ? kNeg : kMixed);
}

// Bounds of score * sigmoid(v) over the bilinear values v of corners in [mn, mx]: v lies
// in [mn - e, mx + e] (float rounding); with a 1e-6 relative margin for fast_exp.
inline void prob_bounds(double s, float mn, float mx, double& lb, double& ub) {
    const double e = interp_margin(std::max(-double(mn), double(mx)));
    const double lo = double(mn) - e, hi = double(mx) + e;
    lb = std::max(0.0, s / (1.0 + fast_exp(-lo)) * (1.0 - 1e-6) - 1e-300);
    ub = s / (1.0 + fast_exp(-hi)) * (1.0 + 1e-6) + 1e-300;
}

// Runtime dispatch of the vectorised kernels: one clone per x86-64 vector width, picked at
// load time (GCC / clang ifunc); elsewhere (aarch64: NEON is baseline) the plain build.
#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute) && \
    !defined(RAPSAM_NO_SIMD_CLONES)
#if __has_attribute(target_clones) && defined(__ELF__)
#define RAPSAM_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef RAPSAM_SIMD_CLONES
#define RAPSAM_SIMD_CLONES
#endif

// The fast decision for the rh x cw pixels of one cell among nc >= 2 candidates, vectorised
// over the cell's pixels (p = y * cw + x): v (the twin's float bilinear value), the fast
// s / p denominators d = 1 + fast_exp(-v), the first maximum of s / d (strict >, candidates
// in order, as the scalar loop it replaces) and whether that maximum is clear of every other
// candidate by 4 x the fast error. Unclear pixels are decided exactly by the caller. Every
// loop runs over contiguous arrays without branches, so each clone vectorises it; there is
// no FMA contraction (-ffp-contract=off), so v is bit-identical to the twin's.
RAPSAM_SIMD_CLONES
void cell_fast_winners(int nc, int rh, int cw, int max_cw, const float* wy0, const float* wy1,
                       const float* top, const float* bot, const float* s, float* vals, float* dens,
                       float* best_s, float* best_d, int32_t* best_i, uint8_t* clear) {
    const int npx = rh * cw;
    for (int i = 0; i < nc; ++i) {
        const float* tp = top + static_cast<size_t>(i) * max_cw;
        const float* bt = bot + static_cast<size_t>(i) * max_cw;
        float* v = vals + static_cast<size_t>(i) * npx;
        float* d = dens + static_cast<size_t>(i) * npx;
        for (int y = 0; y < rh; ++y) {
            const float v0 = wy0[y], v1 = wy1[y];
            float* vr = v + static_cast<size_t>(y) * cw;
            for (int x = 0; x < cw; ++x) vr[x] = v0 * tp[x] + v1 * bt[x];
        }
        for (int q = 0; q < npx; ++q) d[q] = 1.0f + fast_expf(-v[q]);
    }
    // running best / second-best fast probability per pixel, first maximum on ties
    for (int q = 0; q < npx; ++q) {
        best_s[q] = s[0] / dens[q];  // best_s holds p = s / d here, best_d the runner-up
        best_d[q] = -1.0f;
        best_i[q] = 0;
    }
    for (int i = 1; i < nc; ++i) {
        const float si = s[i];
        const float* d = dens + static_cast<size_t>(i) * npx;
        for (int q = 0; q < npx; ++q) {
            const float p = si / d[q];
            const bool take = p > best_s[q];
            best_d[q] = take ? best_s[q] : (p > best_d[q] ? p : best_d[q]);
            best_s[q] = take ? p : best_s[q];
            // a bit select, not a branchy masked store (see dense_winners)
            const int32_t m = -static_cast<int32_t>(take), bi = best_i[q];
            best_i[q] = (bi & ~m) | (i & m);
        }
    }
    // clear: the best is ahead of the runner-up by 4 x the fast error, and its d did not
    // reach fast_expf's clamp (fast_expf(87) = 6.1e37, where p < 1.7e-38)
    for (int q = 0; q < npx; ++q)
        clear[q] = static_cast<uint8_t>((best_s[q] > best_d[q] * (1.0f + 4 * kFastRelF)) &
                                        (best_s[q] > 1e-30f));
}

// The winner search of one dense row over n columns (n = B when B > 0, a compile-time width
// whose state the caller keeps in local arrays, so it stays in registers over all K queries;
// B == 0: any n, state in the caller's row arrays). For each kept query k in order: the twin's
// float bilinear value v, the own-area count (v >= 0) and the running minimum of the inverse
// fast probability q = (1 + e^-v) * (1 / s) (a multiply, no division; first minimum on ties)
// with the runner-up; code = 2 x the winner's index + (its value v >= 0). top / bot: K rows of
// `stride` floats, the horizontal interpolations of the band's two source rows.
template <int B>
[[gnu::always_inline]] inline void dense_winners(int K, int n, int stride, float v0, float v1,
                                                 const float* __restrict top,
                                                 const float* __restrict bot,
                                                 const float* __restrict inv_s,
                                                 float* __restrict bq, float* __restrict sq,
                                                 int32_t* __restrict bc, int64_t* __restrict own) {
    const int w = B > 0 ? B : n;
    for (int k = 0; k < K; ++k) {
        const float* __restrict tp = top + static_cast<size_t>(k) * stride;
        const float* __restrict bt = bot + static_cast<size_t>(k) * stride;
        const float ik = inv_s[k];
        int32_t cnt = 0;
        if (k == 0) {
            for (int x = 0; x < w; ++x) {
                const float vx = v0 * tp[x] + v1 * bt[x];
                cnt += vx >= 0.0f;
                bq[x] = (1.0f + fast_expf(-vx)) * ik;
                sq[x] = 3e38f;
                bc[x] = vx >= 0.0f;
            }
        } else {
            for (int x = 0; x < w; ++x) {
                const float vx = v0 * tp[x] + v1 * bt[x];
                const int32_t pos = vx >= 0.0f;
                cnt += pos;
                const float q = (1.0f + fast_expf(-vx)) * ik;
                const float b = bq[x], sc = sq[x];
                const bool take = q < b;
                const float sc2 = q < sc ? q : sc;
                sq[x] = take ? b : sc2;
                bq[x] = take ? q : b;
                // an unconditional store of a bit select: `take ? code : bc[x]` compiles to a
                // masked store behind a branch on any lane taking, which noisy logits
                // mispredict about half the time
                const int32_t m = -static_cast<int32_t>(take), c = bc[x];
                bc[x] = (c & ~m) | ((2 * k + pos) & m);
            }
        }
        own[k] += cnt;
    }
}

// clear: the runner-up's q exceeds the best's by 4 x the fast error (the q errors are those of
// p: fast_expf, the float 1 / s, two roundings), and the best's d did not reach fast_expf's
// clamp (6.1e37; q >= d as s <= 1)
inline uint8_t dense_clear(float best, float second) {
    return static_cast<uint8_t>((best * (1.0f + 4 * kFastRelF) < second) & (best < 1e37f));
}

// Columns per block of panoptic_dense_row: a block's running best / runner-up / code stay in
// registers over all K queries, where a row-wide pass loads and stores them once per query.
// 64 measured fastest of 16 / 32 / 64 (1.07-1.10x over the row-wide pass on AVX-512, one
// thread; 16 was 0.95x).
constexpr int kDenseBlock = 64;

// One output row of a band where most (query, cell) pairs are mixed, every pixel evaluated
// for every kept query (no pruning; the twin's float bilinear values): own-area counts and
// the fast winner search of cell_fast_winners over all K queries along the row's columns
// [0, out_w) (the caller passes column chunks that keep the K rows of top / bot in L1), in
// blocks of kDenseBlock columns, the last partial block row-wide (dense_winners; the same
// order and float expressions either way). Values are not stored: the caller recomputes the
// winner's (and, for unclear pixels, every query's) value with the same float expression.
RAPSAM_SIMD_CLONES
void panoptic_dense_row(int K, int out_w, int stride, float v0, float v1,
                        const float* __restrict top, const float* __restrict bot,
                        const float* __restrict inv_s, float* __restrict best_q,
                        float* __restrict second_q, int32_t* __restrict best_code,
                        uint8_t* __restrict clear, int64_t* __restrict own) {
    constexpr int B = kDenseBlock;
    int x0 = 0;
    for (; x0 + B <= out_w; x0 += B) {
        float bq[B], sq[B];
        int32_t bc[B];
        dense_winners<B>(K, B, stride, v0, v1, top + x0, bot + x0, inv_s, bq, sq, bc, own);
        for (int x = 0; x < B; ++x) {
            best_q[x0 + x] = bq[x];
            second_q[x0 + x] = sq[x];
            best_code[x0 + x] = bc[x];
            clear[x0 + x] = dense_clear(bq[x], sq[x]);
        }
    }
    if (x0 < out_w) {
        dense_winners<0>(K, out_w - x0, stride, v0, v1, top + x0, bot + x0, inv_s, best_q + x0,
                         second_q + x0, best_code + x0, own);
        for (int x = x0; x < out_w; ++x) clear[x] = dense_clear(best_q[x], second_q[x]);
    }
}

// The twin's horizontal interpolation of one source row r at every output column (gathers
// through col0 / col1; the per-CPU clones vectorise them).
RAPSAM_SIMD_CLONES
void horizontal_row(const float* __restrict r, int out_w, const float* __restrict wx0,
                    const float* __restrict wx1, const int32_t* __restrict col0,
                    const int32_t* __restrict col1, float* __restrict out) {
    for (int x = 0; x < out_w; ++x) out[x] = wx0[x] * r[col0[x]] + wx1[x] * r[col1[x]];
}

struct PanopticState {
    int K = 0, h = 0, w = 0, out_w = 0;
    std::vector<const float*> logits;  // kept query k -> its h x w logits
    std::vector<double> scores;        // kept scores (double, as the twin)
    std::vector<Band> ybands, xbands;
    std::vector<int> xb_t0, xb_t1, xb_w;
    std::vector<int> groups;  // x band index where each group of cells starts (+ end)
    std::vector<float> wy0, wy1, wx0, wx1;
    std::vector<int32_t> col0, col1;  // each output column's source taps
    int xmax = 0;
};

struct PanopticCounts {
    std::vector<int64_t> own, won, fg;
};

// A dense band (see panoptic_dense_row): labels, won / fg / own counts, exact fallback.
template <class Code>
void panoptic_dense_band(const PanopticState& st, const Band& rb, Code* label_map,
                         PanopticCounts& cnt, const std::vector<float>& inv_s,
                         std::vector<float>& top, std::vector<float>& bot, std::vector<float>& best,
                         std::vector<float>& second, std::vector<int32_t>& best_i,
                         std::vector<uint8_t>& clear, int& bot_row) {
    const int K = st.K, out_w = st.out_w, w = st.w;
    const size_t row_k = static_cast<size_t>(K) * out_w;
    if (top.size() < row_k) {
        top.resize(row_k);
        bot.resize(row_k);
        best.resize(out_w);
        second.resize(out_w);
        best_i.resize(out_w);
        clear.resize(out_w);
    }
    const float* wx0 = st.wx0.data();
    const float* wx1 = st.wx1.data();
    // the twin's horizontal pass, per output column; the previous dense band's lower source
    // row (bot_row, its interpolations still in `bot`) is usually this band's upper one
    const bool reuse = bot_row == rb.t0;
    if (reuse) top.swap(bot);
    for (int k = 0; k < K; ++k) {
        const size_t off = static_cast<size_t>(k) * out_w;
        if (!reuse)
            horizontal_row(st.logits[k] + rb.t0 * w, out_w, wx0, wx1, st.col0.data(),
                           st.col1.data(), top.data() + off);
        horizontal_row(st.logits[k] + rb.t1 * w, out_w, wx0, wx1, st.col0.data(), st.col1.data(),
                       bot.data() + off);
    }
    bot_row = rb.t1;
    // column chunks outermost: a chunk's K x 2 x kDenseChunk interpolations stay in L1 over
    // all the band's rows (they share the two source rows)
    for (int x0 = 0; x0 < out_w; x0 += kDenseChunk) {
        const int x1 = std::min(out_w, x0 + kDenseChunk);
        for (int y = rb.begin; y < rb.end; ++y) {
            const float v0 = st.wy0[y], v1 = st.wy1[y];
            panoptic_dense_row(K, x1 - x0, out_w, v0, v1, top.data() + x0, bot.data() + x0,
                               inv_s.data(), best.data() + x0, second.data() + x0,
                               best_i.data() + x0, clear.data() + x0, cnt.own.data());
            Code* row = label_map + static_cast<size_t>(y) * out_w;
            const auto value = [&](int q, int x) {  // the kernel's float expression
                const size_t i = static_cast<size_t>(q) * out_w + x;
                return v0 * top[i] + v1 * bot[i];
            };
            for (int x = x0; x < x1; ++x) {
                int k = best_i[x] >> 1;  // the kernel's code: winner and its sign
                bool fg = best_i[x] & 1;
                if (!clear[x]) {  // near tie: the twin's exact probabilities, first max
                    double best_p = 0.0;
                    for (int q = 0; q < K; ++q) {
                        const double p = st.scores[q] / (1.0 + std::exp(-double(value(q, x))));
                        if (q == 0 || p > best_p) {
                            best_p = p;
                            k = q;
                        }
                    }
                    fg = value(k, x) >= 0.0f;
                }
                row[x] = static_cast<Code>(fg ? k + 1 : 0);
                cnt.won[k] += 1;
                cnt.fg[k] += fg;
            }
        }
    }
}

// Processes the output rows of row bands [b_lo, b_hi). Cells (output pixels sharing the
// same four source taps) are pruned in two levels: groups of consecutive cells, then
// cells; only cells left undecided are evaluated per pixel with the twin's arithmetic.
template <class Code>
void panoptic_rows(const PanopticState& st, size_t b_lo, size_t b_hi, Code* label_map,
                   PanopticCounts& cnt) {
    const int K = st.K, out_w = st.out_w, w = st.w;
    const int cols = st.xmax + 1;
    int max_cw = 1, max_rh = 1;
    for (int c : st.xb_w) max_cw = std::max(max_cw, c);
    for (size_t yb = b_lo; yb < b_hi; ++yb)
        max_rh = std::max(max_rh, st.ybands[yb].end - st.ybands[yb].begin);
    const size_t max_px = static_cast<size_t>(max_cw) * max_rh;
    std::vector<float> rmn(static_cast<size_t>(K) * cols), rmx(static_cast<size_t>(K) * cols);
    std::vector<double> glb(K), gub(K), clb(K), cub(K);
    std::vector<uint8_t> gsign(K);
    std::vector<int> gcand(K), ccand(K), mixed_q(K);
    std::vector<float> top(static_cast<size_t>(K) * max_cw), bot(static_cast<size_t>(K) * max_cw);
    std::vector<float> vals(static_cast<size_t>(K) * max_px);
    std::vector<float> dens(static_cast<size_t>(K) * max_px), best_s(max_px), best_d(max_px);
    std::vector<int32_t> best_i(max_px);
    std::vector<uint8_t> clear(max_px);
    std::vector<float> cand_s(K);
    std::vector<double> cand_sd(K);
    // dense bands: K x out_w interpolations and per-pixel winner state (allocated on use)
    std::vector<float> dtop, dbot, dbest, dsecond;
    std::vector<int32_t> dbest_i;
    std::vector<uint8_t> dclear;
    int dense_bot_row = -1;       // the source row whose interpolations dbot holds
    std::vector<float> inv_s(K);  // 1 / score in float (kept scores are > 0)
    for (int k = 0; k < K; ++k) inv_s[k] = static_cast<float>(1.0 / st.scores[k]);
    const int n_cells = static_cast<int>(st.xbands.size());
    const int* xt0 = st.xb_t0.data();
    const int* xt1 = st.xb_t1.data();
    const float* wx0 = st.wx0.data();
    const float* wx1 = st.wx1.data();
    const int n_groups = static_cast<int>(st.groups.size()) - 1;

    for (size_t yb = b_lo; yb < b_hi; ++yb) {
        const Band& rb = st.ybands[yb];
        const int rh = rb.end - rb.begin;
        // element-wise min / max of the band's two source rows, per query
        for (int k = 0; k < K; ++k) {
            const float* r0 = st.logits[k] + rb.t0 * w;
            const float* r1 = st.logits[k] + rb.t1 * w;
            float* mn = rmn.data() + static_cast<size_t>(k) * cols;
            float* mx = rmx.data() + static_cast<size_t>(k) * cols;
            for (int x = 0; x < cols; ++x) {
                mn[x] = std::min(r0[x], r1[x]);
                mx[x] = std::max(r0[x], r1[x]);
            }
        }
        // mostly mixed (noisy logits): every pixel, every query, whole rows
        int64_t n_mixed = 0;
        for (int k = 0; k < K; ++k) {
            const float* mn = rmn.data() + static_cast<size_t>(k) * cols;
            const float* mx = rmx.data() + static_cast<size_t>(k) * cols;
            for (int j = 0; j < n_cells; ++j)
                n_mixed += sign_class(std::min(mn[xt0[j]], mn[xt1[j]]),
                                      std::max(mx[xt0[j]], mx[xt1[j]])) == kMixed;
        }
        if (kDenseShare * n_mixed > int64_t{K} * n_cells) {
            panoptic_dense_band(st, rb, label_map, cnt, inv_s, dtop, dbot, dbest, dsecond, dbest_i,
                                dclear, dense_bot_row);
            continue;
        }
        for (int g = 0; g < n_groups; ++g) {
            const int j0 = st.groups[g], j1 = st.groups[g + 1];
            const int c0 = xt0[j0], c1 = xt1[j1 - 1];  // source columns of the group
            const int gx0 = st.xbands[j0].begin, gx1 = st.xbands[j1 - 1].end;
            // group level: sign class, bounds, candidates
            double max_lb = 0.0;
            int n_mixed = 0;
            for (int k = 0; k < K; ++k) {
                const float* mn = rmn.data() + static_cast<size_t>(k) * cols;
                const float* mx = rmx.data() + static_cast<size_t>(k) * cols;
                float gmn = mn[c0], gmx = mx[c0];
                for (int x = c0 + 1; x <= c1; ++x) {
                    gmn = std::min(gmn, mn[x]);
                    gmx = std::max(gmx, mx[x]);
                }
                gsign[k] = sign_class(gmn, gmx);
                if (gsign[k] == kPos) cnt.own[k] += int64_t{rh} * (gx1 - gx0);
                if (gsign[k] == kMixed) mixed_q[n_mixed++] = k;
                prob_bounds(st.scores[k], gmn, gmx, glb[k], gub[k]);
                max_lb = std::max(max_lb, glb[k]);
            }
            int n_gc = 0;
            for (int k = 0; k < K; ++k)
                if (gub[k] >= max_lb) gcand[n_gc++] = k;
            // own area of the queries whose sign changes somewhere in the group
            for (int i = 0; i < n_mixed; ++i) {
                const int k = mixed_q[i];
                const float* mn = rmn.data() + static_cast<size_t>(k) * cols;
                const float* mx = rmx.data() + static_cast<size_t>(k) * cols;
                const float* L = st.logits[k];
                int64_t n = 0;
                for (int j = j0; j < j1; ++j) {
                    const uint8_t sg = sign_class(std::min(mn[xt0[j]], mn[xt1[j]]),
                                                  std::max(mx[xt0[j]], mx[xt1[j]]));
                    const Band& cb = st.xbands[j];
                    const int cw = cb.end - cb.begin;
                    if (sg == kPos) n += int64_t{rh} * cw;
                    if (sg != kMixed) continue;
                    horizontal(wx0, wx1, cb.begin, cb.end, L[rb.t0 * w + cb.t0],
                               L[rb.t0 * w + cb.t1], L[rb.t1 * w + cb.t0], L[rb.t1 * w + cb.t1],
                               top.data(), bot.data());
                    for (int y = rb.begin; y < rb.end; ++y) {
                        const float v0 = st.wy0[y], v1 = st.wy1[y];
                        int32_t c = 0;  // 32-bit lanes: a vectorised count
                        for (int x = 0; x < cw; ++x) c += (v0 * top[x] + v1 * bot[x]) >= 0.0f;
                        n += c;
                    }
                }
                cnt.own[k] += n;
            }
            // cell level: winner among the group's candidates
            for (int j = j0; j < j1; ++j) {
                const Band& cb = st.xbands[j];
                const int cw = cb.end - cb.begin;
                int nc = 0;
                if (n_gc == 1) {
                    ccand[nc++] = gcand[0];
                } else {
                    double cell_max_lb = 0.0;
                    for (int i = 0; i < n_gc; ++i) {
                        const int k = gcand[i];
                        const float* mn = rmn.data() + static_cast<size_t>(k) * cols;
                        const float* mx = rmx.data() + static_cast<size_t>(k) * cols;
                        prob_bounds(st.scores[k], std::min(mn[xt0[j]], mn[xt1[j]]),
                                    std::max(mx[xt0[j]], mx[xt1[j]]), clb[i], cub[i]);
                        cell_max_lb = std::max(cell_max_lb, clb[i]);
                    }
                    for (int i = 0; i < n_gc; ++i)
                        if (cub[i] >= cell_max_lb) ccand[nc++] = gcand[i];
                }
                if (nc == 1) {
                    const int k = ccand[0];
                    const float* mn = rmn.data() + static_cast<size_t>(k) * cols;
                    const float* mx = rmx.data() + static_cast<size_t>(k) * cols;
                    const uint8_t sg = sign_class(std::min(mn[xt0[j]], mn[xt1[j]]),
                                                  std::max(mx[xt0[j]], mx[xt1[j]]));
                    if (sg != kMixed) {
                        const int64_t npix = int64_t{rh} * cw;
                        cnt.won[k] += npix;
                        if (sg == kPos) cnt.fg[k] += npix;
                        const Code code = static_cast<Code>(sg == kPos ? k + 1 : 0);
                        for (int y = rb.begin; y < rb.end; ++y)
                            std::fill_n(label_map + static_cast<size_t>(y) * out_w + cb.begin, cw,
                                        code);
                        continue;
                    }
                }
                // per pixel, exactly as the twin
                for (int i = 0; i < nc; ++i) {
                    const float* L = st.logits[ccand[i]];
                    horizontal(wx0, wx1, cb.begin, cb.end, L[rb.t0 * w + cb.t0],
                               L[rb.t0 * w + cb.t1], L[rb.t1 * w + cb.t0], L[rb.t1 * w + cb.t1],
                               top.data() + static_cast<size_t>(i) * max_cw,
                               bot.data() + static_cast<size_t>(i) * max_cw);
                }
                if (nc == 1) {
                    const int k = ccand[0];
                    for (int y = rb.begin; y < rb.end; ++y) {
                        const float v0 = st.wy0[y], v1 = st.wy1[y];
                        Code* row = label_map + static_cast<size_t>(y) * out_w + cb.begin;
                        int64_t n = 0;
                        for (int x = 0; x < cw; ++x) {
                            const bool fg = (v0 * top[x] + v1 * bot[x]) >= 0.0f;
                            row[x] = static_cast<Code>(fg ? k + 1 : 0);
                            n += fg;
                        }
                        cnt.won[k] += cw;
                        cnt.fg[k] += n;
                    }
                    continue;
                }
                for (int i = 0; i < nc; ++i) {
                    cand_sd[i] = st.scores[ccand[i]];
                    cand_s[i] = static_cast<float>(cand_sd[i]);
                }
                cell_fast_winners(nc, rh, cw, max_cw, st.wy0.data() + rb.begin,
                                  st.wy1.data() + rb.begin, top.data(), bot.data(), cand_s.data(),
                                  vals.data(), dens.data(), best_s.data(), best_d.data(),
                                  best_i.data(), clear.data());
                const size_t npx = static_cast<size_t>(rh) * cw;
                for (int y = 0; y < rh; ++y) {
                    Code* row = label_map + static_cast<size_t>(rb.begin + y) * out_w + cb.begin;
                    for (int x = 0; x < cw; ++x) {
                        const size_t q = static_cast<size_t>(y) * cw + x;
                        int best = best_i[q];
                        if (!clear[q]) {  // near tie: the twin's exact probabilities, first max
                            double best_p = 0.0;
                            best = 0;
                            for (int i = 0; i < nc; ++i) {
                                const double v = vals[i * npx + q];
                                const double p = cand_sd[i] / (1.0 + std::exp(-v));
                                if (i == 0 || p > best_p) {
                                    best_p = p;
                                    best = i;
                                }
                            }
                        }
                        const int k = ccand[best];
                        const bool fg = vals[best * npx + q] >= 0.0f;
                        row[x] = static_cast<Code>(fg ? k + 1 : 0);
                        cnt.won[k] += 1;
                        cnt.fg[k] += fg;
                    }
                }
            }
        }
    }
}

// panoptic_fuse's steps, each run once per frame (no per-pixel call is added).

// Argument checks (the C++ library's own: the bindings skip the finite scan).
void check_panoptic_args(const float* cls_logits, int n_queries, int n_cls1,
                         const float* mask_logits, int mask_h, int mask_w,
                         const PanopticParams& params) {
    if (n_queries < 0) fail("cls_logits must have a non-negative number of rows");
    if (n_cls1 < 1) fail("cls_logits needs at least one column");
    if (mask_h < 1 || mask_w < 1) fail("mask_logits masks are empty");
    check_out(params.out_h, params.out_w);
    check_valid(params.valid_h, params.valid_w, mask_h, mask_w);
    // probabilities, as ops._checks.check_probability has them (NaN fails both comparisons)
    if (!(params.score_threshold >= 0.0 && params.score_threshold <= 1.0))
        fail("score_threshold must be in [0, 1], got " + std::to_string(params.score_threshold));
    if (!(params.overlap_threshold >= 0.0 && params.overlap_threshold <= 1.0))
        fail("overlap_threshold must be in [0, 1], got " +
             std::to_string(params.overlap_threshold));
    if (params.check_finite) {
        const size_t hw = static_cast<size_t>(mask_h) * mask_w;
        if (!all_finite(cls_logits, static_cast<size_t>(n_queries) * n_cls1))
            fail("cls_logits contains NaN or infinity");
        if (!all_finite(mask_logits, static_cast<size_t>(n_queries) * hw))
            fail("mask_logits contains NaN or infinity");
    }
}

// 1. class scores (softmax in double, numpy's pairwise sum): each query's label and score
// (written to labels / scores) and the kept queries (score > score_threshold), in order.
std::vector<int> kept_queries(const float* cls_logits, int n_queries, int n_cls1,
                              double score_threshold, std::vector<int>& labels,
                              std::vector<double>& scores) {
    const int n_cls = n_cls1 - 1;
    labels.assign(n_queries, 0);
    scores.assign(n_queries, 0.0);
    std::vector<double> ex(n_cls1);
    std::vector<int> kept;
    for (int q = 0; q < n_queries; ++q) {
        const float* x = cls_logits + static_cast<size_t>(q) * n_cls1;
        double mx = x[0];
        for (int i = 1; i < n_cls1; ++i) mx = std::max(mx, static_cast<double>(x[i]));
        for (int i = 0; i < n_cls1; ++i) ex[i] = std::exp(static_cast<double>(x[i]) - mx);
        const double sum = pairwise_sum(ex.data(), n_cls1);
        if (n_cls == 0) continue;  // no class at all: nothing can be kept
        int best = 0;
        double best_p = ex[0] / sum;
        for (int i = 1; i < n_cls; ++i) {
            const double p = ex[i] / sum;
            if (p > best_p) {
                best_p = p;
                best = i;
            }
        }
        labels[q] = best;
        scores[q] = best_p;
        if (best_p > score_threshold) kept.push_back(q);
    }
    return kept;
}

// 2a. The kept queries' logits and scores, the row / column bands and their weights, and the
// column groups of the pruning (what panoptic_rows reads).
PanopticState panoptic_state(const float* mask_logits, int mask_h, int mask_w,
                             const std::vector<int>& kept, const std::vector<double>& scores,
                             const PanopticParams& params) {
    const size_t hw = static_cast<size_t>(mask_h) * mask_w;
    const int out_w = params.out_w;
    PanopticState st;
    st.K = static_cast<int>(kept.size());
    st.h = mask_h;
    st.w = mask_w;
    st.out_w = out_w;
    for (int q : kept) {
        st.logits.push_back(mask_logits + static_cast<size_t>(q) * hw);
        st.scores.push_back(scores[q]);
    }
    const Taps ty = sample_grid(params.out_h, params.valid_h, mask_h);
    const Taps tx = sample_grid(out_w, params.valid_w, mask_w);
    st.ybands = make_bands(ty);
    st.xbands = make_bands(tx);
    for (const Band& b : st.xbands) {
        st.xb_t0.push_back(static_cast<int>(b.t0));
        st.xb_t1.push_back(static_cast<int>(b.t1));
        st.xb_w.push_back(b.end - b.begin);
    }
    float_weights(ty, st.wy0, st.wy1);
    float_weights(tx, st.wx0, st.wx1);
    for (int x = 0; x < out_w; ++x) {
        st.col0.push_back(static_cast<int32_t>(tx.i0[x]));
        st.col1.push_back(static_cast<int32_t>(tx.i1[x]));
    }
    st.xmax = static_cast<int>(st.xbands.back().t1);
    constexpr int kGroup = 32;  // cells per pruning group
    for (int j = 0; j < static_cast<int>(st.xbands.size()); j += kGroup) st.groups.push_back(j);
    st.groups.push_back(static_cast<int>(st.xbands.size()));
    return st;
}

// 2b. Per-pixel winner and own areas, cell by cell: panoptic_rows on contiguous row bands,
// one part per thread. Label codes (k + 1 where kept query k wins with logit >= 0, else 0)
// go to codes8, one byte per pixel, when K <= 255 (less memory traffic), else straight into
// label_map. Returns the summed own / won / fg counts per kept query.
PanopticCounts fuse_rows(const PanopticState& st, size_t n_out, int n_threads_param,
                         std::vector<uint8_t>& codes8, int32_t* label_map) {
    const int K = st.K;
    const double cell_work = double(st.ybands.size()) * st.xbands.size() * K + double(n_out);
    const int n_threads = parallel_parts(cell_work * 4, n_threads_param);
    std::vector<PanopticCounts> counts(n_threads);
    for (auto& c : counts) {
        c.own.assign(K, 0);
        c.won.assign(K, 0);
        c.fg.assign(K, 0);
    }
    const std::vector<size_t> cut = split_bands(st.ybands, n_threads);
    codes8.assign(K <= 255 ? n_out : 0, 0);
    parallel_for(n_threads, [&](int part, int) {
        if (K <= 255) {
            panoptic_rows(st, cut[part], cut[part + 1], codes8.data(), counts[part]);
        } else {
            panoptic_rows(st, cut[part], cut[part + 1], label_map, counts[part]);
        }
    });
    PanopticCounts total{std::vector<int64_t>(K, 0), std::vector<int64_t>(K, 0),
                         std::vector<int64_t>(K, 0)};
    for (const auto& c : counts)
        for (int k = 0; k < K; ++k) {
            total.own[k] += c.own[k];
            total.won[k] += c.won[k];
            total.fg[k] += c.fg[k];
        }
    return total;
}

// 3. MaskFormer's walk over the kept queries: overlap test, stuff merging, ids. seg_of
// (K + 1 entries) maps each label code to its segment id (0: void).
std::vector<Segment> maskformer_segments(const std::vector<int>& kept,
                                         const std::vector<int>& labels,
                                         const std::vector<double>& kept_scores,
                                         const PanopticCounts& n, const bool* is_thing,
                                         double overlap_threshold, std::vector<int32_t>& seg_of) {
    const int K = static_cast<int>(kept.size());
    std::vector<Segment> segments;
    seg_of.assign(K + 1, 0);
    std::map<int, int> stuff_ids;
    for (int k = 0; k < K; ++k) {
        const int q = kept[k];
        const int cls = labels[q];
        if (n.won[k] == 0 || n.own[k] == 0 || n.fg[k] == 0) continue;
        if (static_cast<double>(n.won[k]) / static_cast<double>(n.own[k]) < overlap_threshold)
            continue;
        const float score = static_cast<float>(kept_scores[k]);
        const bool thing = is_thing[cls];
        if (!thing) {
            auto it = stuff_ids.find(cls);
            if (it != stuff_ids.end()) {
                Segment& seg = segments[it->second - 1];
                seg_of[k + 1] = it->second;
                if (score > seg.score) seg.score = score;
                seg.area += n.fg[k];
                continue;
            }
        }
        const int id = static_cast<int>(segments.size()) + 1;
        if (!thing) stuff_ids[cls] = id;
        seg_of[k + 1] = id;
        segments.push_back({id, cls, q, score, n.fg[k], thing});
    }
    return segments;
}

// 3b. Label codes -> segment ids: from codes8 when it holds them, else in place.
void remap_labels(const std::vector<int32_t>& seg_of, const std::vector<uint8_t>& codes8,
                  size_t n_out, int n_threads, int32_t* label_map) {
    const bool bytes = !codes8.empty();
    parallel_for(parallel_parts(double(n_out), n_threads), [&](int part, int parts) {
        const size_t lo = n_out * part / parts, hi = n_out * (part + 1) / parts;
        const int32_t* map = seg_of.data();
        if (bytes) {
            const uint8_t* c = codes8.data();
            for (size_t i = lo; i < hi; ++i) label_map[i] = map[c[i]];
        } else {
            for (size_t i = lo; i < hi; ++i) label_map[i] = map[label_map[i]];
        }
    });
}

}  // namespace

std::vector<Segment> panoptic_fuse(const float* cls_logits, int n_queries, int n_cls1,
                                   const float* mask_logits, int mask_h, int mask_w,
                                   const bool* is_thing, const PanopticParams& params,
                                   int32_t* label_map) {
    check_panoptic_args(cls_logits, n_queries, n_cls1, mask_logits, mask_h, mask_w, params);
    const size_t n_out = static_cast<size_t>(params.out_h) * params.out_w;
    std::vector<int> labels;
    std::vector<double> scores;
    const std::vector<int> kept = kept_queries(cls_logits, n_queries, n_cls1,
                                               params.score_threshold, labels, scores);
    if (kept.empty()) {
        std::fill(label_map, label_map + n_out, 0);
        return {};
    }
    const PanopticState st = panoptic_state(mask_logits, mask_h, mask_w, kept, scores, params);
    std::vector<uint8_t> codes8;
    const PanopticCounts counts = fuse_rows(st, n_out, params.n_threads, codes8, label_map);
    std::vector<int32_t> seg_of;
    std::vector<Segment> segments = maskformer_segments(kept, labels, st.scores, counts, is_thing,
                                                        params.overlap_threshold, seg_of);
    remap_labels(seg_of, codes8, n_out, params.n_threads, label_map);
    return segments;
}

// ------------------------------------------------------------------ prompt masks
namespace {

// One row band of a prompt mask, every pixel evaluated (the twin's float arithmetic, no
// pruning): used when most cells of the band are mixed (noisy logits), where per-cell
// bookkeeping costs more than it saves. Whole output rows are contiguous, so each clone
// vectorises the inner loops. r0 / r1: the band's two source rows; c0 / c1: each output
// column's source taps. Returns the pixel counts above t[1] and t[2] through ch / cl.
RAPSAM_SIMD_CLONES
void prompt_dense_band(const float* r0, const float* r1, const int32_t* c0, const int32_t* c1,
                       const float* wx0, const float* wx1, const float* wy0, const float* wy1,
                       int rh, int out_w, const float* t, uint8_t* out, float* top, float* bot,
                       int64_t& ch, int64_t& cl) {
    for (int x = 0; x < out_w; ++x) {
        top[x] = wx0[x] * r0[c0[x]] + wx1[x] * r0[c1[x]];
        bot[x] = wx0[x] * r1[c0[x]] + wx1[x] * r1[c1[x]];
    }
    const float t0 = t[0], t1 = t[1], t2 = t[2];
    for (int y = 0; y < rh; ++y) {
        const float v0 = wy0[y], v1 = wy1[y];
        uint8_t* row = out + static_cast<size_t>(y) * out_w;
        int32_t nh = 0, nl = 0;  // 32-bit lanes: vectorised counts (out_w <= kMaxSide)
        for (int x = 0; x < out_w; ++x) {
            const float v = v0 * top[x] + v1 * bot[x];
            row[x] = v > t0;
            nh += v > t1;
            nl += v > t2;
        }
        ch += nh;
        cl += nl;
    }
}

// prompt_masks' sampling plan, shared by every thread: thresholds, bands, weights, taps.
struct PromptPlan {
    float t[3] = {};  // float32 of threshold, threshold + offset, threshold - offset
    std::vector<Band> ybands, xbands;
    std::vector<float> wy0, wy1, wx0, wx1;
    std::vector<int32_t> col0, col1;  // each output column's source taps
    int mask_w = 0, out_w = 0;
    int max_cw = 1;  // widest cell
};

// A thread's buffers: the band's row template, a cell's (or, dense, a row's) horizontal
// interpolations, the band's mixed cells.
struct PromptScratch {
    std::vector<uint8_t> templ;
    std::vector<float> top, bot;
    std::vector<int> mixed;
};

void check_prompt_args(const float* mask_logits, int n, int mask_h, int mask_w, double valid_h,
                       double valid_w, int out_h, int out_w, double threshold,
                       double stability_offset, bool check_finite) {
    if (n < 0) fail("mask_logits must have a non-negative number of masks");
    if (mask_h < 1 || mask_w < 1) fail("mask_logits masks are empty");
    check_out(out_h, out_w);
    check_valid(valid_h, valid_w, mask_h, mask_w);
    if (!std::isfinite(threshold))
        fail("threshold must be finite, got " + std::to_string(threshold));
    if (!std::isfinite(stability_offset))
        fail("stability_offset must be finite, got " + std::to_string(stability_offset));
    if (stability_offset < 0)
        fail("stability_offset must be >= 0, got " + std::to_string(stability_offset));
    const size_t hw = static_cast<size_t>(mask_h) * mask_w;
    if (check_finite && !all_finite(mask_logits, hw * n))
        fail("mask_logits contains NaN or infinity");
}

PromptPlan prompt_plan(int mask_h, int mask_w, double valid_h, double valid_w, int out_h, int out_w,
                       double threshold, double stability_offset) {
    PromptPlan pl;
    // thresholds: float32(threshold +- offset) computed in double, compared in float
    pl.t[0] = static_cast<float>(threshold);
    pl.t[1] = static_cast<float>(threshold + stability_offset);
    pl.t[2] = static_cast<float>(threshold - stability_offset);
    const Taps ty = sample_grid(out_h, valid_h, mask_h);
    const Taps tx = sample_grid(out_w, valid_w, mask_w);
    pl.ybands = make_bands(ty);
    pl.xbands = make_bands(tx);
    float_weights(ty, pl.wy0, pl.wy1);
    float_weights(tx, pl.wx0, pl.wx1);
    for (const Band& b : pl.xbands) pl.max_cw = std::max(pl.max_cw, b.end - b.begin);
    pl.col0.resize(out_w);
    pl.col1.resize(out_w);
    for (int x = 0; x < out_w; ++x) {
        pl.col0[x] = static_cast<int32_t>(tx.i0[x]);
        pl.col1[x] = static_cast<int32_t>(tx.i1[x]);
    }
    pl.mask_w = mask_w;
    pl.out_w = out_w;
    return pl;
}

// First pass over the cells of row band rb of mask L, from their corners (cell_range): a
// cell decided for the mask threshold t[0] is written to its columns of templ; a cell that
// any threshold leaves undecided goes to `mixed`. band_h / band_l: the pixels of the cells
// decided above t[1] / t[2].
void prompt_classify_cells(const PromptPlan& pl, const float* L, const Band& rb, uint8_t* templ,
                           std::vector<int>& mixed, int64_t& band_h, int64_t& band_l) {
    const float t[3] = {pl.t[0], pl.t[1], pl.t[2]};
    const int rh = rb.end - rb.begin, mask_w = pl.mask_w;
    const Band* xbands = pl.xbands.data();
    const int n_cells = static_cast<int>(pl.xbands.size());
    for (int xbi = 0; xbi < n_cells; ++xbi) {
        const Band& cb = xbands[xbi];
        const int cw = cb.end - cb.begin;
        const auto [lo_v, hi_v] = cell_range(L, mask_w, rb, cb);
        // state per threshold: 1 = all above, 0 = none above, 2 = mixed
        int state[3];
        for (int i = 0; i < 3; ++i) state[i] = lo_v > t[i] ? 1 : (hi_v <= t[i] ? 0 : 2);
        const int64_t npix = int64_t{rh} * cw;
        if (state[1] == 1) band_h += npix;
        if (state[2] == 1) band_l += npix;
        if (state[0] == 2 || state[1] == 2 || state[2] == 2) mixed.push_back(xbi);
        // a mixed mask cell is written per pixel after the row copy
        if (state[0] != 2) std::memset(templ + cb.begin, state[0], cw);
    }
}

// Second pass: the mixed cells of row band rb, every pixel with the twin's float arithmetic
// (the band's rows of `out` already hold the template). Adds to nh / nl the counts of the
// thresholds the first pass left undecided (the decided ones were counted there).
void prompt_mixed_cells(const PromptPlan& pl, const float* L, const Band& rb,
                        const std::vector<int>& mixed, uint8_t* out, float* top, float* bot,
                        int64_t& nh, int64_t& nl) {
    // local copies: the pixel loop's byte stores could alias pl (a reload per pixel)
    const float t[3] = {pl.t[0], pl.t[1], pl.t[2]};
    const int mask_w = pl.mask_w, out_w = pl.out_w;
    const float* wx0 = pl.wx0.data();
    const float* wx1 = pl.wx1.data();
    const float* wy0 = pl.wy0.data();
    const float* wy1 = pl.wy1.data();
    for (int xbi : mixed) {
        const Band& cb = pl.xbands[xbi];
        const int cw = cb.end - cb.begin;
        const auto [lo_v, hi_v] = cell_range(L, mask_w, rb, cb);
        const bool decided_hi = lo_v > t[1] || hi_v <= t[1];
        const bool decided_lo = lo_v > t[2] || hi_v <= t[2];
        const float a = L[rb.t0 * mask_w + cb.t0], b = L[rb.t0 * mask_w + cb.t1];
        const float c = L[rb.t1 * mask_w + cb.t0], d = L[rb.t1 * mask_w + cb.t1];
        horizontal(wx0, wx1, cb.begin, cb.end, a, b, c, d, top, bot);
        int64_t ch = 0, cl = 0;
        for (int y = rb.begin; y < rb.end; ++y) {
            const float v0 = wy0[y], v1 = wy1[y];
            uint8_t* row = out + static_cast<size_t>(y) * out_w + cb.begin;
            for (int x = 0; x < cw; ++x) {
                const float v = v0 * top[x] + v1 * bot[x];
                row[x] = v > t[0];
                ch += v > t[1];
                cl += v > t[2];
            }
        }
        if (!decided_hi) nh += ch;
        if (!decided_lo) nl += cl;
    }
}

// One row band rb of prompt mask L (its plane `out`): cells decided from their corners are
// copied from a row template, mixed cells evaluated per pixel, or, when most cells are mixed
// (noisy logits), every pixel of the band (prompt_dense_band). Adds the band's pixel counts
// above t[1] / t[2] to nh / nl. Called once per (mask, band).
void prompt_band(const PromptPlan& pl, const float* L, const Band& rb, uint8_t* out,
                 PromptScratch& s, int64_t& nh, int64_t& nl) {
    const int rh = rb.end - rb.begin, out_w = pl.out_w, mask_w = pl.mask_w;
    s.mixed.clear();
    int64_t band_h = 0, band_l = 0;  // pixels of the cells decided above t[1] / t[2]
    prompt_classify_cells(pl, L, rb, s.templ.data(), s.mixed, band_h, band_l);
    if (2 * s.mixed.size() > pl.xbands.size()) {  // mostly mixed: every pixel
        int64_t ch = 0, cl = 0;
        prompt_dense_band(L + rb.t0 * mask_w, L + rb.t1 * mask_w, pl.col0.data(), pl.col1.data(),
                          pl.wx0.data(), pl.wx1.data(), pl.wy0.data() + rb.begin,
                          pl.wy1.data() + rb.begin, rh, out_w, pl.t,
                          out + static_cast<size_t>(rb.begin) * out_w, s.top.data(), s.bot.data(),
                          ch, cl);
        nh += ch;  // every pixel counted: the decided cells' sums are dropped
        nl += cl;
        return;
    }
    nh += band_h;
    nl += band_l;
    for (int y = rb.begin; y < rb.end; ++y)
        std::memcpy(out + static_cast<size_t>(y) * out_w, s.templ.data(), out_w);
    prompt_mixed_cells(pl, L, rb, s.mixed, out, s.top.data(), s.bot.data(), nh, nl);
}

}  // namespace

void prompt_masks(const float* mask_logits, int n, int mask_h, int mask_w, double valid_h,
                  double valid_w, int out_h, int out_w, double threshold, double stability_offset,
                  uint8_t* masks, float* stability, int n_threads, bool check_finite) {
    check_prompt_args(mask_logits, n, mask_h, mask_w, valid_h, valid_w, out_h, out_w, threshold,
                      stability_offset, check_finite);
    if (n == 0) return;
    const size_t hw = static_cast<size_t>(mask_h) * mask_w;
    const size_t plane = static_cast<size_t>(out_h) * out_w;
    const PromptPlan pl = prompt_plan(mask_h, mask_w, valid_h, valid_w, out_h, out_w, threshold,
                                      stability_offset);
    const int parts = parallel_parts(double(plane) * n, n_threads);
    // pixel counts above t[1] (hi) and t[2] (lo), per thread and mask
    std::vector<std::vector<int64_t>> hi(parts, std::vector<int64_t>(n, 0)),
        lo(parts, std::vector<int64_t>(n, 0));
    const std::vector<size_t> cut = split_bands(pl.ybands, parts);
    parallel_for(parts, [&](int part, int) {
        PromptScratch s;
        s.templ.resize(out_w);
        s.top.resize(std::max(pl.max_cw, out_w));
        s.bot.resize(std::max(pl.max_cw, out_w));
        for (int p = 0; p < n; ++p)
            for (size_t yb = cut[part]; yb < cut[part + 1]; ++yb)
                prompt_band(pl, mask_logits + p * hw, pl.ybands[yb], masks + p * plane, s,
                            hi[part][p], lo[part][p]);
    });
    for (int p = 0; p < n; ++p) {
        int64_t h_sum = 0, l_sum = 0;
        for (int i = 0; i < parts; ++i) {
            h_sum += hi[i][p];
            l_sum += lo[i][p];
        }
        stability[p] = l_sum > 0 ? static_cast<float>(double(h_sum) / double(l_sum)) : 0.0f;
    }
}

// ------------------------------------------------------------------ boxes
// First / last non-zero byte of p[0, n), scanning 8 bytes at a time (n when none).
static int64_t first_nonzero(const uint8_t* p, int64_t n) {
    int64_t i = 0;
    for (uint64_t word; i + 8 <= n; i += 8) {
        std::memcpy(&word, p + i, 8);
        if (word) break;
    }
    for (; i < n; ++i)
        if (p[i]) return i;
    return n;
}

static int64_t last_nonzero(const uint8_t* p, int64_t n) {
    int64_t i = n;
    for (uint64_t word; i >= 8; i -= 8) {
        std::memcpy(&word, p + i - 8, 8);
        if (word) break;
    }
    for (--i; i >= 0; --i)
        if (p[i]) return i;
    return -1;
}

void masks_to_boxes(const uint8_t* masks, int64_t n, int64_t h, int64_t w, int32_t* boxes) {
    // Per mask: the first non-empty row from the top and from the bottom give y0, y1; the
    // rows between only need scanning outside the current [x0, x1] to widen it.
    for (int64_t i = 0; i < n; ++i) {
        const uint8_t* m = masks + i * h * w;
        int32_t* b = boxes + 4 * i;
        int64_t y0 = 0, x0 = w, x1 = -1;
        for (; y0 < h; ++y0) {
            const int64_t first = first_nonzero(m + y0 * w, w);
            if (first < w) {
                x0 = first;
                x1 = last_nonzero(m + y0 * w, w);
                break;
            }
        }
        if (y0 == h) {
            b[0] = b[1] = b[2] = b[3] = 0;
            continue;
        }
        int64_t y1 = h - 1;
        for (; y1 > y0; --y1) {
            const int64_t first = first_nonzero(m + y1 * w, w);
            if (first < w) {
                x0 = std::min(x0, first);
                x1 = std::max(x1, last_nonzero(m + y1 * w, w));
                break;
            }
        }
        for (int64_t y = y0 + 1; y < y1; ++y) {
            const uint8_t* row = m + y * w;
            if (x0 > 0) x0 = std::min(x0, first_nonzero(row, x0));
            if (x1 < w - 1) {
                const int64_t last = last_nonzero(row + x1 + 1, w - x1 - 1);
                if (last >= 0) x1 += 1 + last;
            }
        }
        b[0] = static_cast<int32_t>(x0);
        b[1] = static_cast<int32_t>(y0);
        b[2] = static_cast<int32_t>(x1 + 1);
        b[3] = static_cast<int32_t>(y1 + 1);
    }
}

}  // namespace rapsam
