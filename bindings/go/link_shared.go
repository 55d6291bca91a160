//go:build wasithreads_shared && !wasithreads_pkgconfig && !wasithreads_external

package wasithreads

// -tags wasithreads_shared: the shared library, from the -L directories of CGO_LDFLAGS or
// else the checkout's target/release, with an rpath to the latter. At run time the
// program looks for the library's SONAME (`readelf -d libwasithreads.so`), which must
// be in a directory the loader searches: the rpath, LD_LIBRARY_PATH, or the system's.

// #cgo LDFLAGS: -L${SRCDIR}/../../target/release -lwasithreads -Wl,-rpath,${SRCDIR}/../../target/release
import "C"
