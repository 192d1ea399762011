// The example's network video sources (issue 28), the C++ twin of the Python runtime's
// rapsam_edge/runtime/net_sources.py and capture.py, with the same rules and defaults
// (contract.json's video_source, generated into rapsam_contract.hpp):
//
// - rtsp:// rtsps:// (a live camera) and http:// https:// (a live stream, or a finite video
//   file when its container declares a frame count) are read through OpenCV's FFmpeg back-end
//   with OpenCV's open and read timeouts set (CAP_PROP_OPEN_TIMEOUT_MSEC /
//   CAP_PROP_READ_TIMEOUT_MSEC: FFmpeg's interrupt callback ends a blocked call, so a read
//   never hangs). Schemes match case-insensitively; OpenCV is given the URL with its scheme
//   and host in lower case (normalize_url).
// - A GStreamer pipeline: a text holding " ! " whose last element is appsink, read through
//   OpenCV's GStreamer back-end (refused, saying what to do, where this OpenCV has none). Its
//   stalls are bounded by its own elements (e.g. rtspsrc's timeout properties).
// - A URL is refused before OpenCV sees it when it is longer than kMaxSourceText bytes, holds
//   a character outside RFC 3986 (a space, a control character, a non-ASCII byte), a malformed
//   % escape, no host, a bad host or a port outside 1..65535; another scheme:// is refused
//   naming the accepted ones, file:// deliberately (give the path).
// - A live source whose read fails (dropped, or no frame within the read timeout) is reopened
//   after each delay of kReconnectDelays while the outage lasts at most kReconnectTotal s, then
//   it is lost (SourceError). A finite one ends at its end; before its declared count (less
//   max(2, count / 50)) it is an error.
// - Messages and warnings show a URL masked (mask: user and password, query values and a
//   pipeline's user-id / user-pw / password properties replaced by ***). No shell anywhere.
//   A bad port of digits only (at most 5) is shown with its host; any other "port" hides
//   the whole host part (rtsp://***/x: it is most likely a password whose @host is missing).
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iterator>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "rapsam_contract.hpp"

namespace video_input {

namespace vs = rapsam::contract::video_source;

// SOURCE cannot be read (exit status 2).
struct SourceError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class Kind { path, rtsp, http, pipeline };

struct Options {
    double open_timeout = vs::kOpenTimeout;  // s: opening (also per reconnect attempt)
    double read_timeout = vs::kReadTimeout;  // s: each frame
};

inline bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
inline char lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

// The lower-cased scheme of `text` when it starts with scheme://, else "".
inline std::string scheme_of(const std::string& text) {
    const size_t colon = text.find("://");
    if (colon == std::string::npos || colon == 0 ||
        !std::isalpha(static_cast<unsigned char>(text[0])))
        return "";
    std::string scheme;
    for (size_t i = 0; i < colon; ++i) {
        const char c = text[i];
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.')
            return "";
        scheme += lower(c);
    }
    return scheme;
}

// A pipeline: holds " ! " and its last element is appsink (with or without properties).
inline bool is_pipeline(const std::string& text) {
    if (text.find(" ! ") == std::string::npos) return false;
    size_t i = text.rfind('!') + 1;
    while (i < text.size() && is_space(text[i])) ++i;
    const std::string sink = "appsink";
    return text.compare(i, sink.size(), sink) == 0 &&
           (i + sink.size() == text.size() || is_space(text[i + sink.size()]));
}

// `text` without credentials: user:password@ of every URL, every query value, a pipeline's
// user-id= / user-pw= / user= / password= / passwd= / pass= / pwd= values, each -> ***.
inline std::string mask(const std::string& text) {
    const auto stop = [](char c) {
        return is_space(c) || c == '&' || c == ';' || c == '#' || c == '"';
    };
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (c == '@') {  // userinfo: from the word's "scheme:" (and its slashes) to this '@'
            size_t word = out.size();  // a password may hold '@', '/', '?' or '#' unescaped
            while (word > 0 && out[word - 1] != '"' && out[word - 1] != '\'' &&
                   !is_space(out[word - 1]))
                --word;
            size_t j = out.find(':', word);
            j = j == std::string::npos ? word : j + 1;
            while (j < out.size() && out[j] == '/') ++j;
            out.replace(j, out.size() - j, "***@");
            ++i;
            continue;
        }
        size_t key_end = std::string::npos;  // a key= whose value is hidden
        if (c == '?' || c == '&' || c == ';') {
            size_t k = i + 1;
            while (k < text.size() && text[k] != '=' && !stop(text[k])) ++k;
            if (k < text.size() && text[k] == '=') key_end = k;
        } else if (i == 0 || is_space(text[i - 1])) {
            for (const char* key :
                 {"user-id=", "user-pw=", "user=", "password=", "passwd=", "pass=", "pwd="}) {
                if (text.compare(i, std::strlen(key), key) == 0) {
                    key_end = i + std::strlen(key) - 1;
                    break;
                }
            }
        }
        if (key_end == std::string::npos) {
            out += c;
            ++i;
            continue;
        }
        out.append(text, i, key_end + 1 - i);
        out += "***";
        i = key_end + 1;
        if (i < text.size() && text[i] == '"') {  // a quoted value
            const size_t close = text.find('"', i + 1);
            i = close == std::string::npos ? text.size() : close + 1;
        } else {
            while (i < text.size() && !stop(text[i])) ++i;
        }
    }
    return out;
}

inline std::string accepted() {
    std::string out;
    for (const auto& s : vs::kSchemes)
        out += std::string(out.empty() ? "" : ", ") + s.scheme + "://";
    return out + " URLs, a GStreamer pipeline ending in '! appsink', a video file or a folder";
}

// `text` with control characters written as \xNN (an error is one line).
inline std::string printable(const std::string& text) {
    std::string out;
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u != 0x7f) {
            out += c;
            continue;
        }
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", u);
        out += hex;
    }
    return out;
}

[[noreturn]] inline void refuse(const std::string& shown, const std::string& why) {
    throw SourceError("video source '" + printable(shown) + "' refused: " + why);
}

inline void check_host(const std::string& text, const std::string& host) {
    if (host.empty()) refuse(mask(text), "the URL names no host");
    if (host.front() == '[') {
        in6_addr addr{};
        const std::string inner = host.substr(1, host.find_first_of("%]") - 1);
        if (host.back() != ']' || inet_pton(AF_INET6, inner.c_str(), &addr) != 1)
            refuse(mask(text), "malformed IPv6 host");
        return;
    }
    std::string labels = host.back() == '.' ? host.substr(0, host.size() - 1) : host;
    bool ok = host.size() <= 253 && !labels.empty();
    for (size_t start = 0; ok && start <= labels.size();) {
        size_t end = labels.find('.', start);
        if (end == std::string::npos) end = labels.size();
        const std::string label = labels.substr(start, end - start);
        ok = !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-' &&
             std::all_of(label.begin(), label.end(), [](char ch) {
                 return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-';
             });
        start = end + 1;
    }
    if (!ok) refuse(mask(text), "the URL's host is not a host name or address");
}

// The port text of the URL `text` (after the host's first ':', or "]:" of [v6]); `has` is
// false where it has none.
inline std::string port_of(const std::string& text, bool& has) {
    const size_t start = text.find("://") + 3;
    const size_t end = std::min(text.find_first_of("/?#", start), text.size());
    const std::string netloc = text.substr(start, end - start);
    const size_t at = netloc.rfind('@');
    const std::string hostport = at == std::string::npos ? netloc : netloc.substr(at + 1);
    const size_t close = hostport.rfind(']');
    const size_t colon = hostport.find(':', close == std::string::npos ? 0 : close);
    has = colon != std::string::npos;
    return has ? hostport.substr(colon + 1) : std::string();
}

inline bool port_number(const std::string& port) {  // digits only, at most 5
    return !port.empty() && port.size() <= 5 &&
           std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

// The URL `text` as a refusal shows it: masked; with its whole host part hidden where its
// "port" is not a number of at most 5 digits (a password whose @host is missing), whatever
// fault it is refused for. The twin of net_sources._shown.
inline std::string url_shown(const std::string& text) {
    bool has = false;
    const std::string port = port_of(text, has);
    if (!has || port.empty() || port_number(port)) return mask(text);
    const size_t start = text.find("://") + 3;
    const size_t end = std::min(text.find_first_of("/?#", start), text.size());
    return mask(text.substr(0, start) + "***" + text.substr(end));
}

// The kind of the URL `text` after checking it (the rules above). Throws SourceError.
inline Kind check_url(const std::string& text) {
    const std::string shown = url_shown(text);
    const std::string scheme = scheme_of(text);
    if (scheme == "file") refuse(shown, "file:// URLs are not taken; give the file's path");
    const char* kind = nullptr;
    for (const auto& s : vs::kSchemes)
        if (scheme == s.scheme) kind = s.kind;
    if (kind == nullptr)
        refuse(shown, "the scheme '" + scheme + "' is not taken; give " + accepted());
    static const std::string allowed =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%";
    for (size_t i = 0; i < text.size(); ++i) {
        if (allowed.find(text[i]) == std::string::npos)
            refuse(shown, "the URL holds a character outside RFC 3986 (percent-encode it)");
        if (text[i] == '%' &&
            (i + 2 >= text.size() || !std::isxdigit(static_cast<unsigned char>(text[i + 1])) ||
             !std::isxdigit(static_cast<unsigned char>(text[i + 2]))))
            refuse(shown, "the URL holds a malformed % escape (write % as %25)");
    }
    const size_t start = scheme.size() + 3;
    const size_t end = std::min(text.find_first_of("/?#", start), text.size());
    const std::string netloc = text.substr(start, end - start);
    const size_t at = netloc.rfind('@');
    const std::string hostport = at == std::string::npos ? netloc : netloc.substr(at + 1);
    const size_t close = hostport.rfind(']');
    const std::string host = hostport.substr(0,
                                             hostport.find(':',
                                                           close == std::string::npos ? 0 : close));
    bool has = false;
    const std::string port = port_of(text, has);
    if (has) {
        // A port of digits only (at most 5) is shown with its host: a bad port number. Any
        // other "port" hides the whole host part (url_shown): 'rtsp://admin:secret/x' (a
        // forgotten '@host') parses as host 'admin', port 'secret' - a password.
        const bool digits = port_number(port);
        if (port.empty() || (digits && std::stoi(port) == 0))
            refuse(shown, "the URL's port is empty or 0");
        if (digits && std::stoi(port) > 65535)
            refuse(shown, "the URL's port " + port + " is not in 1..65535");
        if (!digits)
            refuse(shown,
                   "malformed URL (a port that is not a number in 1..65535; host and port "
                   "hidden: such a 'port' is often a password whose '@host' is missing)");
    }
    check_host(text, host);
    return std::string(kind) == "rtsp" ? Kind::rtsp : Kind::http;
}

// The checked URL `text` with its scheme and host in lower case (both case-insensitive, RFC
// 3986; FFmpeg takes only lower-case schemes); user, password, port, path, query and an IPv6
// zone id stay as given. The twin of net_sources.normalize_url.
inline std::string normalize_url(const std::string& text) {
    const size_t start = text.find("://");
    if (start == std::string::npos) return text;
    std::string out = text;
    for (size_t i = 0; i < start; ++i) out[i] = lower(out[i]);
    const size_t end = std::min(text.find_first_of("/?#", start + 3), text.size());
    const size_t at = text.rfind('@', end == 0 ? 0 : end - 1);
    const size_t host = at != std::string::npos && at > start ? at + 1 : start + 3;
    const bool bracket = host < end && text[host] == '[';
    size_t host_end = bracket ? text.find(']', host) : text.find(':', host);
    if (host_end == std::string::npos || host_end > end) host_end = end;
    const size_t zone = text.find('%', host);
    if (bracket && zone != std::string::npos && zone < host_end) host_end = zone;
    for (size_t i = host; i < host_end; ++i) out[i] = lower(out[i]);
    return out;
}

// The kind of SOURCE: a URL or pipeline (checked), or a path. Throws SourceError.
inline Kind classify(const std::string& text) {
    const bool pipeline = is_pipeline(text);
    if (!pipeline && scheme_of(text).empty()) return Kind::path;
    const std::string what = pipeline ? "pipeline" : "URL";
    if (text.size() > static_cast<size_t>(vs::kMaxSourceText))
        throw SourceError("video source " + what + " of " + std::to_string(text.size()) +
                          " bytes refused: at most " + std::to_string(vs::kMaxSourceText) +
                          " bytes");
    for (const char c : text)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            refuse(pipeline ? mask(text) : url_shown(text),
                   "the " + what + " holds a control character");
    if (!pipeline) return check_url(text);
    if (!cv::videoio_registry::hasBackend(cv::CAP_GSTREAMER))
        throw SourceError("GStreamer pipeline '" + mask(text) +
                          "' cannot be opened: this OpenCV (" + CV_VERSION +
                          ") has no GStreamer back-end; use an OpenCV built with it "
                          "(-DWITH_GSTREAMER=ON) or give the camera's rtsp:// or http:// URL");
    return Kind::pipeline;
}

inline const char* kind_name(Kind kind) {
    return kind == Kind::rtsp ? "rtsp" : kind == Kind::http ? "http" : "pipeline";
}

inline cv::VideoCapture open_stream(const std::string& text, Kind kind, const Options& opts) {
    if (kind == Kind::pipeline) return cv::VideoCapture(text, cv::CAP_GSTREAMER);
    const std::vector<int> params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC,
                                     int(std::lround(opts.open_timeout * 1000)),
                                     cv::CAP_PROP_READ_TIMEOUT_MSEC,
                                     int(std::lround(opts.read_timeout * 1000))};
    return cv::VideoCapture(text, cv::CAP_FFMPEG, params);
}

inline std::string seconds(double s) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", s);
    return text;
}

// Reopens a live source after each back-off delay, while the outage lasts at most
// kReconnectTotal s, until an attempt opens AND gives a frame (into `first`); each attempt is
// a warning line on stderr. False: it is lost (`last` says why, `tried` how many attempts).
inline bool reconnect(cv::VideoCapture& cap, cv::Mat& first, const std::string& text, Kind kind,
                      const Options& opts, const std::string& shown, size_t n, std::string& last,
                      int& tried) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const auto spent = [&] { return std::chrono::duration<double>(clock::now() - start).count(); };
    const int attempts = static_cast<int>(std::size(vs::kReconnectDelays));
    const std::string why = last;
    for (int i = 0; i < attempts; ++i) {
        const double left = vs::kReconnectTotal - spent();
        if (left <= 0) break;
        std::this_thread::sleep_for(
            std::chrono::duration<double>(std::min(vs::kReconnectDelays[i], left)));
        std::fprintf(stderr,
                     "warning: %s %s lost after frame %zu (%s): reconnect attempt %d of %d\n",
                     kind_name(kind), shown.c_str(), n, last.c_str(), i + 1, attempts);
        tried = i + 1;
        Options attempt = opts;
        attempt.open_timeout = std::max(0.05,
                                        std::min(opts.open_timeout, vs::kReconnectTotal - spent()));
        cap = open_stream(text, kind, attempt);
        if (!cap.isOpened()) {
            last = "OpenCV refused it";
            continue;
        }
        if (cap.read(first) && !first.empty()) {
            std::fprintf(stderr, "warning: %s %s reconnected (attempt %d)\n", kind_name(kind),
                         shown.c_str(), i + 1);
            return true;
        }
        cap.release();
        last = "reopened but read no frame";
    }
    last = why + "; last attempt: " + last;
    return false;
}

// Reads the URL or pipeline `text` (classify()'s kind) frame by frame, BGR, until `visit`
// returns false or a finite source ends; reconnects a live one. Throws SourceError.
inline void for_each_stream_frame(const std::string& text, Kind kind, const Options& opts,
                                  const std::function<bool(const cv::Mat&, size_t)>& visit) {
    const std::string shown = "'" + mask(text) + "'";
    const std::string name = kind_name(kind);
    const std::string url = kind == Kind::pipeline ? text : normalize_url(text);
    cv::VideoCapture cap = open_stream(url, kind, opts);
    if (!cap.isOpened())
        throw SourceError("cannot open " + name + " " + shown +
                          ": OpenCV refused it (server down, wrong path or credentials, or not a "
                          "video?)");
    const double declared = cap.get(cv::CAP_PROP_FRAME_COUNT);
    const bool counted = std::isfinite(declared) && declared > 0;
    const bool live = kind == Kind::rtsp || !counted;  // an http file / a file pipeline: finite
    size_t n = 0;
    cv::Mat bgr;
    bool have = cap.read(bgr) && !bgr.empty();
    while (true) {
        if (have) {
            if (!visit(bgr, n++)) return;
            have = cap.read(bgr) && !bgr.empty();
            continue;
        }
        if (n == 0)
            throw SourceError(name + " " + shown + " opened but gave no frame" +
                              (counted ? " (an MP4 with its index at its end needs a server that "
                                         "answers HTTP Range requests)"
                                       : ""));
        if (!live) {
            const long long count = std::llround(declared);
            if (static_cast<long long>(n) < count - std::max<long long>(2, count / 50))
                throw SourceError(name + " " + shown + " ended after frame " + std::to_string(n) +
                                  " of the " + std::to_string(count) +
                                  " its container declares (the connection dropped, or truncated)");
            return;
        }
        std::string last = "read failed or no frame within " + seconds(opts.read_timeout) + " s";
        int tried = 0;
        const auto t0 = std::chrono::steady_clock::now();
        cap.release();
        if (!reconnect(cap, bgr, url, kind, opts, shown, n, last, tried)) {
            const std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
            throw SourceError(name + " " + shown + " lost after frame " + std::to_string(n) + " (" +
                              last + "); " + std::to_string(tried) + " reconnect attempts in " +
                              seconds(std::round(took.count() * 10) / 10) + " s failed");
        }
        have = true;
    }
}

}  // namespace video_input
