// Label-map overlay, twin of _numpy.overlay / _numpy.palette.
#include "overlay.hpp"

#include <cmath>
#include <string>

#include "common.hpp"

namespace rapsam {

void palette_colour(int32_t id, uint8_t rgb[3]) {
    // (uint64(id) * 0x9E3779B1) & 0xFFFFFFFF == uint32 product modulo 2^32
    const uint32_t h = static_cast<uint32_t>(id) * 0x9E3779B1u;
    const int shifts[3] = {16, 8, 0};
    for (int i = 0; i < 3; ++i)
        rgb[i] = static_cast<uint8_t>(64 + (((h >> shifts[i]) & 255u) * 3) / 4);
}

void overlay(const uint8_t* image, const int32_t* labels, int h, int w, double alpha, bool boundary,
             uint8_t* out) {
    if (!(alpha >= 0.0 && alpha <= 1.0))
        fail("alpha must be in [0, 1], got " + std::to_string(alpha));
    const int a = static_cast<int>(std::floor(alpha * 256 + 0.5));
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
            const size_t i = static_cast<size_t>(y) * w + x;
            const int32_t id = labels[i];
            const uint8_t* src = image + 3 * i;
            uint8_t* dst = out + 3 * i;
            if (id == 0) {
                dst[0] = src[0];
                dst[1] = src[1];
                dst[2] = src[2];
                continue;
            }
            uint8_t rgb[3];
            palette_colour(id, rgb);
            const bool edge = boundary && ((x + 1 < w && labels[i + 1] != id) ||
                                           (y + 1 < h && labels[i + w] != id));
            for (int ch = 0; ch < 3; ++ch) {
                dst[ch] = edge ? rgb[ch]
                               : static_cast<uint8_t>((src[ch] * (256 - a) + rgb[ch] * a + 128) >>
                                                      8);
            }
        }
    }
}

}  // namespace rapsam
