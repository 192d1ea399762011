// What the core was built as: the package version (for the stale-build check) and the
// compiler, target and flags (for `rapsam-edge info`). Plain C++17.
#pragma once

#include <string>

namespace rapsam {

struct BuildInfo {
    std::string version;     ///< package version the core was built from (pyproject.toml)
    std::string compiler;    ///< e.g. "GCC 12.2.0", "Clang 17.0.6"
    std::string arch;        ///< target: x86_64, aarch64, arm, ...
    std::string simd;        ///< SIMD extensions enabled at compile time, space separated
    std::string build_type;  ///< CMake build type (Release, ...)
    std::string cxx_flags;   ///< compile flags of the core library
};

/// The package version this core was built from, e.g. "0.1.0".
const char* core_version();

/// Compile-time facts about this build of the core.
BuildInfo build_info();

}  // namespace rapsam
