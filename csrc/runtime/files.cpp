// Regular-file reads for the C++ runtime (see files.hpp).
#include "files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace rapsam {
namespace {

std::string quoted(const std::string& path) { return "'" + path + "'"; }

std::string limit_text(int64_t n) {
    if (n >= (int64_t{1} << 20)) return std::to_string((n + (1 << 19)) >> 20) + " MiB";
    return std::to_string(n) + " bytes";
}

}  // namespace

std::string file_kind(unsigned mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a named pipe";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

RegularFile::RegularFile(const std::string& path, const std::string& what, int64_t max_bytes)
    : path_(path), what_(what) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0)
        throw FileError(what + " " + quoted(path) + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st{};
    std::string problem;
    if (::fstat(fd_, &st) != 0)
        problem = ": cannot stat (" + std::string(std::strerror(errno)) + ")";
    else if (!S_ISREG(st.st_mode))
        problem = " is " + file_kind(st.st_mode) + ", not a regular file";
    else if (max_bytes >= 0 && st.st_size > max_bytes)
        problem = " is " + std::to_string(st.st_size) + " bytes, over the limit of " +
                  limit_text(max_bytes);
    if (problem.empty()) {
        const int flags = ::fcntl(fd_, F_GETFL);
        if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK) < 0)
            problem = ": cannot set blocking reads (" + std::string(std::strerror(errno)) + ")";
    }
    if (!problem.empty()) {
        ::close(fd_);
        fd_ = -1;
        throw FileError(what + " " + quoted(path) + problem);
    }
    size_ = static_cast<int64_t>(st.st_size);
}

RegularFile::~RegularFile() {
    if (fd_ >= 0) ::close(fd_);
}

size_t RegularFile::read(char* buf, size_t n) {
    for (;;) {
        const ssize_t got = ::read(fd_, buf, n);
        if (got >= 0) return static_cast<size_t>(got);
        if (errno != EINTR)
            throw FileError(what_ + " " + quoted(path_) + ": cannot read (" + std::strerror(errno) +
                            ")");
    }
}

std::string read_regular(const std::string& path, const std::string& what, int64_t max_bytes) {
    RegularFile f(path, what, max_bytes);
    // up to max_bytes + 1 bytes: a file that grew after the check is caught, never read whole
    const size_t cap = max_bytes < 0 ? SIZE_MAX : static_cast<size_t>(max_bytes) + 1;
    std::string out(std::min(static_cast<size_t>(f.size()) + 1, cap), '\0');
    size_t have = 0;
    for (;;) {
        if (have == out.size()) {
            if (out.size() >= cap) break;
            out.resize(std::min(out.size() * 2 + 4096, cap));
        }
        const size_t got = f.read(&out[have], out.size() - have);
        if (got == 0) break;
        have += got;
    }
    out.resize(have);
    if (max_bytes >= 0 && have > static_cast<size_t>(max_bytes))
        throw FileError(what + " " + quoted(path) + " is over the limit of " +
                        limit_text(max_bytes));
    return out;
}

}  // namespace rapsam
