// COCO compressed run-length encoding, byte-identical to pycocotools.mask.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rapsam {

/// Column-major run lengths of an h x w row-major mask (nonzero = set), starting with a
/// run of zeros (possibly 0), as COCO.
std::vector<int64_t> rle_runs(const uint8_t* mask, int64_t h, int64_t w);

/// COCO LEB128-like string of run lengths (pycocotools rleToString).
std::string rle_counts_to_string(const std::vector<int64_t>& counts);

/// Inverse of rle_counts_to_string; throws std::invalid_argument on truncated strings,
/// invalid characters or values out of range.
std::vector<int64_t> rle_counts_from_string(const char* data, size_t size);

/// h x w mask -> COCO compressed counts string.
std::string rle_encode(const uint8_t* mask, int64_t h, int64_t w);

/// Checks run lengths (non-negative, sum == h * w; throws std::invalid_argument).
void rle_check_runs(const std::vector<int64_t>& runs, int64_t h, int64_t w);

/// Writes the h x w row-major 0/1 mask of checked runs into `out`.
void rle_decode(const std::vector<int64_t>& runs, int64_t h, int64_t w, uint8_t* out);

}  // namespace rapsam
