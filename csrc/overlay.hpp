// Visualisation: palette colours per id and label-map blending.
#pragma once

#include <cstdint>

namespace rapsam {

/// Deterministic bright colour of an integer id (same hash as _numpy.palette).
void palette_colour(int32_t id, uint8_t rgb[3]);

/// Blends the palette colour of labels (h x w, 0 = void) into image (h x w x 3) with
/// alpha in [0, 1] (8-bit fixed point); boundary pixels (right or lower neighbour has
/// another label) get the full colour. Writes out (h x w x 3). Throws on bad alpha.
void overlay(const uint8_t* image, const int32_t* labels, int h, int w, double alpha, bool boundary,
             uint8_t* out);

}  // namespace rapsam
