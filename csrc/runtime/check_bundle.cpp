// rapsam_check_bundle DIR: loads and verifies a bundle with the C++ runtime's loader
// (rapsam::load_bundle: the manifest schema, the rules between fields, every file's sha256)
// and prints "ok" (exit 0) or the one-line error (exit 1); wrong usage exits 2. Never
// crashes on a hostile bundle: tests/test_manifest_parity.py runs it on every case of its
// table, in CI also under ASan + UBSan.
#include <exception>
#include <iostream>
#include <string>

#include "bundle.hpp"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: rapsam_check_bundle BUNDLE_DIR\n";
        return 2;
    }
    try {
        const rapsam::Bundle b = rapsam::load_bundle(argv[1], true);
        std::cout << "ok\n";
        return 0;
    } catch (const rapsam::BundleError& e) {
        std::cout << "BundleError: " << e.what() << "\n";
    } catch (const std::exception& e) {  // not expected: the test fails on this prefix
        std::cout << "unexpected error: " << e.what() << "\n";
    }
    return 1;
}
