//go:build !wasithreads_shared && !wasithreads_pkgconfig && !wasithreads_external

package wasithreads

// Default link mode: the static library, libwasithreads.a, linked into the program,
// which then needs no libwasithreads.so at run time. The header is the package's own
// copy (wasithreads.h, kept identical to include/wasithreads.h by TestHeaderIsTheLibrarys),
// so the package builds wherever its directory is copied (go mod vendor, the module
// cache). The library is looked up in the -L directories of CGO_LDFLAGS first, which
// come before these flags, then in the checkout's target/release: a fresh clone builds
// after `cargo build --release` with no settings, and a vendored copy or another target
// directory needs CGO_LDFLAGS=-L<dir holding libwasithreads.a>. The extra libraries are
// the ones pkg/wasithreads.pc.in lists in Libs.private.

// #cgo LDFLAGS: -L${SRCDIR}/../../target/release -l:libwasithreads.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
import "C"
