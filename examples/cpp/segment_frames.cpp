// segment_frames BUNDLE FRAMES_DIR [--dump OUT_DIR | --loops N]
//
// No Python in the process: loads and verifies a bundle, then for every binary PPM (P6)
// frame in FRAMES_DIR (sorted by name; e.g. `ffmpeg -i clip.mp4 frames/%05d.ppm`) runs
// panoptic segmentation with tracking and a click at the frame centre, and prints one line
// per frame: the number of segments, their class names, the track ids and the click's mask
// area. With --dump, writes
// per frame NAME.panoptic (int32 H x W) and NAME.prompt (uint8 H x W) raw files (the parity
// test compares them with the Python Segmenter). With --loops N, tracks the frames N times
// over and prints the resident memory after the first and the last loop (a soak).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "segmenter.hpp"

namespace fs = std::filesystem;

static bool read_ppm(const fs::path& path, std::vector<uint8_t>& rgb, int& h, int& w) {
    std::ifstream in(path, std::ios::binary);
    std::string magic;
    int maxval = 0;
    in >> magic >> w >> h >> maxval;
    in.get();  // one whitespace byte before the pixels
    if (!in || magic != "P6" || maxval != 255 || w < 1 || h < 1) return false;
    rgb.resize(static_cast<size_t>(w) * h * 3);
    in.read(reinterpret_cast<char*>(rgb.data()), static_cast<std::streamsize>(rgb.size()));
    return static_cast<size_t>(in.gcount()) == rgb.size();
}

static long resident_kb() {  // Linux: resident set size from /proc/self/statm
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * 4;  // 4 kB pages
}

int main(int argc, char** argv) {
    const bool dump = argc == 5 && std::string(argv[3]) == "--dump";
    const bool loops = argc == 5 && std::string(argv[3]) == "--loops";
    if (argc != 3 && !dump && !loops) {
        std::cerr << "usage: segment_frames BUNDLE FRAMES_DIR [--dump OUT_DIR | --loops N]\n";
        return 2;
    }
    try {
        const rapsam::Bundle bundle = rapsam::load_bundle(argv[1]);
        rapsam::SegmenterOptions options;
        options.color_order = "RGB";  // PPM pixels are RGB
        rapsam::Segmenter seg(bundle, options);
        rapsam::OnlineTracker tracker;  // one per video
        const auto names = seg.class_names();
        std::vector<fs::path> frames;
        for (const auto& entry : fs::directory_iterator(argv[2]))
            if (entry.path().extension() == ".ppm") frames.push_back(entry.path());
        std::sort(frames.begin(), frames.end());
        if (frames.empty()) {
            std::cerr << "no .ppm frames in " << argv[2] << "\n";
            return 2;
        }
        if (loops) {  // soak: the frames over and over; resident memory at the start and end
            const int n = std::stoi(argv[4]);
            std::vector<std::vector<uint8_t>> decoded(frames.size());
            int h = 0, w = 0;
            for (size_t i = 0; i < frames.size(); ++i)
                if (!read_ppm(frames[i], decoded[i], h, w)) return 2;
            long first = 0;
            for (int l = 0; l < n; ++l) {
                for (const auto& rgb : decoded) seg.track(rgb.data(), h, w, tracker);
                if (l == 0 || l == n - 1) {
                    const long rss = resident_kb();
                    if (l == 0) first = rss;
                    std::printf("loop %d: %ld kB resident, %d tracks started, %zu live\n", l + 1,
                                rss, tracker.tracks_started(), tracker.tracks().size());
                }
            }
            std::printf("growth after the first loop: %.2f %%\n",
                        100.0 * double(resident_kb() - first) / double(first));
            return 0;
        }
        for (size_t i = 0; i < frames.size(); ++i) {
            std::vector<uint8_t> rgb;
            int h = 0, w = 0;
            if (!read_ppm(frames[i], rgb, h, w)) {
                std::cerr << frames[i] << ": not a binary PPM (P6, maxval 255)\n";
                return 2;
            }
            const auto tracked = seg.track(rgb.data(), h, w, tracker);
            const auto& pan = tracked.panoptic;
            const auto emb = seg.set_image(rgb.data(), h, w);
            const auto click = seg.prompt(emb, {float(w) / 2, float(h) / 2}, {});
            size_t area = 0;
            for (uint8_t m : click.masks) area += m;
            std::printf("frame %zu: %zu segments [", i, pan.segments.size());
            for (size_t k = 0; k < pan.segments.size(); ++k)
                std::printf("%s%s", k ? " " : "", names.at(pan.segments[k].cls).c_str());
            std::printf("], tracks [");
            for (size_t k = 0; k < tracked.track_ids.size(); ++k)
                std::printf("%s%d", k ? " " : "", tracked.track_ids[k]);
            std::printf("], click mask %zu px (iou %.3f)\n", area, click.iou.at(0));
            if (dump) {
                const fs::path out = fs::path(argv[4]) / frames[i].stem();
                std::ofstream(out.string() + ".panoptic", std::ios::binary)
                    .write(reinterpret_cast<const char*>(pan.panoptic_map.data()),
                           static_cast<std::streamsize>(pan.panoptic_map.size() * 4));
                std::ofstream(out.string() + ".prompt", std::ios::binary)
                    .write(reinterpret_cast<const char*>(click.masks.data()),
                           static_cast<std::streamsize>(click.masks.size()));
            }
        }
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
