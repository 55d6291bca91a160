#!/usr/bin/env bash
# Installs into a temporary prefix, then builds against the installed copy the way users
# do: hello.c with pkg-config (shared and static), and the whole examples-c CMake project
# with find_package, whose CTest tests must pass.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(mktemp -d "${TMPDIR:-/tmp}/wasithreads-install.XXXXXX")
trap 'rm -rf "$prefix"' EXIT
bash scripts/install.sh "$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"

fail() { echo "check-install: $*" >&2; exit 1; }
# The SONAME is the full version (every 0.x release may break the ABI), and it is the
# installed file's name; libwasithreads.so points at it for -lwasithreads.
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
soname=libwasithreads.so.$version
[ "$(readlink "$prefix/lib/libwasithreads.so")" = "$soname" ] || fail "libwasithreads.so link"
readelf -d "$prefix/lib/$soname" | grep -qF "Library soname: [$soname]" || fail "SONAME"

# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror examples-c/hello.c $(pkg-config --cflags --libs wasithreads) \
   -Wl,-rpath,"$prefix/lib" -o "$prefix/hello-shared"
readelf -d "$prefix/hello-shared" | grep -qF "Shared library: [$soname]" || fail "hello does not need the SONAME"
"$prefix/hello-shared" | grep -q "guest exited with code 0" || fail "hello (shared) did not run"

# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror examples-c/hello.c $(pkg-config --cflags wasithreads) \
   "$prefix/lib/libwasithreads.a" $(pkg-config --libs-only-l --static wasithreads | sed 's/-lwasithreads//') \
   -o "$prefix/hello-static"
if readelf -d "$prefix/hello-static" | grep -q 'NEEDED.*libwasithreads'; then fail "static hello needs the .so"; fi
"$prefix/hello-static" | grep -q "guest exited with code 0" || fail "hello (static) did not run"

cmake -S examples-c -B "$prefix/cmake-build" -DWASITHREADS_USE_INSTALLED=ON -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/cmake-build" >/dev/null
ctest --test-dir "$prefix/cmake-build" --output-on-failure
echo "check-install: pkg-config (shared and static) and find_package builds work"
