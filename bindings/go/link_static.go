//go:build wasithreads_static && !wasithreads_pkgconfig && !wasithreads_external

package wasithreads

// -tags wasithreads_static: the build tree's static library, linked into the program,
// which then needs no libwasithreads.so at run time. The extra libraries are the ones
// pkg/wasithreads.pc.in lists in Libs.private.

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: ${SRCDIR}/../../target/release/libwasithreads.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
import "C"
