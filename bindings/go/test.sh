#!/usr/bin/env bash
# The Go binding's checks, against one build of the library:
#   1. go vet in every link mode;
#   2. the test suite linked statically (the default link mode), in a binary that must
#      not need libwasithreads.so;
#   3. the suite again linked with the shared library (-tags wasithreads_shared);
#   4. `go mod vendor` in a scratch module that imports the binding through a `replace`
#      of this directory, then a -mod=vendor build of it, run.
#
#   bash bindings/go/test.sh [DIR]
#
# DIR holds libwasithreads.a and libwasithreads.so: a cargo output directory (default:
# the repository's target/release), a repository root, or an install prefix (DIR/lib).
# The package compiles against its own copy of the header, wasithreads.h, which must be
# identical to include/wasithreads.h (and to DIR's include/wasithreads.h for a prefix).
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
  if [ -e "$d/libwasithreads.a" ] || [ -e "$d/libwasithreads.so" ]; then libdir=$d; break; fi
done
[ -n "$libdir" ] || fail "no libwasithreads.a or .so in $dir, $dir/target/release or $dir/lib"

# The header the package compiles against is its own copy; it must be the library's.
incdir=$here
for h in "$here/../../include/wasithreads.h" "$libdir/../include/wasithreads.h"; do
  if [ -e "$h" ] && ! cmp -s "$h" "$here/wasithreads.h"; then
    fail "bindings/go/wasithreads.h differs from $h: copy it (cp $h $here/)"
  fi
done

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
command -v readelf >/dev/null || need_pkg binutils
gover=$(go env GOVERSION)
case $gover in go1.1[0-8]|go1.1[0-8].*|go1.[0-9]|go1.[0-9].*) fail "Go >= 1.19 needed, found $gover";; esac

# A program linked with the shared library looks for its SONAME, which a plain cargo
# build does not make: link and run through a directory of our own with both names.
shim=$work/lib
rm -rf "$shim"
mkdir -p "$shim"
if [ -e "$libdir/libwasithreads.so" ]; then
  ln -sfn "$libdir/libwasithreads.so" "$shim/libwasithreads.so"
  soname=$(readelf -d "$libdir/libwasithreads.so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
  if [ -n "$soname" ] && [ "$soname" != libwasithreads.so ]; then
    ln -sfn "$libdir/libwasithreads.so" "$shim/$soname"
  fi
fi

export GOPATH=$work/gopath GOCACHE=$work/cache GOMODCACHE=$work/gopath/pkg/mod
export GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local GO111MODULE=on CGO_ENABLED=1
export CI=${CI:-true}
# CGO_LDFLAGS comes before the package's own #cgo flags, so this -L wins over its
# default ../../target/release.
export CGO_CFLAGS="-g -O2"
export CGO_LDFLAGS="-g -O2 -L$libdir"

if [ "${WASITHREADS_GO_ENV_ONLY:-}" = 1 ]; then return 0 2>/dev/null || exit 0; fi

cd "$here"
echo "Go binding: $gover, library $libdir, work dir $work"
go vet ./...
go vet -tags wasithreads_shared ./...
go vet -tags wasithreads_external ./...

# -count=1 everywhere: the library may have changed while the test binary did not.
if [ -e "$libdir/libwasithreads.a" ]; then
  echo "static link (default)"
  go test -c -o "$work/static.test" .
  if readelf -d "$work/static.test" | grep -q 'NEEDED.*libwasithreads'; then
    fail "the statically linked test binary needs libwasithreads.so"
  fi
  LD_LIBRARY_PATH= "$work/static.test" -test.count=1 -test.timeout 10m </dev/null
  rm -f "$work/static.test"
else
  echo "no $libdir/libwasithreads.a: static link not tested"
fi

if [ -e "$libdir/libwasithreads.so" ]; then
  echo "shared link (-tags wasithreads_shared)"
  CGO_LDFLAGS="-g -O2 -L$shim -Wl,-rpath,$shim" \
    go test -count=1 -timeout 10m -tags wasithreads_shared . </dev/null
else
  echo "no $libdir/libwasithreads.so: shared link not tested"
fi

if [ -e "$libdir/libwasithreads.a" ]; then
  # go mod vendor copies only the package directory: everything the build needs but
  # the library must be in it.
  echo "go mod vendor in a module that imports the binding"
  vend=$work/vendor-check
  rm -rf "$vend"
  mkdir -p "$vend"
  cp "$here/testdata/vendorcheck/main.go" "$vend/"
  printf 'module example.com/vendorcheck\n\ngo 1.19\n\nrequire wasithreads v0.0.0\n\nreplace wasithreads => %s\n' \
    "$here" >"$vend/go.mod"
  (cd "$vend" && GOFLAGS= go mod vendor && [ -e vendor/wasithreads/wasithreads.h ] &&
    GOFLAGS=-mod=vendor go build -o vendorcheck . && LD_LIBRARY_PATH= ./vendorcheck) ||
    fail "the vendored build failed"
  rm -rf "$vend"
fi
echo "bindings/go/test.sh: passed"
