// segment_frames BUNDLE SOURCE [--overlays DIR] [--dump DIR] [--loops N | --bench N]
//                [--threads T] [--input-size S] [--backend NAME] [--static-shapes auto|off]
//
// A robot-node-style program with no Python in the process: loads and verifies a bundle, then
// for every frame of SOURCE runs panoptic segmentation with online tracking and a click at
// the frame centre, and prints one line per frame: the number of segments, their class names,
// the track ids and the click's mask area.
//
// SOURCE is a video file or a folder of images (sorted by name). Built with OpenCV (found at
// configure time) it reads any video OpenCV's videoio reads and any image imgcodecs reads;
// without OpenCV, a folder of binary PPM (P6) frames (e.g. `ffmpeg -i clip.mp4 f/%05d.ppm`).
//
//   --overlays DIR  writes DIR/NAME.png (PPM without OpenCV): track colours (thing segments),
//                   panoptic colours elsewhere, blended over the frame with boundaries
//   --dump DIR      writes per frame NAME.ppm (the decoded RGB frame), NAME.panoptic (int32
//                   H x W) and NAME.prompt (uint8 H x W), raw (the parity test reads them)
//   --loops N       tracks the frames N times over and prints the resident memory after the
//                   first and the last loop (a soak); nothing else is printed
//   --bench N       times N panoptic calls on the first frame (after N / 10 + 1 warm-ups) and
//                   prints their p50 / p90 in ms; nothing else is printed
//   --threads T     inference threads (default: the backend's)
//   --input-size S  network long side (default: the bundle's)
//   --backend NAME  one of rapsam::backend_names() (default: auto)
//   --static-shapes auto|off  auto (default): static copies of repeated input shapes,
//                   compiled in the background; off: the dynamic-shape model only
// Frames are decoded one at a time as they are processed (only --loops keeps them all).
// Exit status: 0 done, 1 a runtime error (message on stderr), 2 bad usage or an unreadable SOURCE.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "overlay.hpp"
#include "segmenter.hpp"

#ifdef RAPSAM_EXAMPLE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#endif

namespace fs = std::filesystem;

namespace {

struct Frame {
    std::string name;
    std::vector<uint8_t> rgb;  // h x w x 3
    int h = 0, w = 0;
};

bool read_ppm(const fs::path& path, Frame& f) {
    std::ifstream in(path, std::ios::binary);
    std::string magic;
    int maxval = 0;
    in >> magic >> f.w >> f.h >> maxval;
    in.get();  // one whitespace byte before the pixels
    if (!in || magic != "P6" || maxval != 255 || f.w < 1 || f.h < 1) return false;
    f.rgb.resize(static_cast<size_t>(f.w) * f.h * 3);
    in.read(reinterpret_cast<char*>(f.rgb.data()), static_cast<std::streamsize>(f.rgb.size()));
    return static_cast<size_t>(in.gcount()) == f.rgb.size();
}

void write_ppm(const fs::path& path, const uint8_t* rgb, int h, int w) {
    std::ofstream out(path, std::ios::binary);
    out << "P6\n" << w << " " << h << "\n255\n";
    out.write(reinterpret_cast<const char*>(rgb), static_cast<std::streamsize>(size_t(h) * w * 3));
}

#ifdef RAPSAM_EXAMPLE_OPENCV
bool from_mat(const cv::Mat& bgr, Frame& f) {
    if (bgr.empty() || bgr.depth() != CV_8U) return false;
    cv::Mat rgb;
    if (bgr.channels() == 1) cv::cvtColor(bgr, rgb, cv::COLOR_GRAY2RGB);
    else if (bgr.channels() == 4) cv::cvtColor(bgr, rgb, cv::COLOR_BGRA2RGB);
    else cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    f.h = rgb.rows;
    f.w = rgb.cols;
    f.rgb.assign(rgb.data, rgb.data + rgb.total() * 3);
    return true;
}
#endif

// SOURCE cannot be read (exit status 2).
struct SourceError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Decodes the frames of SOURCE (a folder of images or, with OpenCV, a video file) one at a
// time and hands each to `visit`, which returns false to stop: one frame in memory, however
// long the video. Throws SourceError.
void for_each_frame(const fs::path& source, const std::function<bool(Frame&)>& visit) {
    if (fs::is_directory(source)) {
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(source)) {
            std::string ext = e.path().extension().string();
            std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
#ifdef RAPSAM_EXAMPLE_OPENCV
            const bool image = ext == ".ppm" || ext == ".png" || ext == ".jpg" || ext == ".jpeg" ||
                               ext == ".bmp" || ext == ".tif" || ext == ".tiff" || ext == ".webp";
#else
            const bool image = ext == ".ppm";
#endif
            if (e.is_regular_file() && image) files.push_back(e.path());
        }
        std::sort(files.begin(), files.end());
        for (const auto& p : files) {
            Frame f;
            f.name = p.stem().string();
#ifdef RAPSAM_EXAMPLE_OPENCV
            const bool ok = from_mat(cv::imread(p.string(), cv::IMREAD_COLOR), f);
#else
            const bool ok = read_ppm(p, f);
#endif
            if (!ok) throw SourceError(p.string() + ": not a readable 8-bit image");
            if (!visit(f)) return;
        }
        return;
    }
#ifdef RAPSAM_EXAMPLE_OPENCV
    cv::VideoCapture cap(source.string());
    if (!cap.isOpened()) throw SourceError(source.string() + ": not a readable video");
    cv::Mat bgr;
    for (size_t index = 0; cap.read(bgr); ++index) {
        Frame f;
        char name[24];
        std::snprintf(name, sizeof name, "%05zu", index);
        f.name = name;
        if (!from_mat(bgr, f) || !visit(f)) return;
    }
#else
    throw SourceError(source.string() +
                                ": not a folder (this build reads PPM folders; video needs OpenCV)");
#endif
}

void write_overlay(const fs::path& dir, const Frame& f, const rapsam::TrackResult& t) {
    // thing segments in their track's colour, the rest in their segment's (ids offset apart),
    // void pixels left as they are
    std::vector<int32_t> labels(t.track_map.size());
    for (size_t i = 0; i < labels.size(); ++i) {
        const int32_t segment = t.panoptic.panoptic_map[i];
        labels[i] = segment == 0 ? 0 : (t.track_map[i] > 0 ? t.track_map[i] : segment + 100000);
    }
    std::vector<uint8_t> out(f.rgb.size());
    rapsam::overlay(f.rgb.data(), labels.data(), f.h, f.w, 0.5, true, out.data());
#ifdef RAPSAM_EXAMPLE_OPENCV
    cv::Mat rgb(f.h, f.w, CV_8UC3, out.data()), bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    cv::imwrite((dir / (f.name + ".png")).string(), bgr);
#else
    write_ppm(dir / (f.name + ".ppm"), out.data(), f.h, f.w);
#endif
}

long resident_kb() {  // Linux: resident set size from /proc/self/statm
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * 4;  // 4 kB pages
}

int usage() {
    std::cerr << "usage: segment_frames BUNDLE SOURCE [--overlays DIR] [--dump DIR] "
                 "[--loops N | --bench N] [--threads T] [--input-size S] [--backend NAME] "
                 "[--static-shapes auto|off]\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) return usage();
    std::map<std::string, std::string> opts;
    for (int i = 3; i < argc; i += 2) {
        const std::string key = argv[i];
        if (i + 1 >= argc ||
            (key != "--overlays" && key != "--dump" && key != "--loops" && key != "--bench" &&
             key != "--threads" && key != "--input-size" && key != "--backend" &&
             key != "--static-shapes"))
            return usage();
        opts[key] = argv[i + 1];
    }
    try {
        const rapsam::Bundle bundle = rapsam::load_bundle(argv[1]);
        rapsam::SegmenterOptions options;
        options.color_order = "RGB";
        if (opts.count("--backend")) options.backend = opts["--backend"];
        if (opts.count("--threads")) options.threads = std::stoi(opts["--threads"]);
        if (opts.count("--input-size")) options.input_size = std::stoi(opts["--input-size"]);
        if (opts.count("--static-shapes")) {
            const std::string v = opts["--static-shapes"];
            if (v != "auto" && v != "off") return usage();
            options.static_copies = v == "auto";
        }
        rapsam::Segmenter seg(bundle, options);
        const fs::path source = argv[2];
        const auto no_frames = [&] {
            std::cerr << "no frames in " << argv[2] << "\n";
            return 2;
        };
        if (opts.count("--bench")) {  // panoptic latency on the first frame
            const int n = std::stoi(opts["--bench"]);
            if (n < 1) return usage();
            Frame f;
            for_each_frame(source, [&](Frame& first) {
                f = std::move(first);
                return false;
            });
            if (f.rgb.empty()) return no_frames();
            for (int i = 0; i < n / 10 + 1; ++i) seg.panoptic(f.rgb.data(), f.h, f.w);
            std::vector<double> ms;
            for (int i = 0; i < n; ++i) {
                const auto t0 = std::chrono::steady_clock::now();
                seg.panoptic(f.rgb.data(), f.h, f.w);
                ms.push_back(std::chrono::duration<double, std::milli>(
                                 std::chrono::steady_clock::now() - t0).count());
            }
            std::sort(ms.begin(), ms.end());
            std::printf("panoptic %dx%d: p50 %.3f ms, p90 %.3f ms over %d calls\n", f.w, f.h,
                        ms[ms.size() / 2], ms[ms.size() * 9 / 10], n);
            return 0;
        }
        rapsam::OnlineTracker tracker;  // one per video
        if (opts.count("--loops")) {  // soak: the frames over and over
            const int n = std::stoi(opts["--loops"]);
            std::vector<Frame> frames;  // decoded once, tracked n times
            for_each_frame(source, [&](Frame& f) {
                frames.push_back(std::move(f));
                return true;
            });
            if (frames.empty()) return no_frames();
            long first = 0;
            for (int l = 0; l < n; ++l) {
                for (const Frame& f : frames) seg.track(f.rgb.data(), f.h, f.w, tracker);
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
        const auto names = seg.class_names();
        for (const auto& key : {"--overlays", "--dump"})
            if (opts.count(key)) fs::create_directories(opts[key]);
        size_t i = 0;
        for_each_frame(source, [&](const Frame& f) {
            const auto tracked = seg.track(f.rgb.data(), f.h, f.w, tracker);
            const auto& pan = tracked.panoptic;
            const auto emb = seg.set_image(f.rgb.data(), f.h, f.w);
            const auto click = seg.prompt(emb, {float(f.w) / 2, float(f.h) / 2}, {});
            size_t area = 0;
            for (uint8_t m : click.masks) area += m;
            std::printf("frame %zu: %zu segments [", i, pan.segments.size());
            for (size_t k = 0; k < pan.segments.size(); ++k)
                std::printf("%s%s", k ? " " : "", names.at(pan.segments[k].cls).c_str());
            std::printf("], tracks [");
            for (size_t k = 0; k < tracked.track_ids.size(); ++k)
                std::printf("%s%d", k ? " " : "", tracked.track_ids[k]);
            std::printf("], click mask %zu px (iou %.3f)\n", area, click.iou.at(0));
            if (opts.count("--overlays")) write_overlay(opts["--overlays"], f, tracked);
            if (opts.count("--dump")) {
                const fs::path out = fs::path(opts["--dump"]) / f.name;
                write_ppm(out.string() + ".ppm", f.rgb.data(), f.h, f.w);
                std::ofstream(out.string() + ".panoptic", std::ios::binary)
                    .write(reinterpret_cast<const char*>(pan.panoptic_map.data()),
                           static_cast<std::streamsize>(pan.panoptic_map.size() * 4));
                std::ofstream(out.string() + ".prompt", std::ios::binary)
                    .write(reinterpret_cast<const char*>(click.masks.data()),
                           static_cast<std::streamsize>(click.masks.size()));
            }
            ++i;
            return true;
        });
        if (i == 0) return no_frames();
    } catch (const SourceError& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
