#!/usr/bin/env bash
# Checks the release artifacts as a new user gets them (scripts/dist.sh, from the one
# release build, nothing compiled again):
# - the tarball, unpacked into a fresh directory (it is relocatable): its layout; hello.c
#   built with pkg-config (PKG_CONFIG_PATH) and with CMake's
#   find_package(wasithreads <major.minor> CONFIG REQUIRED), both run; a request for the
#   next minor version is refused; bin/wt-run runs a module;
# - the wheel, pip-installed with --no-index into a fresh venv with no cargo on the PATH,
#   runs a module through `import wasithreads`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
repo=$PWD
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wasithreads-dist-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check-dist: $*" >&2; exit 1; }

bash scripts/dist.sh "$tmp/dist"
tarball=$(ls "$tmp"/dist/wasithreads-"$version"-*.tar.gz)
wheel=$(ls "$tmp"/dist/wasithreads-"$version"-py3-none-*.whl)
mkdir "$tmp/user"
tar -xzf "$tarball" -C "$tmp/user"
root=$(ls -d "$tmp"/user/wasithreads-"$version"-*)
for f in "lib/$soname" lib/libwasithreads.a include/wasithreads.h include/wasithreads.hpp bin/wt-run \
         lib/pkgconfig/wasithreads.pc lib/cmake/wasithreads/wasithreadsConfig.cmake \
         lib/cmake/wasithreads/wasithreadsConfigVersion.cmake; do
  [ -f "$root/$f" ] || fail "the tarball has no $f"
done
[ "$(readlink "$root/lib/libwasithreads.so")" = "$soname" ] || fail "lib/libwasithreads.so is not a link to $soname"

# pkg-config, from the unpacked tree (the .pc finds its prefix from its own location).
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror examples-c/hello.c \
   $(PKG_CONFIG_PATH="$root/lib/pkgconfig" pkg-config --cflags --libs wasithreads) \
   -Wl,-rpath,"$root/lib" -o "$tmp/hello-pkg-config"
"$tmp/hello-pkg-config" | grep -q "guest exited with code 0" || fail "hello (pkg-config) did not run"

# CMake: find_package with this major.minor; the next minor must not be accepted.
major_minor=${version%.*}
next_minor="${version%%.*}.$(( $(echo "$version" | cut -d. -f2) + 1 ))"
mkdir "$tmp/app"
cp examples-c/hello.c "$tmp/app/"
cat > "$tmp/app/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(app C)
find_package(wasithreads $next_minor CONFIG QUIET)
if(wasithreads_FOUND)
  message(FATAL_ERROR "find_package(wasithreads $next_minor) accepted \${wasithreads_VERSION}")
endif()
find_package(wasithreads $major_minor CONFIG REQUIRED)
add_executable(hello hello.c)
target_link_libraries(hello PRIVATE wasithreads::wasithreads)
CMAKE
cmake -S "$tmp/app" -B "$tmp/app/build" -DCMAKE_PREFIX_PATH="$root" >/dev/null
cmake --build "$tmp/app/build" >/dev/null
"$tmp/app/build/hello" | grep -q "guest exited with code 0" || fail "hello (find_package) did not run"

status=0
"$root/bin/wt-run" --no-cache examples-c/tests/exit.wat 7 || status=$?
[ "$status" = 7 ] || fail "bin/wt-run exited with $status, not the guest's 7"

# The wheel: a fresh venv, no index, no Rust toolchain on the PATH.
"${PYTHON:-python3}" -m venv "$tmp/venv"
nocargo_path=$tmp/venv/bin:/usr/local/bin:/usr/bin:/bin
PATH=$nocargo_path "$tmp/venv/bin/python" -m pip install --disable-pip-version-check -q --no-index "$wheel"
cd "$tmp"
out=$(PATH=$nocargo_path "$tmp/venv/bin/python" - "$repo/examples-c/tests/exit.wat" <<'PY'
import sys, wasithreads as wt
assert wt.library_path().startswith(sys.prefix), wt.library_path()
exit = wt.Engine().load(sys.argv[1]).run(args=["exit.wat", "7"])
print(exit.kind.name, exit.code, wt.version())
PY
)
[ "$out" = "CODE 7 $version" ] || fail "the wheel's module run printed '$out', not 'CODE 7 $version'"
echo "check-dist: the tarball (layout, pkg-config, find_package $major_minor, wt-run) and the wheel ($(basename "$wheel")) work"
