#!/usr/bin/env bash
# Installs wasithreads into PREFIX (default /usr/local):
#   PREFIX/lib/libwasithreads.so.X.Y.Z (its SONAME: while 0.x every release may break the
#                                      ABI), libwasithreads.so -> it (for -lwasithreads)
#   PREFIX/lib/libwasithreads.a
#   PREFIX/include/wasithreads.h, PREFIX/include/wasithreads.hpp (the C++ wrapper)
#   PREFIX/bin/wt-run                                        (the CLI, examples-c/wt-run.c)
#   PREFIX/lib/pkgconfig/wasithreads.pc                      (pkg-config wasithreads)
#   PREFIX/lib/cmake/wasithreads/wasithreadsConfig.cmake     (find_package(wasithreads 0.1))
#   PREFIX/lib/cmake/wasithreads/wasithreadsConfigVersion.cmake
#
#   bash scripts/install.sh [--prebuilt DIR] [--relocatable] [PREFIX]
#
# The library comes from scripts/build.sh (cargo build --release, in $CARGO_TARGET_DIR or
# target/), or, with --prebuilt DIR (or WASITHREADS_PREBUILT_DIR=DIR), from DIR's
# libwasithreads.so and libwasithreads.a with no cargo at all (its SONAME must be this
# version's). wt-run is compiled with cc against the installed library, as the examples-c
# CMake project builds it, and finds the library through the rpath $ORIGIN/../lib.
# --relocatable writes pkg-config's prefix as ${pcfiledir}/../.. (the CMake files always
# find the prefix from their own location), so the tree can be moved: scripts/dist.sh.
# As root into /usr or /usr/local it also runs ldconfig, so that the dynamic loader's
# cache knows the new library; other prefixes are found through an rpath or
# LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
usage() { echo "usage: install.sh [--prebuilt DIR] [--relocatable] [PREFIX]" >&2; exit 2; }
prebuilt=${WASITHREADS_PREBUILT_DIR:-}
relocatable=false
prefix=/usr/local
while [ $# -gt 0 ]; do
  case $1 in
    --prebuilt) [ $# -ge 2 ] || usage; prebuilt=$2; shift 2 ;;
    --relocatable) relocatable=true; shift ;;
    -*) usage ;;
    *) prefix=$1; shift ;;
  esac
done
prefix=$(realpath -m "$prefix")

if [ -n "$prebuilt" ]; then
  from=$prebuilt
else
  from=$(bash scripts/build.sh)
fi
for f in libwasithreads.so libwasithreads.a; do
  [ -f "$from/$f" ] || { echo "install.sh: $from/$f not found" >&2; exit 1; }
done
if ! readelf -d "$from/libwasithreads.so" | grep -qF "Library soname: [$soname]"; then
  echo "install.sh: $from/libwasithreads.so is not version $version (its SONAME is not $soname)" >&2
  exit 1
fi

lib="$prefix/lib"
install -d "$lib/pkgconfig" "$lib/cmake/wasithreads" "$prefix/include" "$prefix/bin"
install -m 755 "$from/libwasithreads.so" "$lib/$soname"
ln -sfn "$soname" "$lib/libwasithreads.so"
install -m 644 "$from/libwasithreads.a" "$lib/libwasithreads.a"
install -m 644 include/wasithreads.h "$prefix/include/wasithreads.h"
install -m 644 examples-c/cpp/wasithreads.hpp "$prefix/include/wasithreads.hpp"

pc_prefix=$prefix
if $relocatable; then pc_prefix='${pcfiledir}/../..'; fi
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
bytes=4
if readelf -h "$from/libwasithreads.so" | grep -q 'Class:.*ELF64'; then bytes=8; fi
subst() {
  sed -e "s|@PREFIX@|$pc_prefix|g" -e "s|@VERSION@|$version|g" -e "s|@MAJOR@|$major|g" \
      -e "s|@MINOR@|$minor|g" -e "s|@BYTES@|$bytes|g" -e "s|@BITS@|$((bytes * 8))|g" "$1"
}
subst pkg/wasithreads.pc.in > "$lib/pkgconfig/wasithreads.pc"
subst pkg/wasithreadsConfig.cmake.in > "$lib/cmake/wasithreads/wasithreadsConfig.cmake"
subst pkg/wasithreadsConfigVersion.cmake.in > "$lib/cmake/wasithreads/wasithreadsConfigVersion.cmake"

# wt-run, as examples-c/CMakeLists.txt builds it (C11 with GNU extensions, threads, libdl),
# linked to the library just installed.
build=$(mktemp -d "${TMPDIR:-/tmp}/wasithreads-wt-run.XXXXXX")
trap 'rm -rf "$build"' EXIT
# shellcheck disable=SC2016 # $ORIGIN is for the dynamic loader
"${CC:-cc}" -std=gnu11 -O2 -Wall -Wextra -I"$prefix/include" examples-c/wt-run.c \
  -L"$lib" -lwasithreads -pthread -ldl -Wl,-rpath,'$ORIGIN/../lib' -o "$build/wt-run"
install -m 755 "$build/wt-run" "$prefix/bin/wt-run"

case $prefix in
  /usr | /usr/local) if [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi ;;
esac
echo "installed wasithreads $version into $prefix" >&2
