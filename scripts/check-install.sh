#!/usr/bin/env bash
# Checks the ways users link the library, after scripts/build.sh:
# - the build tree: the README's `cc -Iinclude app.c -Ltarget/release ...` line, taken from
#   README.md as it stands, builds examples-c/hello.c, which must start and run;
# - an install into a temporary prefix (scripts/install.sh, from the library just built as
#   a prebuilt one), built against the way users do: hello.c with pkg-config (shared and
#   static), the C++ example against the installed wasithreads.hpp, the installed wt-run
#   running a module, and the whole examples-c CMake project with find_package, whose CTest
#   tests must pass.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
prefix=$(mktemp -d "${TMPDIR:-/tmp}/wasithreads-install.XXXXXX")
trap 'rm -rf "$prefix"' EXIT
fail() { echo "check-install: $*" >&2; exit 1; }

bash scripts/build.sh >/dev/null
# The README's command, with app.c -> hello.c and target/release -> this target dir.
line=$(grep -m 1 '^cc -Iinclude app.c ' README.md) || fail "README.md has no 'cc -Iinclude app.c' line"
cmd=${line//app.c/examples-c/hello.c}
cmd=${cmd//'$PWD/target/release'/@LIBDIR@}
cmd=${cmd//target\/release/@LIBDIR@}
cmd=${cmd//@LIBDIR@/$release_dir}
cmd=${cmd//-o app/-o $prefix/hello-build-tree}
echo "check-install: $cmd"
eval "$cmd"
"$prefix/hello-build-tree" | grep -q "guest exited with code 0" || fail "hello built as the README says did not run"

WASITHREADS_PREBUILT_DIR=$release_dir bash scripts/install.sh "$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"

# The SONAME is the full version (every 0.x release may break the ABI), and it is the
# installed file's name; libwasithreads.so points at it for -lwasithreads.
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

# The C++ wrapper from include/, and wt-run from bin/ (it finds the library by its rpath).
# shellcheck disable=SC2046
c++ -std=c++17 -Wall -Wextra -Werror examples-c/cpp/example.cpp $(pkg-config --cflags --libs wasithreads) \
   -pthread -Wl,-rpath,"$prefix/lib" -o "$prefix/cpp-example"
"$prefix/cpp-example" | grep -q "background run cancelled" || fail "the C++ example did not run"
status=0
"$prefix/bin/wt-run" --no-cache examples-c/tests/exit.wat 7 || status=$?
[ "$status" = 7 ] || fail "bin/wt-run exited with $status, not the guest's 7"

cmake -S examples-c -B "$prefix/cmake-build" -DWASITHREADS_USE_INSTALLED=ON -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/cmake-build" >/dev/null
ctest --test-dir "$prefix/cmake-build" --output-on-failure
echo "check-install: the README build-tree line, pkg-config (C shared and static, C++), wt-run and find_package work"
