// Plain C++ unit tests of rapsam_core (no framework; nonzero exit on failure).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "assignment.hpp"
#include "overlay.hpp"
#include "postprocess.hpp"
#include "rle.hpp"

static int g_failures = 0, g_checks = 0;
#define CHECK(cond)                                                          \
    do {                                                                     \
        ++g_checks;                                                          \
        if (!(cond)) {                                                       \
            ++g_failures;                                                    \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                    \
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
    CHECK(throws_invalid([&] { rapsam::panoptic_fuse(cls, n, c1, bad, h, w, is_thing, p, lm.data()); }));
    p.valid_w = 5;
    CHECK(throws_invalid([&] { rapsam::panoptic_fuse(cls, n, c1, masks, h, w, is_thing, p, lm.data()); }));
    p.valid_w = 4;
    p.out_w = 0;
    CHECK(throws_invalid([&] { rapsam::panoptic_fuse(cls, n, c1, masks, h, w, is_thing, p, lm.data()); }));
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
    CHECK(throws_invalid([&] {
        rapsam::prompt_masks(logits, 2, 1, 2, 1, 2, 1, 4, 0.0, -1.0, masks.data(), stab);
    }));
    CHECK(throws_invalid([&] {
        rapsam::prompt_masks(logits, 2, 1, 2, 1, 2, 1, 4, NAN, 1.0, masks.data(), stab);
    }));
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
    std::printf("%d checks, %d failures\n", g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}
