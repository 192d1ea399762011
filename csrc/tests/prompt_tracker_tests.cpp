// Plain C++ tests of the C++ runtime's PromptTracker API on the shipped default bundle
// (RAPSAM_BUNDLE) and synthetic frames: typed errors (std::invalid_argument naming the id,
// the setting or the frame size), refine / remove / reset, the state machine, ids never
// reused. Parity with Python is tests/test_cpp_prompt_tracker.py. Nonzero exit on failure.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "prompt_tracker.hpp"

static int g_failures = 0, g_checks = 0;
#define CHECK(cond)                                                                       \
    do {                                                                                  \
        ++g_checks;                                                                       \
        if (!(cond)) {                                                                    \
            ++g_failures;                                                                 \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                                 \
    } while (0)

// f() throws std::invalid_argument whose message holds `part`
template <class F>
static bool refuses(F&& f, const std::string& part) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        if (std::string(e.what()).find(part) != std::string::npos) return true;
        std::fprintf(stderr, "  message without '%s': %s\n", part.c_str(), e.what());
        return false;
    }
    std::fprintf(stderr, "  no std::invalid_argument (wanted '%s')\n", part.c_str());
    return false;
}

// H x W RGB: a dark background and a bright square [y0, y0 + s) x [x0, x0 + s)
static std::vector<uint8_t> frame(int h, int w, int x0, int y0, int s) {
    std::vector<uint8_t> f(static_cast<size_t>(h) * w * 3, 40);
    for (int y = y0; y < y0 + s && y < h; ++y)
        for (int x = x0; x < x0 + s && x < w; ++x) {
            uint8_t* p = f.data() + (static_cast<size_t>(y) * w + x) * 3;
            p[0] = 230, p[1] = 200, p[2] = 30;
        }
    return f;
}

static double box_iou(const int32_t* a, const int32_t* b) {
    const double iw = std::max(0, std::min(a[2], b[2]) - std::max(a[0], b[0]));
    const double ih = std::max(0, std::min(a[3], b[3]) - std::max(a[1], b[1]));
    const double area_a = double(a[2] - a[0]) * (a[3] - a[1]);
    const double area_b = double(b[2] - b[0]) * (b[3] - b[1]);
    return iw * ih / (area_a + area_b - iw * ih);
}

static rapsam::TrackPrompts box(double x0, double y0, double x1, double y1) {
    rapsam::TrackPrompts p;
    p.boxes = {x0, y0, x1, y1};
    return p;
}

static void config_errors(rapsam::Segmenter& seg) {
    const auto with = [&](auto set) {
        return [&seg, set] {
            rapsam::PromptTrackerConfig c;
            set(c);
            rapsam::PromptTracker pt(seg, c);
        };
    };
    CHECK(refuses(with([](auto& c) { c.margin = -1; }), "PromptTrackerConfig.margin"));
    CHECK(refuses(with([](auto& c) { c.max_growth = -0.1; }), "max_growth"));
    CHECK(refuses(with([](auto& c) {
                      c.margin = 0.2;
                      c.search_margin = 0.1;
                  }),
                  "search_margin"));
    CHECK(refuses(with([](auto& c) { c.min_score = 1.5; }), "min_score"));
    CHECK(refuses(with([](auto& c) { c.min_similarity = 0.0 / 0.0; }), "min_similarity"));
    CHECK(refuses(with([](auto& c) { c.min_area = 0; }), "min_area"));
    CHECK(refuses(with([](auto& c) { c.max_occluded = 0; }), "max_occluded"));
    CHECK(refuses(with([](auto& c) { c.momentum = 2; }), "momentum"));
    CHECK(refuses(with([&](auto& c) { c.max_objects = seg.max_prompts() + 1; }),
                  "exceeds the Segmenter's max_prompts"));
}

static void input_errors(rapsam::Segmenter& seg) {
    const int h = 240, w = 320;
    const auto f = frame(h, w, 120, 80, 80);
    rapsam::PromptTracker pt(seg);
    CHECK(refuses([&] { pt.add(box(0, 0, 10, 10)); }, "no frame yet"));
    CHECK(refuses([&] { pt.refine(1, {{5, 5}, {}, {}}); }, "no tracked object with id 1"));
    CHECK(refuses([&] { pt.add(f.data(), h, w, {}); }, "needs boxes or points"));
    CHECK(refuses([&] { pt.add(f.data(), h, w, box(400, 10, 500, 20)); }, "boxes must overlap"));
    CHECK(refuses([&] { pt.add(f.data(), h, w, {{5, 5}, {1, 0}, {}}); }, "labels must be 1"));
    CHECK(refuses([&] { pt.add(f.data(), h, w, {{5, 5}, {2}, {}}); }, "labels must be 1 (pos"));
    CHECK(refuses([&] { pt.add(f.data(), h, w, {{5, 5}, {0}, {}}); }, "at least one positive"));
    CHECK(refuses([&] { pt.add(f.data(), h, w, {{}, {1}, {}}); }, "labels given without"));
    CHECK(refuses([&] { pt.add(f.data(), h, w, {{999, 5}, {}, {}}); }, "inside the"));
    CHECK(pt.ids().empty());
    const auto ids = pt.add(f.data(), h, w, box(115, 75, 205, 165));
    CHECK(ids == std::vector<int>{1});
    CHECK(refuses([&] { pt.remove(7); }, "no tracked object with id 7; tracked ids: [1]"));
    CHECK(refuses([&] { pt.state(7); }, "id 7"));
    CHECK(refuses([&] { pt.refine(7, {{160, 120}, {}, {}}); }, "id 7"));
    CHECK(refuses([&] { pt.refine(1, {}); }, "refine() needs points"));
    const auto other = frame(h, 300, 120, 80, 80);
    CHECK(refuses([&] { pt.step(other.data(), h, 300); },
                  "frame of 240 x 300 in a stream of 240 x 320 frames"));
    CHECK(refuses([&] { pt.add(other.data(), h, 300, box(0, 0, 10, 10)); }, "frame of 240 x 300"));
    CHECK(pt.frame_index() == 0 && pt.ids() == ids);  // refused frames change nothing
    rapsam::PromptTrackerConfig two;
    two.max_objects = 2;
    rapsam::PromptTracker small(seg, two);
    CHECK(refuses(
        [&] {
            rapsam::TrackPrompts p;
            p.boxes = {0, 0, 10, 10, 0, 0, 10, 10, 0, 0, 10, 10};
            small.add(f.data(), h, w, p);
        },
        "exceeds max_objects=2"));
    CHECK(small.ids().empty());
}

static void track_refine_remove(rapsam::Segmenter& seg) {
    const int h = 240, w = 320;
    rapsam::PromptTrackerConfig cfg;
    cfg.max_occluded = 2;
    cfg.min_similarity = 0.9;  // a blank frame's best mask (similarity ~0.63 here) fails
    rapsam::PromptTracker pt(seg, cfg);
    const auto f0 = frame(h, w, 120, 80, 80);
    CHECK(pt.add(f0.data(), h, w, box(115, 75, 205, 165)) == std::vector<int>{1});
    const auto f1 = frame(h, w, 128, 84, 80);  // moved by (8, 4)
    const auto r1 = pt.step(f1.data(), h, w);
    CHECK(r1.frame_index == 0 && r1.objects.size() == 1);
    const rapsam::PromptTrack& t = r1.objects.at(0);
    CHECK(t.id == 1 && t.state == "tracked" && t.mask.size() == size_t(h) * w);
    int32_t b[4] = {w, h, 0, 0};  // the mask's own box
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            if (t.mask[size_t(y) * w + x]) {
                b[0] = std::min(b[0], x), b[1] = std::min(b[1], y);
                b[2] = std::max(b[2], x + 1), b[3] = std::max(b[3], y + 1);
            }
    CHECK(b[0] == t.box[0] && b[1] == t.box[1] && b[2] == t.box[2] && b[3] == t.box[3]);
    // blank frames: occluded, then lost after max_occluded, the last box kept, empty masks
    const std::vector<uint8_t> blank(size_t(h) * w * 3, 0);
    std::vector<std::string> states;
    for (int i = 0; i < 3; ++i) {
        const auto r = pt.step(blank.data(), h, w);
        const rapsam::PromptTrack& o = r.objects.at(0);
        states.push_back(o.state);
        bool empty = true;
        for (uint8_t m : o.mask) empty = empty && m == 0;
        CHECK(empty && o.box[0] == t.box[0] && o.box[3] == t.box[3]);
    }
    CHECK((states == std::vector<std::string>{"occluded", "lost", "lost"}));
    CHECK(pt.state(1) == "lost");
    // found again under its own id on the square's frame; refine with a click on it
    const auto back = pt.step(f1.data(), h, w).objects.at(0);
    CHECK(back.state == "tracked" && box_iou(back.box, t.box) >= 0.8);
    const auto fixed = pt.refine(1, {{168, 124}, {1}, {}});
    CHECK(fixed.id == 1 && fixed.state == "tracked" && fixed.similarity == 1.0f);
    CHECK(pt.state(1) == "tracked");
    pt.remove(1);
    CHECK(pt.ids().empty());
    CHECK(refuses([&] { pt.remove(1); }, "id 1"));
    CHECK(pt.add(box(115, 75, 205, 165)) == std::vector<int>{2});  // ids are never reused
    pt.reset();
    CHECK(pt.ids().empty() && pt.frame_index() == 0);
    CHECK(refuses([&] { pt.add(box(0, 0, 10, 10)); }, "no frame yet"));
    CHECK(pt.add(f0.data(), h, w, box(115, 75, 205, 165)) == std::vector<int>{1});
}

// more candidates than max_prompts: the decoder calls are split (Python's _decode)
static void split_decoder_calls(const rapsam::Bundle& bundle) {
    rapsam::SegmenterOptions options;
    options.static_copies = false;
    options.max_prompts = 2;
    rapsam::Segmenter seg(bundle, options);
    const int h = 240, w = 320;
    rapsam::PromptTrackerConfig cfg;
    cfg.min_similarity = 0.9;
    rapsam::PromptTracker pt(seg, cfg);
    const auto f0 = frame(h, w, 120, 80, 80);
    rapsam::TrackPrompts two;
    two.boxes = {115, 75, 205, 165, 0, 0, 320, 240};
    CHECK(pt.add(f0.data(), h, w, two) == (std::vector<int>{1, 2}));
    const std::vector<uint8_t> blank(size_t(h) * w * 3, 0);
    // the square occluded: >= 2 candidates for it and >= 1 for the other, calls of two
    CHECK(pt.step(blank.data(), h, w).objects.at(0).state == "occluded");
    const auto r = pt.step(f0.data(), h, w);
    CHECK(r.objects.size() == 2 && r.objects[0].id == 1 && r.objects[1].id == 2);
    CHECK(r.objects[0].state == "tracked");
    CHECK(r.objects[0].mask.size() == size_t(h) * w && r.objects[1].mask.size() == size_t(h) * w);
}

// prompt() pads the prompt count to a multiple of kPromptCountBucket (at most max_prompts):
// the caller gets exactly its n rows, equal to an unpadded call (a Segmenter whose
// max_prompts is n pads nothing); prompts do not interact in the decoder
static void padded_equals_unpadded(const rapsam::Bundle& bundle, rapsam::Segmenter& seg) {
    const int h = 240, w = 320;
    const auto f0 = frame(h, w, 120, 80, 80);
    const auto emb = seg.set_image(f0.data(), h, w);
    std::vector<float> boxes;
    for (int n = 1; n <= 9; ++n) {
        const float k = float(n);
        for (float v : {115 - 9 * k, 75 - 6 * k, 205 + 5 * k, 165 + 4 * k}) boxes.push_back(v);
        rapsam::SegmenterOptions options;
        options.static_copies = false;
        options.max_prompts = n;
        rapsam::Segmenter ref(bundle, options);
        const auto got = seg.prompt(emb, {}, boxes);
        const auto want = ref.prompt(ref.set_image(f0.data(), h, w), {}, boxes);
        CHECK(got.count == n && got.iou.size() == size_t(n) && got.stability.size() == size_t(n));
        CHECK(got.masks.size() == size_t(n) * h * w && got.masks == want.masks);
        for (int i = 0; i < n; ++i) {
            CHECK(std::abs(got.iou[i] - want.iou[i]) <= 1e-5f);
            CHECK(std::abs(got.stability[i] - want.stability[i]) <= 1e-5f);
        }
    }
}

int main() {
    const char* dir = std::getenv("RAPSAM_BUNDLE");
    if (dir == nullptr) {
        std::fprintf(stderr, "RAPSAM_BUNDLE (a shipped bundle folder) is not set\n");
        return 2;
    }
    rapsam::SegmenterOptions options;
    options.static_copies = false;
    const rapsam::Bundle bundle = rapsam::load_bundle(dir);
    rapsam::Segmenter seg(bundle, options);
    config_errors(seg);
    input_errors(seg);
    track_refine_remove(seg);
    split_decoder_calls(bundle);
    padded_equals_unpadded(bundle, seg);
    std::printf("%d checks, %d failures\n", g_checks, g_failures);
    return g_failures ? 1 : 0;
}
