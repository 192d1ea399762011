// The core's persistent worker pool and its thread-count setting. Plain C++17.
//
// One process-wide pool, created on the first parallel region and reused by every call.
// A parallel region is a task group: its caller runs parts itself while idle workers take
// the others, so several threads may run regions at once (and a region may run inside
// another) without deadlock; results never depend on how many threads took part.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "rapsam_contract.hpp"

namespace rapsam {

/// Largest accepted thread count (set_num_threads, the threads variable): contract.json.
constexpr int kMaxThreads = contract::kMaxThreads;

/// Environment variable holding the default thread count (RAPSAM_EDGE_THREADS).
constexpr const char* kThreadsEnvVar = contract::kThreadsEnvVar;

/// Work (output elements) below which an op runs on the calling thread alone: waking the
/// workers costs more than it saves.
constexpr double kMinParallelWork = 2e5;

/// Cores this process may run on: sched_getaffinity on Linux (respects taskset, cgroup
/// cpusets), std::thread::hardware_concurrency() elsewhere; at least 1.
int available_cores();

/// The threads variable's value -> a thread count; nullopt when `raw` is null or blank.
/// The rule of rapsam_edge.contract.threads.parse_threads: stripped of spaces, tabs, CR and
/// LF, 1 to 4 ASCII digits in [1, kMaxThreads]; else std::invalid_argument naming the variable.
/// Every byte of `raw` counts: an embedded NUL is an error (as in Python), not an end.
std::optional<int> parse_num_threads(const std::string& raw);
/// The same for a C string (getenv's value); null is unset.
std::optional<int> parse_num_threads(const char* raw);

/// parse_num_threads(getenv(kThreadsEnvVar)) when set, else min(available_cores(), kMaxThreads).
int default_num_threads();

/// Threads a parallel region uses, the calling thread included. The first call resolves
/// default_num_threads() (and throws as it does) unless set_num_threads came first.
int num_threads();

/// Sets num_threads() (std::invalid_argument unless 1 <= n <= kMaxThreads). Workers beyond
/// the new count exit once idle; new ones start on demand.
void set_num_threads(int n);

/// Number of parts for an op doing `work` element operations: 1 below kMinParallelWork,
/// else num_threads(), at most `requested` when requested > 0.
int parallel_parts(double work, int requested = 0);

/// Runs body(part, n_parts) for every part in [0, n_parts) on the pool and returns when all
/// are done; the calling thread runs part 0 and any part no worker has taken. Rethrows the
/// first exception of a part (parts not yet started are then skipped). Thread-safe.
void parallel_for(int n_parts, const std::function<void(int, int)>& body);

/// Worker threads the pool has started (0 before the first parallel region); for tests.
int pool_workers();

}  // namespace rapsam
