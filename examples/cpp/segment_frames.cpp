// segment_frames BUNDLE SOURCE [--overlays DIR] [--dump DIR] [--loops N | --bench N]
//                [--track-box X0,Y0,X1,Y1[:...]] [--track-click X,Y,L[:...]]
//                [--threads T] [--input-size S] [--backend NAME] [--static-shapes auto|off]
//                [--open-timeout S] [--read-timeout S] [--max-frames N]
//
// A robot-node-style program with no Python in the process: loads and verifies a bundle, then
// for every frame of SOURCE runs panoptic segmentation with online tracking and a click at
// the frame centre, and prints one line per frame: the number of segments, their class names,
// the track ids and the click's mask area.
//
// SOURCE is a video file or a folder of images (sorted by name). Built with OpenCV (found at
// configure time) it reads any video OpenCV's videoio reads and any image imgcodecs reads,
// and network cameras: rtsp:// rtsps:// http:// https:// URLs and GStreamer pipelines ending
// in "! appsink", read with timeouts and reconnected when they drop (video_input.hpp, the
// same rules and defaults as the Python runtime); without OpenCV, a folder of binary PPM (P6)
// frames (e.g. `ffmpeg -i clip.mp4 f/%05d.ppm`).
//
//   --overlays DIR  writes DIR/NAME.png (PPM without OpenCV): track colours (thing segments),
//                   panoptic colours elsewhere, blended over the frame with boundaries
//   --dump DIR      writes per frame NAME.ppm (the decoded RGB frame), NAME.panoptic (int32
//                   H x W) and NAME.prompt (uint8 H x W), raw (the parity test reads them)
//   --track-box X0,Y0,X1,Y1[:X0,Y0,X1,Y1...]  click-to-track instead (rapsam::PromptTracker):
//                   one object per box (frame pixels), added on the first frame; every later
//                   frame is stepped and printed, one line per object, as
//                   "frame I: id ID STATE score S sim M box X0 Y0 X1 Y1"; with --dump,
//                   NAME.ppm and NAME.track (uint8 N x H x W, the objects' masks) per frame
//   --track-click X,Y,L[:X,Y,L...]  the same with one object made from clicks (label L: 1
//                   positive, 0 negative), added before the boxes' objects
//   --loops N       tracks the frames N times over and prints the resident memory after the
//                   first and the last loop (a soak); nothing else is printed
//   --bench N       times N panoptic calls on the first frame (after N / 10 + 1 warm-ups) and
//                   prints their p50 / p90 in ms; nothing else is printed
//   --threads T     inference threads (default: the backend's)
//   --input-size S  network long side (default: the bundle's)
//   --backend NAME  one of rapsam::backend_names() (default: auto)
//   --static-shapes auto|off  auto (default): static copies of repeated input shapes,
//                   compiled in the background; off: the dynamic-shape model only
//   --open-timeout S  URLs: seconds to open (and per reconnect attempt); default 5
//   --read-timeout S  URLs: seconds to wait for each frame; default 5 (both in (0, 3600])
//   --max-frames N  stops after N frames (a camera or stream never ends by itself)
// Frames are decoded one at a time as they are processed (only --loops keeps them all).
// Image files are read only if they are regular files (a named pipe, device or folder with an
// image's name is refused, never waited on), and never decoded past kMaxFramePixels
// (rapsam::kMaxFramePixels, as the Segmenter): PPM headers are checked (magic P6, maxval 255,
// sizes against the limit and the file's size) before any pixel memory is allocated; other
// formats go through OpenCV with OPENCV_IO_MAX_IMAGE_PIXELS at that limit (OpenCV reads it
// once at load, so the program re-executes itself once with it set). Videos (which may be
// pipes or devices) are left to OpenCV's videoio.
// Exit status: 0 done, 1 a runtime error, 2 bad usage or an unreadable SOURCE; every error is
// one line on stderr.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "overlay.hpp"
#include "prompt_tracker.hpp"
#include "segmenter.hpp"

#ifdef RAPSAM_EXAMPLE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "video_input.hpp"
#endif

namespace fs = std::filesystem;

namespace {

struct Frame {
    std::string name;
    std::vector<uint8_t> rgb;  // h x w x 3
    int h = 0, w = 0;
};

// SOURCE cannot be read (exit status 2).
struct SourceError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// An image file opened for reading only if it is a regular file: opened non-blocking, so a
// named pipe or a device is refused by fstat before any read, never waited on.
class RegularFile {
public:
    explicit RegularFile(const fs::path& path) : path_(path.string()) {
        fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd_ < 0) throw SourceError(path_ + ": cannot open (" + std::strerror(errno) + ")");
        struct stat st{};
        if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(fd_);
            throw SourceError(path_ +
                              ": not a regular file (a named pipe, device or folder is not an "
                              "image)");
        }
        size_ = static_cast<uint64_t>(st.st_size);
    }
    ~RegularFile() { ::close(fd_); }
    RegularFile(const RegularFile&) = delete;
    RegularFile& operator=(const RegularFile&) = delete;

    uint64_t size() const { return size_; }
    // Reads up to n bytes (fewer only at the end of the file).
    size_t read(uint8_t* out, size_t n) {
        size_t got = 0;
        while (got < n) {
            const ssize_t r = ::read(fd_, out + got, n - got);
            if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (r < 0) throw SourceError(path_ + ": read failed (" + std::strerror(errno) + ")");
            if (r == 0) break;
            got += static_cast<size_t>(r);
        }
        return got;
    }

private:
    std::string path_;
    int fd_ = -1;
    uint64_t size_ = 0;
};

constexpr size_t kMaxPpmHeader = 4096;  // magic, sizes, maxval and any comments

// Binary PPM (P6, maxval 255): the header is parsed and checked (sizes positive, at most
// rapsam::kMaxFramePixels, pixels not more than the file holds; overflow-safe) before the
// pixel buffer is allocated. Throws SourceError naming the field.
void read_ppm(const fs::path& path, Frame& f) {
    RegularFile file(path);
    const std::string where = path.string() + ": PPM ";
    std::vector<uint8_t> head(static_cast<size_t>(std::min<uint64_t>(file.size(), kMaxPpmHeader)));
    head.resize(file.read(head.data(), head.size()));
    size_t pos = 0;
    const auto skip_space = [&] {  // whitespace and '#' comments up to the end of their line
        while (pos < head.size()) {
            if (head[pos] == '#') {
                while (pos < head.size() && head[pos] != '\n' && head[pos] != '\r') ++pos;
            } else if (std::isspace(head[pos])) {
                ++pos;
            } else {
                break;
            }
        }
    };
    const auto number = [&](const char* field) -> uint64_t {
        skip_space();
        const size_t start = pos;
        uint64_t v = 0;
        while (pos < head.size() && head[pos] >= '0' && head[pos] <= '9') {
            if (pos - start >= 12)  // more digits than any accepted size
                throw SourceError(where + field + " is too large");
            v = v * 10 + (head[pos++] - '0');
        }
        if (pos == start || (pos < head.size() && !std::isspace(head[pos])))
            throw SourceError(where + field + " is not a decimal number" +
                              (pos >= kMaxPpmHeader ? " (header too long)" : ""));
        return v;
    };
    if (head.size() < 2 || head[0] != 'P' || head[1] != '6')
        throw SourceError(where + "magic: not a binary PPM (P6)");
    pos = 2;
    const uint64_t w = number("width"), h = number("height"), maxval = number("maxval");
    if (pos >= head.size()) throw SourceError(where + "header: no pixel data after maxval");
    ++pos;  // one whitespace byte before the pixels
    if (w < 1 || h < 1) throw SourceError(where + "width and height must be >= 1");
    if (maxval != 255)
        throw SourceError(where + "maxval " + std::to_string(maxval) +
                          ": only 8-bit PPM (maxval 255) is read");
    // w, h < 10^12 (12 digits): w * h < 2^80 could overflow, so compare per axis first
    if (w > static_cast<uint64_t>(rapsam::kMaxFramePixels) ||
        h > static_cast<uint64_t>(rapsam::kMaxFramePixels) ||
        w * h > static_cast<uint64_t>(rapsam::kMaxFramePixels))
        throw SourceError(where + "size " + std::to_string(w) + " x " + std::to_string(h) +
                          " is larger than kMaxFramePixels (" +
                          std::to_string(rapsam::kMaxFramePixels) + ")");
    const uint64_t need = w * h * 3, have = file.size() - pos;
    if (need > have)
        throw SourceError(where + "header says " + std::to_string(w) + " x " + std::to_string(h) +
                          " (" + std::to_string(need) + " bytes of pixels), the file holds " +
                          std::to_string(have));
    f.w = static_cast<int>(w);
    f.h = static_cast<int>(h);
    f.rgb.resize(static_cast<size_t>(need));
    const size_t from_head = std::min<size_t>(head.size() - pos, f.rgb.size());
    std::copy(head.begin() + static_cast<std::ptrdiff_t>(pos),
              head.begin() + static_cast<std::ptrdiff_t>(pos + from_head), f.rgb.begin());
    if (file.read(f.rgb.data() + from_head, f.rgb.size() - from_head) != f.rgb.size() - from_head)
        throw SourceError(where + "pixels: the file ended early (changed while read?)");
}

void write_ppm(const fs::path& path, const uint8_t* rgb, int h, int w) {
    std::ofstream out(path, std::ios::binary);
    out << "P6\n" << w << " " << h << "\n255\n";
    out.write(reinterpret_cast<const char*>(rgb), static_cast<std::streamsize>(size_t(h) * w * 3));
}

#ifdef RAPSAM_EXAMPLE_OPENCV
// OpenCV's decoders refuse images over OPENCV_IO_MAX_IMAGE_PIXELS before allocating them, but
// OpenCV reads the variable once, when its library loads: set it (to the Segmenter's limit,
// or lower where the caller set it lower) and re-execute this program once. False: already so.
bool reexec_with_pixel_limit(char** argv) {
    const char* set = std::getenv("OPENCV_IO_MAX_IMAGE_PIXELS");
    if (set != nullptr) {
        char* end = nullptr;
        const unsigned long long v = std::strtoull(set, &end, 10);
        if (end != set && *end == '\0' && v <= static_cast<uint64_t>(rapsam::kMaxFramePixels))
            return false;
    }
    const std::string limit = std::to_string(rapsam::kMaxFramePixels);
    ::setenv("OPENCV_IO_MAX_IMAGE_PIXELS", limit.c_str(), 1);
    ::execv("/proc/self/exe", argv);
    return true;  // execv returned: it failed
}

// Another image format through OpenCV: the file read through RegularFile (so never a pipe),
// at most kMaxImageBytes, then decoded (within OPENCV_IO_MAX_IMAGE_PIXELS).
constexpr uint64_t kMaxImageBytes = 4 * static_cast<uint64_t>(rapsam::kMaxFramePixels);

cv::Mat read_image(const fs::path& path) {
    RegularFile file(path);
    if (file.size() > kMaxImageBytes)
        throw SourceError(path.string() + ": " + std::to_string(file.size()) +
                          " bytes, more than an image of kMaxFramePixels can need (" +
                          std::to_string(kMaxImageBytes) + ")");
    std::vector<uint8_t> bytes(static_cast<size_t>(file.size()));
    bytes.resize(file.read(bytes.data(), bytes.size()));
    try {
        return cv::imdecode(bytes, cv::IMREAD_COLOR);
    } catch (const cv::Exception& e) {  // e.g. over the pixel limit
        throw SourceError(path.string() + ": not decoded (" + e.err + "; at most " +
                          std::to_string(rapsam::kMaxFramePixels) + " pixels are decoded)");
    }
}

video_input::Options g_stream;  // --open-timeout / --read-timeout of URLs and pipelines

bool from_mat(const cv::Mat& bgr, Frame& f) {
    if (bgr.empty() || bgr.depth() != CV_8U) return false;
    cv::Mat rgb;
    if (bgr.channels() == 1)
        cv::cvtColor(bgr, rgb, cv::COLOR_GRAY2RGB);
    else if (bgr.channels() == 4)
        cv::cvtColor(bgr, rgb, cv::COLOR_BGRA2RGB);
    else
        cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    f.h = rgb.rows;
    f.w = rgb.cols;
    f.rgb.assign(rgb.data, rgb.data + rgb.total() * 3);
    return true;
}
#endif

// Decodes the frames of SOURCE (a folder of images or, with OpenCV, a video file) one at a
// time and hands each to `visit`, which returns false to stop: one frame in memory, however
// long the video. Throws SourceError.
size_t g_max_frames = 0;  // --max-frames (0: all)

void for_each_frame(const fs::path& source, const std::function<bool(Frame&)>& visit_one) {
    size_t seen = 0;
    const auto visit = [&](Frame& f) {
        return visit_one(f) && (g_max_frames == 0 || ++seen < g_max_frames);
    };
#ifdef RAPSAM_EXAMPLE_OPENCV
    const video_input::Kind kind = video_input::classify(source.string());  // a URL: checked
    if (kind != video_input::Kind::path) {
        video_input::for_each_stream_frame(source.string(), kind, g_stream,
                                           [&](const cv::Mat& bgr, size_t index) {
                                               Frame f;
                                               char name[24];
                                               std::snprintf(name, sizeof name, "%05zu", index);
                                               f.name = name;
                                               return from_mat(bgr, f) && visit(f);
                                           });
        return;
    }
#endif
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
            if (image) files.push_back(e.path());  // refused below unless a regular file
        }
        std::sort(files.begin(), files.end());
        for (const auto& p : files) {
            Frame f;
            f.name = p.stem().string();
            std::string ext = p.extension().string();
            std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
            if (ext == ".ppm") {
                read_ppm(p, f);
            } else {
#ifdef RAPSAM_EXAMPLE_OPENCV
                if (!from_mat(read_image(p), f))
                    throw SourceError(p.string() + ": not a readable 8-bit image");
#endif
            }
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
                 "[--static-shapes auto|off] [--track-box X0,Y0,X1,Y1[:...]] "
                 "[--track-click X,Y,L[:...]] [--open-timeout S] [--read-timeout S] "
                 "[--max-frames N]\n";
    return 2;
}

// A count or size option: a whole decimal number in [lo, hi], else false (bad usage).
bool parse_int(const std::string& text, int lo, int hi, int& out) {
    if (text.empty() || text.size() > 10) return false;
    long long v = 0;
    size_t i = text[0] == '-' ? 1 : 0;
    if (i == text.size()) return false;
    for (; i < text.size(); ++i) {
        if (text[i] < '0' || text[i] > '9') return false;
        v = v * 10 + (text[i] - '0');
    }
    if (text[0] == '-') v = -v;
    if (v < lo || v > hi) return false;
    out = static_cast<int>(v);
    return true;
}

// A timeout: a finite number of seconds in (0, kMaxTimeout], else false (bad usage).
bool parse_seconds(const std::string& text, double& out) {
    char* stop = nullptr;
    const double v = std::strtod(text.c_str(), &stop);
    if (text.empty() || *stop != '\0' || !std::isfinite(v) || v <= 0 ||
        v > rapsam::contract::video_source::kMaxTimeout)
        return false;
    out = v;
    return true;
}

// "a,b,..[:a,b,..]": groups of k finite numbers separated by ':', appended to `out`; false on
// anything else (bad usage).
bool parse_groups(const std::string& text, size_t k, std::vector<double>& out) {
    std::string part;
    size_t in_group = 0;
    for (size_t i = 0; i <= text.size(); ++i) {
        const char c = i < text.size() ? text[i] : ':';
        if (c != ',' && c != ':') {
            part += c;
            continue;
        }
        char* stop = nullptr;
        const double v = std::strtod(part.c_str(), &stop);
        if (part.empty() || *stop != '\0' || !std::isfinite(v)) return false;
        out.push_back(v);
        part.clear();
        ++in_group;
        if (c == ':') {
            if (in_group != k) return false;
            in_group = 0;
        }
    }
    return true;
}

// --track-box / --track-click: objects added on the first frame, stepped through the others.
size_t track_prompts(rapsam::Segmenter& seg, const fs::path& source,
                     const rapsam::TrackPrompts& prompts, const std::string& dump) {
    rapsam::PromptTracker pt(seg);
    if (!dump.empty()) fs::create_directories(dump);
    size_t i = 0;
    for_each_frame(source, [&](const Frame& f) {
        if (!dump.empty()) write_ppm(fs::path(dump) / (f.name + ".ppm"), f.rgb.data(), f.h, f.w);
        if (i++ == 0) {
            std::printf("frame 0: added ids [");
            const auto ids = pt.add(f.rgb.data(), f.h, f.w, prompts);
            for (size_t k = 0; k < ids.size(); ++k) std::printf("%s%d", k ? " " : "", ids[k]);
            std::printf("]\n");
            return true;
        }
        const auto res = pt.step(f.rgb.data(), f.h, f.w);
        std::ofstream masks;
        if (!dump.empty()) masks.open(fs::path(dump) / (f.name + ".track"), std::ios::binary);
        for (const auto& o : res.objects) {
            std::printf("frame %zu: id %d %s score %.4f sim %.4f box %d %d %d %d\n", i - 1, o.id,
                        o.state.c_str(), o.score, o.similarity, o.box[0], o.box[1], o.box[2],
                        o.box[3]);
            if (masks)
                masks.write(reinterpret_cast<const char*>(o.mask.data()),
                            static_cast<std::streamsize>(o.mask.size()));
        }
        return true;
    });
    return i;
}

// One line on stderr, whatever the message holds (OpenVINO's run over several lines).
int fail(const char* what, int status) {
    std::string line = what;
    std::replace(line.begin(), line.end(), '\n', ' ');
    std::replace(line.begin(), line.end(), '\r', ' ');
    std::cerr << "error: " << line << "\n";
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each frame's line as it is made (live sources)
    if (argc < 3) return usage();
#ifdef RAPSAM_EXAMPLE_OPENCV
    if (reexec_with_pixel_limit(argv))
        return fail("cannot re-execute with OPENCV_IO_MAX_IMAGE_PIXELS set", 1);
#endif
    std::map<std::string, std::string> opts;
    for (int i = 3; i < argc; i += 2) {
        const std::string key = argv[i];
        if (i + 1 >= argc ||
            (key != "--overlays" && key != "--dump" && key != "--loops" && key != "--bench" &&
             key != "--threads" && key != "--input-size" && key != "--backend" &&
             key != "--static-shapes" && key != "--track-box" && key != "--track-click" &&
             key != "--open-timeout" && key != "--read-timeout" && key != "--max-frames"))
            return usage();
        opts[key] = argv[i + 1];
    }
    try {
        const rapsam::Bundle bundle = rapsam::load_bundle(argv[1]);
        rapsam::SegmenterOptions options;
        options.color_order = "RGB";
        if (opts.count("--backend")) options.backend = opts["--backend"];
        if (opts.count("--threads") &&
            !parse_int(opts["--threads"], 0, rapsam::contract::kMaxThreads, options.threads))
            return usage();
        if (opts.count("--input-size") &&
            !parse_int(opts["--input-size"], 1, rapsam::kMaxSide, options.input_size))
            return usage();
        if (opts.count("--static-shapes")) {
            const std::string v = opts["--static-shapes"];
            if (v != "auto" && v != "off") return usage();
            options.static_copies = v == "auto";
        }
#ifdef RAPSAM_EXAMPLE_OPENCV
        for (const auto& [key, seconds] : {std::pair{"--open-timeout", &g_stream.open_timeout},
                                           std::pair{"--read-timeout", &g_stream.read_timeout}})
            if (opts.count(key) && !parse_seconds(opts[key], *seconds)) return usage();
#endif
        int max_frames = 0;
        if (opts.count("--max-frames") && !parse_int(opts["--max-frames"], 1, 1 << 30, max_frames))
            return usage();
        g_max_frames = static_cast<size_t>(max_frames);
        rapsam::Segmenter seg(bundle, options);
        const fs::path source = argv[2];
        const auto no_frames = [&] {
            std::cerr << "no frames in " << argv[2] << "\n";
            return 2;
        };
        if (opts.count("--bench")) {  // panoptic latency on the first frame
            int n = 0;
            if (!parse_int(opts["--bench"], 1, 1000000, n)) return usage();
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
                ms.push_back(
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                        .count());
            }
            std::sort(ms.begin(), ms.end());
            std::printf("panoptic %dx%d: p50 %.3f ms, p90 %.3f ms over %d calls\n", f.w, f.h,
                        ms[ms.size() / 2], ms[ms.size() * 9 / 10], n);
            return 0;
        }
        if (opts.count("--track-box") || opts.count("--track-click")) {  // click-to-track
            rapsam::TrackPrompts prompts;
            std::vector<double> clicks;
            if ((opts.count("--track-box") &&
                 !parse_groups(opts["--track-box"], 4, prompts.boxes)) ||
                (opts.count("--track-click") && !parse_groups(opts["--track-click"], 3, clicks)))
                return usage();
            for (size_t k = 0; k < clicks.size(); k += 3) {
                if (clicks[k + 2] != 0 && clicks[k + 2] != 1) return usage();
                prompts.points.insert(prompts.points.end(), {clicks[k], clicks[k + 1]});
                prompts.labels.push_back(static_cast<int>(clicks[k + 2]));
            }
            const std::string dump = opts.count("--dump") ? opts["--dump"] : "";
            return track_prompts(seg, source, prompts, dump) == 0 ? no_frames() : 0;
        }
        rapsam::OnlineTracker tracker;  // one per video
        if (opts.count("--loops")) {    // soak: the frames over and over
            int n = 0;
            if (!parse_int(opts["--loops"], 1, 1000000, n)) return usage();
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
        return fail(e.what(), 2);
#ifdef RAPSAM_EXAMPLE_OPENCV
    } catch (const video_input::SourceError& e) {
        return fail(e.what(), 2);
#endif
    } catch (const std::exception& e) {
        return fail(e.what(), 1);
    } catch (...) {
        return fail("an unknown exception", 1);
    }
    return 0;
}
