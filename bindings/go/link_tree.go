//go:build !wasithreads_pkgconfig && !wasithreads_static && !wasithreads_external

package wasithreads

// Default link mode: the repository's build tree. The header is the committed
// include/wasithreads.h and the library the shared one cargo builds in target/release;
// the rpath lets programs find it there at run time. The library's SONAME is its full
// version, libwasithreads.so.X.Y.Z: that link must exist in target/release (the CMake
// build makes it; after a plain `cargo build`, `ln -sf libwasithreads.so
// target/release/libwasithreads.so.X.Y.Z` with the version in Cargo.toml).

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: -L${SRCDIR}/../../target/release -lwasithreads -Wl,-rpath,${SRCDIR}/../../target/release
import "C"
