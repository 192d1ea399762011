// Reading files the runtime takes as data (manifest.json, every file the bundle check hashes):
// only regular files, refused before anything blocks or is allocated. C++ twin of
// rapsam_edge/contract/files.py: open(2) with O_NONBLOCK (never waits on a named pipe),
// fstat on the opened descriptor (no race with a swapped path), the size limit, then read.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace rapsam {

/// A data file that cannot be read: missing, unreadable, not a regular file (a named pipe,
/// a device, a socket, a directory) or over the size limit; the message names it.
class FileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// "a named pipe", "a directory", ... for a st_mode (files.py file_kind).
std::string file_kind(unsigned mode);

/// A regular file opened for reading (blocking reads), closed by the destructor.
class RegularFile {
public:
    /// Opens `path` (`what` names it in messages, e.g. "manifest"); max_bytes < 0: no limit.
    /// Throws FileError as files.py open_regular raises.
    RegularFile(const std::string& path, const std::string& what, int64_t max_bytes = -1);
    ~RegularFile();
    RegularFile(const RegularFile&) = delete;
    RegularFile& operator=(const RegularFile&) = delete;

    /// Reads up to n bytes into buf; returns the count (0 at the end). Throws FileError.
    size_t read(char* buf, size_t n);
    int64_t size() const { return size_; }

private:
    int fd_ = -1;
    int64_t size_ = 0;
    std::string path_, what_;
};

/// The bytes of a regular file of at most max_bytes (files.py read_regular). Throws FileError.
std::string read_regular(const std::string& path, const std::string& what, int64_t max_bytes);

}  // namespace rapsam
