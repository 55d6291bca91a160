//go:build wasithreads_external

package wasithreads

// -tags wasithreads_external: no flags of our own; CGO_CFLAGS and CGO_LDFLAGS say where
// the header and the library are, e.g. for a static link against an installed copy:
//
//	CGO_CFLAGS="$(pkg-config --cflags wasithreads)"
//	CGO_LDFLAGS="$(pkg-config --variable=libdir wasithreads)/libwasithreads.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

import "C"
