// Plain C++ unit tests of rapsam_core (no framework; nonzero exit on failure).
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "assignment.hpp"
#include "build_info.hpp"
#include "overlay.hpp"
#include "parallel.hpp"
#include "postprocess.hpp"
#include "rle.hpp"
#include "tracker.hpp"

static int g_failures = 0, g_checks = 0;
#define CHECK(cond)                                                                       \
    do {                                                                                  \
        ++g_checks;                                                                       \
        if (!(cond)) {                                                                    \
            ++g_failures;                                                                 \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                                 \
    } while (0)

template <class F>
static bool throws_invalid(F&& f) {
    try {
        f();
    } catch (const std::invalid_argument&) {
        return true;
    }
    return false;
}

static void test_sample_grid() {
    // 2 -> 4 upsampling: positions -0.25 (clamped 0), 0.25, 0.75, 1.25
    rapsam::Taps t = rapsam::sample_grid(4, 2.0, 2);
    CHECK(t.i0 == (std::vector<int64_t>{0, 0, 0, 1}));
    CHECK(t.i1 == (std::vector<int64_t>{1, 1, 1, 1}));
    CHECK(t.frac[0] == 0.0 && t.frac[1] == 0.25 && t.frac[2] == 0.75 && t.frac[3] == 0.25);
}

static void test_letterbox() {
    // 100 x 200 -> box 64: scale 0.32, 32 x 64, padded to 32 x 64 (divisor 32)
    rapsam::LetterboxGeometry g = rapsam::letterbox_geometry(100, 200, 64, 64, 32);
    CHECK(g.new_h == 32 && g.new_w == 64 && g.pad_h == 32 && g.pad_w == 64);
    CHECK(std::fabs(g.scale - 0.32) < 1e-12);
    g = rapsam::letterbox_geometry(100, 200, 64, 64, 24);
    CHECK(g.pad_h == 48 && g.pad_w == 72);
    // a constant image stays constant; the padding has pad_value; swap_rb swaps channels
    std::vector<uint8_t> img(100 * 200 * 3);
    for (size_t i = 0; i < img.size(); i += 3) {
        img[i] = 10;
        img[i + 1] = 20;
        img[i + 2] = 30;
    }
    std::vector<uint8_t> out(48 * 72 * 3);
    rapsam::letterbox(img.data(), 100, 200, 3, g, 7, true, out.data());
    CHECK(out[0] == 30 && out[1] == 20 && out[2] == 10);
    CHECK(out[(31 * 72 + 63) * 3] == 30);
    CHECK(out[(32 * 72 + 0) * 3] == 7 && out[(0 * 72 + 64) * 3 + 1] == 7);
    // identity resize is exact
    std::vector<uint8_t> ramp(4 * 4);
    for (int i = 0; i < 16; ++i) ramp[i] = static_cast<uint8_t>(i * 16);
    g = rapsam::letterbox_geometry(4, 4, 4, 4, 1);
    std::vector<uint8_t> same(16);
    rapsam::letterbox(ramp.data(), 4, 4, 1, g, 0, false, same.data());
    CHECK(same == ramp);
    // 2x upsampling of [0, 255]: interior values interpolate
    uint8_t two[2] = {0, 255};
    g = rapsam::letterbox_geometry(1, 2, 2, 4, 1);
    CHECK(g.scale == 2.0 && g.new_h == 2 && g.new_w == 4);
    uint8_t four[8];
    rapsam::letterbox(two, 1, 2, 1, g, 0, false, four);
    CHECK(four[0] == 0 && four[1] == 64 && four[2] == 191 && four[3] == 255 && four[5] == 64);
    CHECK(throws_invalid([] { rapsam::letterbox_geometry(0, 10, 10, 10, 32); }));
    CHECK(throws_invalid([] { rapsam::letterbox_geometry(10, 10, 10, 10, 0); }));
    CHECK(throws_invalid([&] {
        uint8_t px[1] = {0};
        rapsam::letterbox(px, 1, 1, 1, rapsam::letterbox_geometry(1, 1, 1, 1, 1), 0, true, px);
    }));
}

// two queries, two classes (0 thing, 1 stuff) + no-object column
static void test_panoptic_basic() {
    const int n = 2, c1 = 3, h = 2, w = 2;
    const float cls[n * c1] = {8, 0, 0, 0, 8, 0};  // q0 -> class 0, q1 -> class 1
    // q0 positive on the left column, q1 on the right column
    const float masks[n * h * w] = {5, -5, 5, -5, -5, 5, -5, 5};
    const bool is_thing[2] = {true, false};
    rapsam::PanopticParams p;
    p.valid_h = 2;
    p.valid_w = 2;
    p.out_h = 2;
    p.out_w = 2;
    std::vector<int32_t> lm(4, -1);
    auto segs = rapsam::panoptic_fuse(cls, n, c1, masks, h, w, is_thing, p, lm.data());
    CHECK(segs.size() == 2);
    CHECK(lm == (std::vector<int32_t>{1, 2, 1, 2}));
    CHECK(segs[0].id == 1 && segs[0].cls == 0 && segs[0].query == 0 && segs[0].area == 2 &&
          segs[0].is_thing);
    CHECK(segs[1].id == 2 && segs[1].cls == 1 && segs[1].query == 1 && !segs[1].is_thing);
    CHECK(std::fabs(segs[0].score - 0.99932873f) < 1e-6);
    // upsampled 2 -> 8: the boundary falls in the middle, each side 4 columns
    p.out_h = 8;
    p.out_w = 8;
    lm.assign(64, -1);
    segs = rapsam::panoptic_fuse(cls, n, c1, masks, h, w, is_thing, p, lm.data());
    CHECK(segs.size() == 2 && segs[0].area == 32 && segs[1].area == 32);
    CHECK(lm[3] == 1 && lm[4] == 2);
    // thresholds are probabilities: NaN or outside [0, 1] is refused (as ops._checks does)
    for (double bad : {std::nan(""), -0.1, 1.5}) {
        rapsam::PanopticParams q = p;
        q.score_threshold = bad;
        CHECK(throws_invalid(
            [&] { rapsam::panoptic_fuse(cls, n, c1, masks, h, w, is_thing, q, lm.data()); }));
        q = p;
        q.overlap_threshold = bad;
        CHECK(throws_invalid(
            [&] { rapsam::panoptic_fuse(cls, n, c1, masks, h, w, is_thing, q, lm.data()); }));
    }
    // nothing kept: high threshold
    p.score_threshold = 0.9999;
    segs = rapsam::panoptic_fuse(cls, n, c1, masks, h, w, is_thing, p, lm.data());
    CHECK(segs.empty());
    bool all_zero = true;
    for (int32_t v : lm) all_zero = all_zero && v == 0;
    CHECK(all_zero);
}

static void test_panoptic_stuff_merge_and_overlap() {
    // q0, q1: stuff class 1 on disjoint halves -> one merged segment; q2: thing class 0
    // overlapping q0 but weaker -> dropped by the overlap test
    const int n = 3, c1 = 3, h = 1, w = 4;
    const float cls[n * c1] = {0, 6, 0, 0, 7, 0, 5, 0, 0};
    const float masks[n * h * w] = {4, 4, -4, -4, -4, -4, 4, 4, 3, 3, 3, -4};
    const bool is_thing[2] = {true, false};
    rapsam::PanopticParams p;
    p.valid_h = 1;
    p.valid_w = 4;
    p.out_h = 1;
    p.out_w = 4;
    std::vector<int32_t> lm(4, -1);
    auto segs = rapsam::panoptic_fuse(cls, n, c1, masks, h, w, is_thing, p, lm.data());
    CHECK(segs.size() == 1);
    CHECK(lm == (std::vector<int32_t>{1, 1, 1, 1}));
    CHECK(segs.size() == 1 && segs[0].cls == 1 && segs[0].query == 0 && segs[0].area == 4);
    // score = max over the merged queries (q1 has the larger class logit)
    const double e7 = std::exp(7.0), s1 = e7 / (e7 + 2.0);
    CHECK(segs.size() == 1 && std::fabs(segs[0].score - static_cast<float>(s1)) < 1e-6);
    // with overlap_threshold 0 the dropped thing query survives on the pixel it wins
    p.overlap_threshold = 0.0;
    segs = rapsam::panoptic_fuse(cls, n, c1, masks, h, w, is_thing, p, lm.data());
    CHECK(segs.size() == 1);  // q2 wins no pixel: it is skipped, not dropped
    // empty query set
    segs = rapsam::panoptic_fuse(cls, 0, c1, masks, h, w, is_thing, p, lm.data());
    CHECK(segs.empty());
    // NaN and bad sizes throw
    float bad[n * h * w];
    std::memcpy(bad, masks, sizeof(bad));
    bad[5] = NAN;
    CHECK(throws_invalid(
        [&] { rapsam::panoptic_fuse(cls, n, c1, bad, h, w, is_thing, p, lm.data()); }));
    p.valid_w = 5;
    CHECK(throws_invalid(
        [&] { rapsam::panoptic_fuse(cls, n, c1, masks, h, w, is_thing, p, lm.data()); }));
    p.valid_w = 4;
    p.out_w = 0;
    CHECK(throws_invalid(
        [&] { rapsam::panoptic_fuse(cls, n, c1, masks, h, w, is_thing, p, lm.data()); }));
}

static void test_prompt_masks() {
    const float logits[2 * 1 * 2] = {-2, 2, 5, 5};
    std::vector<uint8_t> masks(2 * 1 * 4);
    float stab[2];
    rapsam::prompt_masks(logits, 2, 1, 2, 1, 2, 1, 4, 0.0, 1.0, masks.data(), stab);
    // prompt 0 along x: -2, -1, 1, 2 -> mask 0 0 1 1; > 1: 1 pixel; > -1: 2 pixels (-1 is not > -1)
    CHECK(masks == (std::vector<uint8_t>{0, 0, 1, 1, 1, 1, 1, 1}));
    CHECK(stab[0] == 0.5f && stab[1] == 1.0f);
    const float low[2] = {-9, -9};
    rapsam::prompt_masks(low, 1, 1, 2, 1, 2, 1, 4, 0.0, 1.0, masks.data(), stab);
    CHECK(stab[0] == 0.0f && masks[0] == 0);
    CHECK(throws_invalid(
        [&] { rapsam::prompt_masks(logits, 2, 1, 2, 1, 2, 1, 4, 0.0, -1.0, masks.data(), stab); }));
    CHECK(throws_invalid(
        [&] { rapsam::prompt_masks(logits, 2, 1, 2, 1, 2, 1, 4, NAN, 1.0, masks.data(), stab); }));
}

static void test_boxes() {
    std::vector<uint8_t> m(2 * 3 * 4, 0);
    m[1 * 4 + 1] = 1;
    m[2 * 4 + 2] = 1;
    int32_t boxes[8];
    rapsam::masks_to_boxes(m.data(), 2, 3, 4, boxes);
    CHECK(boxes[0] == 1 && boxes[1] == 1 && boxes[2] == 3 && boxes[3] == 3);
    CHECK(boxes[4] == 0 && boxes[5] == 0 && boxes[6] == 0 && boxes[7] == 0);
}

static void test_rle() {
    // 3 x 3 mask, column-major 0 1 1 / 0 0 1 / 1 0 0 ... built from known runs
    // mask rows: [0 0 1] [1 0 0] [1 1 0] -> column-major 0 1 1 | 0 0 1 | 1 0 0
    const uint8_t mask[9] = {0, 0, 1, 1, 0, 0, 1, 1, 0};
    auto runs = rapsam::rle_runs(mask, 3, 3);
    CHECK(runs == (std::vector<int64_t>{1, 2, 2, 2, 2}));
    // pycocotools.mask.encode(...)["counts"] == b"12200" for this mask
    CHECK(rapsam::rle_encode(mask, 3, 3) == "12200");
    // mask starting with a set pixel begins with a zero run
    const uint8_t ones[4] = {1, 1, 1, 1};
    CHECK(rapsam::rle_encode(ones, 2, 2) == "04");
    // large runs and negative deltas round-trip
    std::vector<int64_t> big = {100000, 3, 5, 70000, 1, 0};
    std::string s = rapsam::rle_counts_to_string(big);
    CHECK(rapsam::rle_counts_from_string(s.data(), s.size()) == big);
    std::vector<uint8_t> back(9);
    rapsam::rle_check_runs(runs, 3, 3);
    rapsam::rle_decode(runs, 3, 3, back.data());
    CHECK(std::memcmp(back.data(), mask, 9) == 0);
    CHECK(throws_invalid([] { rapsam::rle_counts_from_string("1\x7f", 2); }));
    CHECK(throws_invalid([] { rapsam::rle_counts_from_string("1p", 2); }));  // truncated
    CHECK(throws_invalid([] { rapsam::rle_check_runs({1, 2}, 2, 2); }));
    CHECK(throws_invalid([] { rapsam::rle_check_runs({5, -1}, 2, 2); }));
    CHECK(throws_invalid([] {
        std::string long_run(40, 'o');
        rapsam::rle_counts_from_string(long_run.data(), long_run.size());
    }));
}

static void test_assignment() {
    // optimum: (0,1), (1,0), (2,2) with cost 1 + 2 + 2 = 5
    const double cost[9] = {4, 1, 3, 2, 0, 5, 3, 2, 2};
    auto a = rapsam::linear_assignment(cost, 3, 3);
    CHECK(a.rows == (std::vector<int64_t>{0, 1, 2}));
    CHECK(a.cols == (std::vector<int64_t>{1, 0, 2}));
    auto mx = rapsam::linear_assignment(cost, 3, 3, true);  // max: 4 + 5 + 2 = 11
    double total = 0;
    for (size_t i = 0; i < mx.rows.size(); ++i) total += cost[mx.rows[i] * 3 + mx.cols[i]];
    CHECK(total == 11);
    // rectangular 3 x 2: one row left out
    const double tall[6] = {1, 9, 9, 1, 0, 0};
    a = rapsam::linear_assignment(tall, 3, 2);
    CHECK(a.rows.size() == 2);
    total = 0;
    for (size_t i = 0; i < a.rows.size(); ++i) total += tall[a.rows[i] * 2 + a.cols[i]];
    CHECK(total == 0 + 1 || total == 1);
    const double inf = INFINITY;
    const double forbid[4] = {inf, 1, inf, 2};
    CHECK(throws_invalid([&] { rapsam::linear_assignment(forbid, 2, 2); }));
    const double with_nan[1] = {NAN};
    CHECK(throws_invalid([&] { rapsam::linear_assignment(with_nan, 1, 1); }));
    const double neg_inf[1] = {-inf};
    CHECK(throws_invalid([&] { rapsam::linear_assignment(neg_inf, 1, 1); }));
    CHECK(throws_invalid([&] { rapsam::linear_assignment(forbid, 2, 2, true); }));
    a = rapsam::linear_assignment(nullptr, 0, 5);
    CHECK(a.rows.empty() && a.cols.empty());
}

static void test_overlay() {
    const uint8_t img[2 * 2 * 3] = {100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100};
    const int32_t labels[4] = {0, 1, 1, 1};
    uint8_t out[12];
    rapsam::overlay(img, labels, 2, 2, 0.5, false, out);
    uint8_t c[3];
    rapsam::palette_colour(1, c);
    // id 1: h = 0x9E3779B1 -> (0x37, 0x79, 0xB1) -> 64 + 3/4 * that
    CHECK(c[0] == 64 + 0x37 * 3 / 4 && c[1] == 64 + 0x79 * 3 / 4 && c[2] == 64 + 0xB1 * 3 / 4);
    CHECK(out[0] == 100 && out[3] == ((100 * 128 + c[0] * 128 + 128) >> 8));
    rapsam::overlay(img, labels, 2, 2, 0.5, true, out);
    // pixel (0,1)'s lower neighbour has the same label, right: none -> blended; (1,0)'s
    // right neighbour is label 1 too -> blended; a label next to void is an edge only on
    // the pixel whose right/lower neighbour differs
    CHECK(out[3] == ((100 * 128 + c[0] * 128 + 128) >> 8));
    const int32_t labels2[4] = {1, 0, 1, 1};
    rapsam::overlay(img, labels2, 2, 2, 0.5, true, out);
    CHECK(out[0] == c[0] && out[1] == c[1]);
    CHECK(throws_invalid([&] { rapsam::overlay(img, labels, 2, 2, 1.5, true, out); }));
}

// ------------------------------------------------------------------ the worker pool
static void set_env(const char* name, const char* value) {
#if defined(_WIN32)
    _putenv_s(name, value ? value : "");
#else
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
#endif
}

static std::string invalid_message(const char* env_value) {
    set_env(rapsam::kThreadsEnvVar, env_value);
    try {
        rapsam::default_num_threads();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

static void test_thread_settings() {
    const char* saved = std::getenv(rapsam::kThreadsEnvVar);
    const std::string saved_value = saved ? saved : "";
    CHECK(rapsam::available_cores() >= 1);
    set_env(rapsam::kThreadsEnvVar, "3");
    CHECK(rapsam::default_num_threads() == 3);
    set_env(rapsam::kThreadsEnvVar, " 2\n");
    CHECK(rapsam::default_num_threads() == 2);
    set_env(rapsam::kThreadsEnvVar, "");
    CHECK(rapsam::default_num_threads() ==
          std::min(rapsam::available_cores(), rapsam::kMaxThreads));
    for (const char* bad : {"0", "-1", "abc", "2.5", "257", "99999", "1e3"}) {
        const std::string msg = invalid_message(bad);
        CHECK(msg.find("RAPSAM_EDGE_THREADS") != std::string::npos);
        CHECK(msg.find(bad) != std::string::npos);
    }
    set_env(rapsam::kThreadsEnvVar, saved ? saved_value.c_str() : nullptr);
    // the rule itself (rapsam_edge.contract.threads.parse_threads; the Python test feeds both
    // the same strings): blank is unset, else 1 to 4 ASCII digits in [1, kMaxThreads]
    CHECK(!rapsam::parse_num_threads(nullptr) && !rapsam::parse_num_threads(" \t\r\n"));
    CHECK(rapsam::parse_num_threads("\t16\r\n") == 16 && rapsam::parse_num_threads("0256") == 256);
    CHECK(throws_invalid([] { rapsam::parse_num_threads("+4"); }));
    CHECK(throws_invalid([] { rapsam::parse_num_threads("00001"); }));
    // every byte counts: an embedded NUL is not an end of the value (Python's rule)
    CHECK(throws_invalid([] { rapsam::parse_num_threads(std::string("4\0", 2)); }));
    CHECK(rapsam::parse_num_threads(std::string(" 4 ")) == 4);
    CHECK(throws_invalid([] { rapsam::set_num_threads(0); }));
    CHECK(throws_invalid([] { rapsam::set_num_threads(rapsam::kMaxThreads + 1); }));
    rapsam::set_num_threads(3);
    CHECK(rapsam::num_threads() == 3);
    CHECK(rapsam::parallel_parts(10.0) == 1);  // small work: the calling thread alone
    CHECK(rapsam::parallel_parts(1e6) == 3);
    CHECK(rapsam::parallel_parts(1e6, 2) == 2);
    CHECK(std::string(rapsam::core_version()).find('.') != std::string::npos);
    const rapsam::BuildInfo info = rapsam::build_info();
    CHECK(info.version == rapsam::core_version() && !info.compiler.empty() && !info.arch.empty());
}

// Every part runs exactly once, on at most num_threads() threads, for many calls in a row;
// the pool keeps its workers (no thread per call).
static void test_pool_repeated_calls() {
    rapsam::set_num_threads(3);
    std::vector<int> hits(7);
    for (int call = 0; call < 2000; ++call) {
        std::fill(hits.begin(), hits.end(), 0);
        const int parts = 1 + call % 7;
        rapsam::parallel_for(parts, [&](int part, int n) {
            if (n == parts) ++hits[part];
        });
        bool once = true;
        for (int i = 0; i < 7; ++i) once = once && hits[i] == (i < parts ? 1 : 0);
        CHECK(once);
    }
    CHECK(rapsam::pool_workers() == 2);
    rapsam::set_num_threads(2);  // shrinks the pool
    CHECK(rapsam::pool_workers() <= 1);
    rapsam::parallel_for(4, [](int, int) {});
    CHECK(rapsam::pool_workers() == 1);
    rapsam::set_num_threads(1);
    std::atomic<int> sum{0};
    rapsam::parallel_for(5, [&](int part, int) { sum += part; });  // the caller runs all
    CHECK(sum == 10);
}

// An exception of a part reaches the caller; the pool stays usable; nested regions work.
static void test_pool_errors_and_nesting() {
    rapsam::set_num_threads(3);
    bool caught = false;
    try {
        rapsam::parallel_for(3, [](int part, int) {
            if (part == 1) throw std::invalid_argument("part 1 failed");
        });
    } catch (const std::invalid_argument& e) {
        caught = std::string(e.what()) == "part 1 failed";
    }
    CHECK(caught);
    std::atomic<int> inner{0};
    rapsam::parallel_for(3, [&](int, int) {
        rapsam::parallel_for(3, [&](int part, int) { inner += part + 1; });
    });
    CHECK(inner == 18);
}

static std::vector<float> smooth_logits(int n, int h, int w, unsigned seed) {
    std::vector<float> v(static_cast<size_t>(n) * h * w);
    for (int p = 0; p < n; ++p) {
        const double cy = (seed * 7 + p * 13) % h, cx = (seed * 11 + p * 5) % w;
        const double r = 2.0 + (seed + 3 * p) % (h / 2);
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                v[(static_cast<size_t>(p) * h + y) * w + x] =
                    static_cast<float>(r - std::hypot(y - cy, x - cx)) +
                    0.25f * static_cast<float>(((x * 31 + y * 17 + p) % 7) - 3);
    }
    return v;
}

struct Outputs {
    std::vector<uint8_t> masks, letterboxed;
    std::vector<float> stability;
    std::vector<int32_t> labels;
    std::vector<int64_t> areas;
};

// prompt_masks + panoptic_fuse + letterbox on inputs big enough to run in parallel
static Outputs run_ops(unsigned seed) {
    const int n = 6, h = 40, w = 48, out_h = 360, out_w = 500;
    const std::vector<float> logits = smooth_logits(n, h, w, seed);
    Outputs o;
    o.masks.resize(static_cast<size_t>(n) * out_h * out_w);
    o.stability.resize(n);
    rapsam::prompt_masks(logits.data(), n, h, w, 35.5, 48, out_h, out_w, 0.0, 1.0, o.masks.data(),
                         o.stability.data());
    std::vector<float> cls(static_cast<size_t>(n) * 4);
    for (int q = 0; q < n; ++q) cls[q * 4 + q % 3] = 6.0f + q;
    const bool is_thing[3] = {true, false, true};
    rapsam::PanopticParams params;
    params.valid_h = 35.5;
    params.valid_w = 48;
    params.out_h = out_h;
    params.out_w = out_w;
    params.overlap_threshold = 0.3;
    o.labels.resize(static_cast<size_t>(out_h) * out_w);
    for (const auto& s : rapsam::panoptic_fuse(cls.data(), n, 4, logits.data(), h, w, is_thing,
                                               params, o.labels.data()))
        o.areas.push_back(s.area);
    std::vector<uint8_t> image(static_cast<size_t>(480) * 640 * 3);
    for (size_t i = 0; i < image.size(); ++i)
        image[i] = static_cast<uint8_t>((i * 2654435761u + seed) >> 24);
    const rapsam::LetterboxGeometry g = rapsam::letterbox_geometry(480, 640, 640, 640, 32);
    o.letterboxed.resize(static_cast<size_t>(g.pad_h) * g.pad_w * 3);
    rapsam::letterbox(image.data(), 480, 640, 3, g, 114, true, o.letterboxed.data());
    return o;
}

static bool same(const Outputs& a, const Outputs& b) {
    return a.masks == b.masks && a.stability == b.stability && a.labels == b.labels &&
           a.areas == b.areas && a.letterboxed == b.letterboxed;
}

// Bit-identical results with 1, 2 and 3 threads, and with several callers at once.
static void test_pool_results_and_concurrent_callers() {
    rapsam::set_num_threads(1);
    const Outputs ref0 = run_ops(0), ref1 = run_ops(1);
    CHECK(!ref0.areas.empty());
    for (int threads : {2, 3}) {
        rapsam::set_num_threads(threads);
        CHECK(same(run_ops(0), ref0));
        CHECK(same(run_ops(1), ref1));
    }
    rapsam::set_num_threads(3);
    std::atomic<int> mismatches{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < 6; ++t) {
        callers.emplace_back([&, t] {
            for (int i = 0; i < 4; ++i) {
                const unsigned seed = (t + i) % 2;
                if (!same(run_ops(seed), seed ? ref1 : ref0)) ++mismatches;
                std::atomic<int> sum{0};
                rapsam::parallel_for(5, [&](int part, int) { sum += part; });
                if (sum != 10) ++mismatches;
            }
        });
    }
    for (auto& c : callers) c.join();
    CHECK(mismatches == 0);
    CHECK(rapsam::pool_workers() == 2);
}

// The numpy twins' outputs on fixed inputs (tools/make_core_golden.py): the build under test
// (e.g. aarch64 under qemu, no Python there) must reproduce them exactly.
struct Reader {
    std::vector<char> data;
    size_t pos = 0;
    template <class T>
    T get() {
        T v;
        if (pos + sizeof(T) > data.size()) throw std::runtime_error("golden file truncated");
        std::memcpy(&v, data.data() + pos, sizeof(T));
        pos += sizeof(T);
        return v;
    }
    template <class T>
    std::vector<T> array(size_t n) {
        std::vector<T> v(n);
        for (auto& x : v) x = get<T>();
        return v;
    }
};

static void test_golden_twin_outputs() {
#ifdef RAPSAM_GOLDEN
    std::FILE* f = std::fopen(RAPSAM_GOLDEN, "rb");
    CHECK(f != nullptr);
    if (!f) return;
    Reader r;
    char block[65536];
    size_t got;
    while ((got = std::fread(block, 1, sizeof block, f)) > 0)
        r.data.insert(r.data.end(), block, block + got);
    std::fclose(f);
    CHECK(std::memcmp(r.data.data(), "RPSG", 4) == 0);
    r.pos = 4;
    CHECK(r.get<int32_t>() == 1);
    const int n_pan = r.get<int32_t>();
    for (int c = 0; c < n_pan; ++c) {
        const int n = r.get<int32_t>(), c1 = r.get<int32_t>(), h = r.get<int32_t>(),
                  w = r.get<int32_t>(), oh = r.get<int32_t>(), ow = r.get<int32_t>();
        rapsam::PanopticParams p;
        p.valid_h = r.get<double>();
        p.valid_w = r.get<double>();
        p.score_threshold = r.get<double>();
        p.overlap_threshold = r.get<double>();
        p.out_h = oh;
        p.out_w = ow;
        const auto cls = r.array<float>(size_t(n) * c1);
        const auto masks = r.array<float>(size_t(n) * h * w);
        const auto thing8 = r.array<uint8_t>(c1 - 1);
        const auto want = r.array<int32_t>(size_t(oh) * ow);
        const int n_seg = r.get<int32_t>();
        std::unique_ptr<bool[]> thing(new bool[c1 - 1]);
        for (int i = 0; i < c1 - 1; ++i) thing[i] = thing8[i] != 0;
        for (int threads : {1, 2}) {
            p.n_threads = threads;
            std::vector<int32_t> label(size_t(oh) * ow);
            const auto segs = rapsam::panoptic_fuse(cls.data(), n, c1, masks.data(), h, w,
                                                    thing.get(), p, label.data());
            CHECK(label == want);
            CHECK(static_cast<int>(segs.size()) == n_seg);
        }
        for (int i = 0; i < n_seg; ++i) {  // the records (checked against the 1-thread run)
            const int32_t id = r.get<int32_t>(), cl = r.get<int32_t>(), q = r.get<int32_t>();
            const float score = r.get<float>();
            const int64_t area = r.get<int64_t>();
            const uint8_t th = r.get<uint8_t>();
            p.n_threads = 1;
            std::vector<int32_t> label(size_t(oh) * ow);
            const auto segs = rapsam::panoptic_fuse(cls.data(), n, c1, masks.data(), h, w,
                                                    thing.get(), p, label.data());
            if (i < static_cast<int>(segs.size())) {
                const auto& s = segs[i];
                CHECK(s.id == id && s.cls == cl && s.query == q && s.area == area);
                CHECK(std::fabs(s.score - score) <= 1e-6f && s.is_thing == (th != 0));
            }
        }
    }
    const int n_prm = r.get<int32_t>();
    for (int c = 0; c < n_prm; ++c) {
        const int n = r.get<int32_t>(), h = r.get<int32_t>(), w = r.get<int32_t>(),
                  oh = r.get<int32_t>(), ow = r.get<int32_t>();
        const double vh = r.get<double>(), vw = r.get<double>(), thr = r.get<double>(),
                     off = r.get<double>();
        const auto logits = r.array<float>(size_t(n) * h * w);
        const auto want = r.array<uint8_t>(size_t(n) * oh * ow);
        const auto want_stab = r.array<float>(n);
        std::vector<uint8_t> masks(size_t(n) * oh * ow);
        std::vector<float> stab(n);
        rapsam::prompt_masks(logits.data(), n, h, w, vh, vw, oh, ow, thr, off, masks.data(),
                             stab.data(), 2, true);
        CHECK(masks == want);
        for (int i = 0; i < n; ++i) CHECK(std::fabs(stab[i] - want_stab[i]) <= 1e-6f);
    }
    CHECK(r.pos == r.data.size());
#endif
}

// Settings the Python side refuses (ops._checks.tracker_args) are refused by the C++
// tracker too, for a C++ caller with no Python in front of it.
static void test_tracker_config() {
    using rapsam::OnlineTracker;
    using rapsam::TrackerConfig;
    CHECK(!throws_invalid([] { OnlineTracker t{TrackerConfig{}}; }));
    const double nan = std::nan(""), inf = INFINITY;
    for (double bad : {nan, inf, -1.5, 1.5}) {
        TrackerConfig c;
        c.match_threshold = bad;
        CHECK(throws_invalid([&] { OnlineTracker t{c}; }));
    }
    for (double bad : {nan, inf, -0.1, 1.1}) {
        TrackerConfig b, m;
        b.birth_score = bad;
        m.momentum = bad;
        CHECK(throws_invalid([&] { OnlineTracker t{b}; }));
        CHECK(throws_invalid([&] { OnlineTracker t{m}; }));
    }
    for (double bad : {nan, inf, -3.0}) {
        TrackerConfig c;
        c.class_change_penalty = bad;
        CHECK(throws_invalid([&] { OnlineTracker t{c}; }));
    }
    TrackerConfig edges;  // the ends of each range are accepted
    edges.match_threshold = -1.0;
    edges.class_change_penalty = 0.0;
    edges.birth_score = 1.0;
    edges.momentum = 0.0;
    edges.max_missed = 0;
    CHECK(!throws_invalid([&] { OnlineTracker t{edges}; }));
    TrackerConfig missed;
    missed.max_missed = -1;
    CHECK(throws_invalid([&] { OnlineTracker t{missed}; }));
}

// A frame the tracker refuses (NaN / inf embedding, class < 0, score outside [0, 1] or not
// finite, a dim differing from the tracks', n < 0, null pointers) leaves it exactly as it
// was: frame index, tracks started, live tracks and their state; a good frame afterwards
// gives the ids it would have given without the refused one.
static void test_tracker_refuses_a_frame_whole() {
    using rapsam::OnlineTracker;
    const int64_t n = 2, d = 3;
    const std::vector<float> emb = {1, 0, 0, 0, 1, 0};
    const std::vector<int32_t> cls = {1, 2};
    const std::vector<float> score = {0.9f, 0.8f};
    auto snapshot = [](const OnlineTracker& t) {
        std::vector<double> s = {double(t.frame_index()), double(t.tracks_started())};
        for (const auto& k : t.tracks()) {
            s.insert(s.end(), {double(k.track_id), double(k.hits), double(k.missed)});
            s.insert(s.end(), k.embedding.begin(), k.embedding.end());
            for (const auto& [c, v] : k.class_scores) s.insert(s.end(), {double(c), v});
        }
        return s;
    };
    OnlineTracker t, ref;
    for (int i = 0; i < 2; ++i) {
        t.update(emb.data(), n, d, cls.data(), score.data());
        ref.update(emb.data(), n, d, cls.data(), score.data());
    }
    const auto before = snapshot(t);
    const float nan = std::nanf(""), inf = INFINITY;
    for (float bad : {nan, inf, -inf}) {
        auto e = emb;
        e[4] = bad;
        CHECK(throws_invalid([&] { t.update(e.data(), n, d, cls.data(), score.data()); }));
    }
    for (float bad : {nan, inf, -0.1f, 1.5f}) {
        auto s = score;
        s[1] = bad;
        CHECK(throws_invalid([&] { t.update(emb.data(), n, d, cls.data(), s.data()); }));
    }
    const std::vector<int32_t> negative = {1, -1};
    CHECK(throws_invalid([&] { t.update(emb.data(), n, d, negative.data(), score.data()); }));
    CHECK(throws_invalid([&] { t.update(emb.data(), 3, 2, cls.data(), score.data()); }));
    CHECK(throws_invalid([&] { t.update(emb.data(), -1, d, cls.data(), score.data()); }));
    CHECK(throws_invalid([&] { t.update(emb.data(), n, 0, cls.data(), score.data()); }));
    CHECK(throws_invalid([&] { t.update(nullptr, n, d, cls.data(), score.data()); }));
    CHECK(snapshot(t) == before);
    const auto got = t.update(emb.data(), n, d, cls.data(), score.data());
    CHECK(got == ref.update(emb.data(), n, d, cls.data(), score.data()));
    CHECK(snapshot(t) == snapshot(ref));
}

int main() {
    test_sample_grid();
    test_letterbox();
    test_panoptic_basic();
    test_panoptic_stuff_merge_and_overlap();
    test_prompt_masks();
    test_boxes();
    test_rle();
    test_assignment();
    test_overlay();
    test_thread_settings();
    test_pool_repeated_calls();
    test_pool_errors_and_nesting();
    test_pool_results_and_concurrent_callers();
    test_golden_twin_outputs();
    test_tracker_config();
    test_tracker_refuses_a_frame_whole();
    std::printf("%d checks, %d failures\n", g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}
