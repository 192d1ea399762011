// Shortest augmenting paths (Jonker-Volgenant style, one row at a time), a line-by-line
// twin of _numpy._shortest_augmenting_path: same operation order and the same
// tie-breaking (among the columns at the smallest reduced cost, the first free one, else
// the first one), so the two return identical assignments, not only equal costs.
#include "assignment.hpp"

#include <cmath>
#include <limits>

#include "common.hpp"

namespace rapsam {
namespace {

// c: n_rows x n_cols, n_rows <= n_cols, no NaN / -inf.
void shortest_augmenting_path(const std::vector<double>& c, int64_t n_rows, int64_t n_cols,
                              std::vector<int64_t>& col_of_row, std::vector<int64_t>& row_of_col) {
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> u(n_rows, 0.0), v(n_cols, 0.0), shortest(n_cols);
    std::vector<int64_t> path(n_cols);
    std::vector<char> done_cols(n_cols), done_rows(n_rows);
    col_of_row.assign(n_rows, -1);
    row_of_col.assign(n_cols, -1);
    for (int64_t cur_row = 0; cur_row < n_rows; ++cur_row) {
        std::fill(shortest.begin(), shortest.end(), inf);
        std::fill(path.begin(), path.end(), -1);
        std::fill(done_cols.begin(), done_cols.end(), 0);
        std::fill(done_rows.begin(), done_rows.end(), 0);
        int64_t i = cur_row, sink = -1;
        double min_val = 0.0;
        while (sink == -1) {
            done_rows[i] = 1;
            const double* ci = c.data() + i * n_cols;
            double best = inf;
            for (int64_t j = 0; j < n_cols; ++j) {
                if (done_cols[j]) continue;
                const double reduced = ((min_val + ci[j]) - u[i]) - v[j];
                if (reduced < shortest[j]) {
                    path[j] = i;
                    shortest[j] = reduced;
                }
                if (shortest[j] < best) best = shortest[j];
            }
            if (best == inf) fail("cost matrix is infeasible");
            int64_t first_tie = -1, first_free = -1;
            for (int64_t j = 0; j < n_cols; ++j) {
                if (done_cols[j] || shortest[j] != best) continue;
                if (first_tie < 0) first_tie = j;
                if (row_of_col[j] == -1) {
                    first_free = j;
                    break;
                }
            }
            const int64_t j = first_free >= 0 ? first_free : first_tie;
            min_val = best;
            done_cols[j] = 1;
            if (row_of_col[j] == -1) {
                sink = j;
            } else {
                i = row_of_col[j];
            }
        }
        // update duals, then augment along the path
        u[cur_row] += min_val;
        for (int64_t r = 0; r < n_rows; ++r)
            if (done_rows[r] && r != cur_row) u[r] += min_val - shortest[col_of_row[r]];
        for (int64_t j = 0; j < n_cols; ++j)
            if (done_cols[j]) v[j] -= min_val - shortest[j];
        int64_t j = sink;
        while (true) {
            const int64_t r = path[j];
            row_of_col[j] = r;
            const int64_t next = col_of_row[r];
            col_of_row[r] = j;
            j = next;
            if (r == cur_row) break;
        }
    }
}

}  // namespace

Assignment linear_assignment(const double* cost, int64_t n_rows, int64_t n_cols, bool maximize) {
    if (n_rows < 0 || n_cols < 0) fail("cost must have non-negative dimensions");
    const size_t n = static_cast<size_t>(n_rows) * static_cast<size_t>(n_cols);
    for (size_t k = 0; k < n; ++k)
        if (std::isnan(cost[k])) fail("cost contains NaN");
    const bool transposed = n_rows > n_cols;
    const int64_t R = transposed ? n_cols : n_rows, C = transposed ? n_rows : n_cols;
    std::vector<double> c(n);
    for (int64_t r = 0; r < n_rows; ++r)
        for (int64_t k = 0; k < n_cols; ++k) {
            double x = cost[r * n_cols + k];
            if (maximize) x = -x;
            if (x == -std::numeric_limits<double>::infinity())
                fail("cost contains -inf (+inf with maximize)");
            if (transposed) {
                c[k * C + r] = x;
            } else {
                c[r * C + k] = x;
            }
        }
    Assignment out;
    if (R == 0) return out;
    std::vector<int64_t> col_of_row, row_of_col;
    shortest_augmenting_path(c, R, C, col_of_row, row_of_col);
    if (transposed) {
        for (int64_t j = 0; j < C; ++j)
            if (row_of_col[j] >= 0) {
                out.rows.push_back(j);
                out.cols.push_back(row_of_col[j]);
            }
    } else {
        for (int64_t r = 0; r < R; ++r) {
            out.rows.push_back(r);
            out.cols.push_back(col_of_row[r]);
        }
    }
    return out;
}

}  // namespace rapsam
