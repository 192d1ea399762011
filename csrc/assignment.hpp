// Linear assignment (shortest augmenting paths), twin of _numpy.linear_assignment.
#pragma once

#include <cstdint>
#include <vector>

namespace rapsam {

struct Assignment {
    std::vector<int64_t> rows;  ///< ascending
    std::vector<int64_t> cols;
};

/// Optimal assignment on a row-major n_rows x n_cols cost matrix (rectangular allowed),
/// like scipy.optimize.linear_sum_assignment; +inf (-inf with maximize) forbids a pair.
/// Throws std::invalid_argument on NaN, -inf (+inf with maximize) or an infeasible matrix.
Assignment linear_assignment(const double* cost, int64_t n_rows, int64_t n_cols,
                             bool maximize = false);

}  // namespace rapsam
