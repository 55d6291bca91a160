#!/usr/bin/env bash
# The Go binding's checks: go vet and go test (shared library, build-tree link mode),
# then a static link of the same tests (-tags wasithreads_external) when
# libwasithreads.a is there.
#
#   bash bindings/go/test.sh [DIR]
#
# DIR holds libwasithreads.so: a cargo output directory (default: the repository's
# target/release), a repository root, or an install prefix (DIR/lib). The header is the
# one next to it (DIR/../../include for a build tree, DIR/../include for a prefix) or
# else the repository's include/wasithreads.h.
#
# Works offline on a fresh machine: installs Go with apt-get when `go` is missing and we
# are root; the standard library is the only dependency. GOPATH and GOCACHE go under
# the target directory (target/go) when DIR is a cargo target/<profile> directory, else
# under ${TMPDIR:-/tmp}/wasithreads-go-$UID; WASITHREADS_GO_WORK overrides. Nothing is
# written to DIR itself.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

fail() { echo "bindings/go/test.sh: $*" >&2; exit 1; }

dir=${1:-$here/../../target/release}
[ -d "$dir" ] || fail "no such directory: $dir (build the library first: cargo build --release)"
dir=$(cd "$dir" && pwd)
libdir=
for d in "$dir" "$dir/target/release" "$dir/lib"; do
  if [ -e "$d/libwasithreads.so" ]; then libdir=$d; break; fi
done
[ -n "$libdir" ] || fail "no libwasithreads.so in $dir, $dir/target/release or $dir/lib"
incdir=
for d in "$libdir/../../include" "$libdir/../include" "$here/../../include"; do
  if [ -e "$d/wasithreads.h" ]; then incdir=$(cd "$d" && pwd); break; fi
done
[ -n "$incdir" ] || fail "no wasithreads.h near $libdir"

if [ -n "${WASITHREADS_GO_WORK:-}" ]; then
  work=$WASITHREADS_GO_WORK
elif [ "$(basename "$(dirname "$libdir")")" = target ]; then
  work=$(dirname "$libdir")/go
else
  work=${TMPDIR:-/tmp}/wasithreads-go-$(id -u)
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)

# Go and a C compiler (cgo).
export DEBIAN_FRONTEND=noninteractive
need_pkg() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || fail "please install: $*"
  echo "installing $* with apt-get"
  apt-get install -y -q "$@" </dev/null >/dev/null ||
    { apt-get update -q </dev/null >/dev/null && apt-get install -y -q "$@" </dev/null >/dev/null; }
}
command -v go >/dev/null || need_pkg golang-go
command -v "$(go env CC)" >/dev/null || need_pkg gcc libc6-dev
gover=$(go env GOVERSION)
case $gover in go1.1[0-8]|go1.1[0-8].*|go1.[0-9]|go1.[0-9].*) fail "Go >= 1.19 needed, found $gover";; esac

# The program looks for the SONAME, libwasithreads.so.<version> (the header's WT_VERSION),
# which a plain cargo build does not make: link and run through a directory of our own
# with both names.
version=$(sed -n 's/^#define WT_VERSION "\(.*\)"$/\1/p' "$incdir/wasithreads.h")
[ -n "$version" ] || fail "no WT_VERSION in $incdir/wasithreads.h"
shim=$work/lib
mkdir -p "$shim"
ln -sfn "$libdir/libwasithreads.so" "$shim/libwasithreads.so"
ln -sfn "$libdir/libwasithreads.so" "$shim/libwasithreads.so.$version"

export GOPATH=$work/gopath GOCACHE=$work/cache GOMODCACHE=$work/gopath/pkg/mod
export GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local GO111MODULE=on CGO_ENABLED=1
export CI=${CI:-true}
# Go's build cache does not see headers outside the package, so the header's hash is
# part of the flags: a changed header recompiles the package. These flags come before the
# package's own #cgo flags, so they win over its default ../../target/release.
hsum=$(sha256sum "$incdir/wasithreads.h" | cut -c1-16)
export CGO_CFLAGS="-g -O2 -I$incdir -DWASITHREADS_HEADER_SHA=$hsum"
export CGO_LDFLAGS="-g -O2 -L$shim -Wl,-rpath,$shim"
export LD_LIBRARY_PATH=$shim${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

if [ "${WASITHREADS_GO_ENV_ONLY:-}" = 1 ]; then return 0 2>/dev/null || exit 0; fi

cd "$here"
echo "Go binding: $gover, library $libdir, header $incdir, work dir $work"
go vet ./...
go vet -tags wasithreads_external ./...
# -count=1: the library may have changed while the test binary did not.
go test -count=1 -timeout 10m ./... </dev/null

if [ -e "$libdir/libwasithreads.a" ] && [ "${WASITHREADS_GO_STATIC:-1}" != 0 ]; then
  # Static: the same package linked with libwasithreads.a (the extra libraries are
  # pkg/wasithreads.pc.in's Libs.private); a few tests, in a binary that must not need
  # the shared library.
  CGO_LDFLAGS="-g -O2 $libdir/libwasithreads.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc" \
    go test -c -tags wasithreads_external -o "$work/static.test" .
  if command -v readelf >/dev/null && readelf -d "$work/static.test" | grep -q 'NEEDED.*libwasithreads'; then
    fail "the static test binary needs libwasithreads.so"
  fi
  LD_LIBRARY_PATH= "$work/static.test" -test.count=1 -test.timeout 10m \
    -test.run 'Version|ThreadedOutput|Trap|WriterPanic|Cancel' </dev/null
  rm -f "$work/static.test"
fi
echo "bindings/go/test.sh: passed"
