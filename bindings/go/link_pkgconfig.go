//go:build wasithreads_pkgconfig && !wasithreads_external

package wasithreads

// -tags wasithreads_pkgconfig: an installed copy (scripts/install.sh PREFIX), found with
// `pkg-config wasithreads` (set PKG_CONFIG_PATH=PREFIX/lib/pkgconfig). The .pc file sets
// no rpath: outside the loader's path add
// CGO_LDFLAGS="-Wl,-rpath,$(pkg-config --variable=libdir wasithreads)" (or run ldconfig,
// or set LD_LIBRARY_PATH).

// #cgo pkg-config: wasithreads
import "C"
