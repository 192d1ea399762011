// COCO compressed RLE (pycocotools rleToString / rleFrString), twin of _numpy.rle_*.
#include "rle.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "common.hpp"

namespace rapsam {

std::vector<int64_t> rle_runs(const uint8_t* mask, int64_t h, int64_t w) {
    // COCO runs follow the column-major order of a row-major mask. Columns are handled in
    // blocks of 64 (one cache line per row): a first pass down the rows records, per column,
    // the rows where the value changes (8 columns compared at a time, equal words skipped);
    // a second pass emits the runs column after column. COCO starts with a run of zeros.
    std::vector<int64_t> runs;
    const int64_t total = h * w;
    if (total == 0) {
        runs.push_back(0);
        return runs;
    }
    constexpr int64_t kBlock = 64;
    std::vector<std::vector<int64_t>> changes(kBlock);
    uint8_t current = 0;
    int64_t run_start = 0;
    for (int64_t xb = 0; xb < w; xb += kBlock) {
        const int64_t nb = std::min(kBlock, w - xb);
        for (int64_t j = 0; j < nb; ++j) changes[j].clear();
        for (int64_t y = 1; y < h; ++y) {
            const uint8_t* prev = mask + (y - 1) * w + xb;
            const uint8_t* row = mask + y * w + xb;
            if (std::memcmp(prev, row, static_cast<size_t>(nb)) == 0) continue;  // common case
            for (int64_t k = 0; k < nb; k += 8) {
                const int64_t end = std::min(nb, k + 8);
                if (end - k == 8) {
                    uint64_t a, b;
                    std::memcpy(&a, prev + k, 8);
                    std::memcpy(&b, row + k, 8);
                    if (a == b) continue;
                }
                for (int64_t j = k; j < end; ++j)
                    if ((row[j] != 0) != (prev[j] != 0)) changes[j].push_back(y);
            }
        }
        for (int64_t j = 0; j < nb; ++j) {
            const int64_t base = (xb + j) * h;
            const uint8_t top = mask[xb + j] != 0;
            if (top != current) {
                runs.push_back(base - run_start);
                run_start = base;
                current = top;
            }
            for (const int64_t y : changes[j]) {
                runs.push_back(base + y - run_start);
                run_start = base + y;
                current ^= 1;
            }
        }
    }
    runs.push_back(total - run_start);
    return runs;
}

std::string rle_counts_to_string(const std::vector<int64_t>& counts) {
    std::string out;
    out.reserve(counts.size() * 2);
    for (size_t i = 0; i < counts.size(); ++i) {
        int64_t x = counts[i];
        if (i > 2) x -= counts[i - 2];
        bool more = true;
        while (more) {
            int64_t c = x & 0x1f;
            x >>= 5;  // arithmetic shift, as Python's >>
            more = (c & 0x10) ? x != -1 : x != 0;
            if (more) c |= 0x20;
            out.push_back(static_cast<char>(c + 48));
        }
    }
    return out;
}

std::vector<int64_t> rle_counts_from_string(const char* data, size_t size) {
    std::vector<int64_t> counts;
    size_t pos = 0;
    constexpr int64_t kLimit = int64_t{1} << 61;
    while (pos < size) {
        int64_t x = 0;
        int shift = 0;
        bool more = true;
        while (more) {
            if (pos >= size) fail("rle counts string is truncated");
            const int c = static_cast<unsigned char>(data[pos]) - 48;
            if (c < 0 || c >= 64) {  // the byte in hex: any byte, never an undecodable message
                char msg[80];
                std::snprintf(msg, sizeof msg, "rle counts has an invalid byte 0x%02x at %zu",
                              static_cast<unsigned>(static_cast<unsigned char>(data[pos])), pos);
                fail(msg);
            }
            if (5 * shift >= 58) fail("rle counts has a value out of range");
            x |= static_cast<int64_t>(c & 0x1f) << (5 * shift);
            more = (c & 0x20) != 0;
            ++pos;
            ++shift;
            if (!more && (c & 0x10)) x |= static_cast<int64_t>(-1) * (int64_t{1} << (5 * shift));
        }
        if (counts.size() > 2) x += counts[counts.size() - 2];
        if (x >= kLimit || x <= -kLimit) fail("rle counts has a value out of range");
        counts.push_back(x);
    }
    return counts;
}

std::string rle_encode(const uint8_t* mask, int64_t h, int64_t w) {
    return rle_counts_to_string(rle_runs(mask, h, w));
}

void rle_check_runs(const std::vector<int64_t>& runs, int64_t h, int64_t w) {
    if (h < 0 || w < 0) fail("rle size must be non-negative");
    int64_t sum = 0;
    bool overflow = false;
    for (int64_t r : runs) {
        if (r < 0) fail("rle counts must be non-negative");
    }
    for (int64_t r : runs) {
        if (__builtin_add_overflow(sum, r, &sum)) overflow = true;
    }
    int64_t total = 0;
    if (__builtin_mul_overflow(h, w, &total)) fail("rle size is too large");
    if (overflow || sum != total)
        fail("rle counts sum to " +
             (overflow ? std::string("more than 2^63") : std::to_string(sum)) +
             ", expected H*W = " + std::to_string(total));
}

void rle_decode(const std::vector<int64_t>& runs, int64_t h, int64_t w, uint8_t* out) {
    // column-major runs -> row-major mask
    int64_t x = 0, y = 0;
    uint8_t value = 0;
    for (int64_t r : runs) {
        for (int64_t i = 0; i < r; ++i) {
            out[y * w + x] = value;
            if (++y == h) {
                y = 0;
                ++x;
            }
        }
        value ^= 1;
    }
}

}  // namespace rapsam
