// Compile-time facts of the core (see build_info.hpp). CMake passes RAPSAM_EDGE_VERSION,
// RAPSAM_BUILD_TYPE and RAPSAM_CXX_FLAGS as compile definitions.
#include "build_info.hpp"

#ifndef RAPSAM_EDGE_VERSION
#define RAPSAM_EDGE_VERSION "0+unknown"
#endif
#ifndef RAPSAM_BUILD_TYPE
#define RAPSAM_BUILD_TYPE ""
#endif
#ifndef RAPSAM_CXX_FLAGS
#define RAPSAM_CXX_FLAGS ""
#endif

namespace rapsam {

const char* core_version() { return RAPSAM_EDGE_VERSION; }

BuildInfo build_info() {
    BuildInfo b;
    b.version = RAPSAM_EDGE_VERSION;
#if defined(__clang__)
    b.compiler = "Clang " __clang_version__;
#elif defined(__GNUC__)
    b.compiler = "GCC " __VERSION__;
#elif defined(_MSC_VER)
    b.compiler = "MSVC " + std::to_string(_MSC_VER);
#else
    b.compiler = "unknown";
#endif
#if defined(__x86_64__) || defined(_M_X64)
    b.arch = "x86_64";
#elif defined(__aarch64__) || defined(_M_ARM64)
    b.arch = "aarch64";
#elif defined(__arm__) || defined(_M_ARM)
    b.arch = "arm";
#elif defined(__riscv)
    b.arch = "riscv";
#elif defined(__i386__) || defined(_M_IX86)
    b.arch = "x86";
#else
    b.arch = "unknown";
#endif
    const auto add = [&b](const char* name) {
        if (!b.simd.empty()) b.simd += ' ';
        b.simd += name;
    };
#if defined(__SSE2__) || defined(_M_X64)
    add("sse2");
#endif
#if defined(__SSE4_2__)
    add("sse4.2");
#endif
#if defined(__AVX__)
    add("avx");
#endif
#if defined(__AVX2__)
    add("avx2");
#endif
#if defined(__FMA__)
    add("fma");
#endif
#if defined(__AVX512F__)
    add("avx512f");
#endif
#if defined(__ARM_NEON) || defined(__ARM_NEON__)
    add("neon");
#endif
#if defined(__ARM_FEATURE_SVE)
    add("sve");
#endif
    (void)add;
    b.build_type = RAPSAM_BUILD_TYPE;
    b.cxx_flags = RAPSAM_CXX_FLAGS;
    return b;
}

}  // namespace rapsam
