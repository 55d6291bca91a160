package wasithreads_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"regexp"
	"testing"

	"wasithreads"
)

// ownHeader is the header the package compiles against: its own copy, so that the
// package builds wherever its directory is copied (go mod vendor, the module cache).
const ownHeader = "wasithreads.h"

// TestHeaderIsTheLibrarys: in a checkout, the package's copy of the header is the
// repository's include/wasithreads.h byte for byte.
func TestHeaderIsTheLibrarys(t *testing.T) {
	repo, err := os.ReadFile("../../include/wasithreads.h")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("no ../../include/wasithreads.h: not in a checkout of the repository")
	}
	if err != nil {
		t.Fatal(err)
	}
	own, err := os.ReadFile(ownHeader)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(own, repo) {
		t.Fatal("bindings/go/wasithreads.h differs from include/wasithreads.h: " +
			"build the library (cargo build --release): build.rs writes both")
	}
}

// TestLinkedLibraryMatchesHeader: the library the test binary was linked with has the
// version the header describes.
func TestLinkedLibraryMatchesHeader(t *testing.T) {
	h, err := os.ReadFile(ownHeader)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^#define WT_VERSION "(.*)"$`).FindSubmatch(h)
	if m == nil {
		t.Fatalf("no WT_VERSION in %s", ownHeader)
	}
	if want := string(m[1]); wasithreads.Version() != want {
		t.Fatalf("library version %q, header %s says %q", wasithreads.Version(), ownHeader, want)
	}
}
