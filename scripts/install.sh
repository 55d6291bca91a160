#!/usr/bin/env bash
# Builds libwasithreads and installs it into PREFIX (default /usr/local):
#   PREFIX/lib/libwasithreads.so.X.Y.Z (its SONAME: while 0.x every release may break the
#                                      ABI), libwasithreads.so -> it (for -lwasithreads)
#   PREFIX/lib/libwasithreads.a
#   PREFIX/include/wasithreads.h
#   PREFIX/lib/pkgconfig/wasithreads.pc                      (pkg-config wasithreads)
#   PREFIX/lib/cmake/wasithreads/wasithreadsConfig.cmake     (find_package(wasithreads))
# As root into /usr or /usr/local it also runs ldconfig, so that the dynamic loader's
# cache knows the new library; other prefixes are found through an rpath or
# LD_LIBRARY_PATH.
set -euo pipefail
prefix=$(realpath -m "${1:-/usr/local}")
cd "$(dirname "$0")/.."
cargo build --release --locked
target=${CARGO_TARGET_DIR:-target}/release
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
soname=libwasithreads.so.$version
lib="$prefix/lib"
install -d "$lib/pkgconfig" "$lib/cmake/wasithreads" "$prefix/include"
install -m 755 "$target/libwasithreads.so" "$lib/$soname"
ln -sf "$soname" "$lib/libwasithreads.so"
install -m 644 "$target/libwasithreads.a" "$lib/libwasithreads.a"
install -m 644 include/wasithreads.h "$prefix/include/wasithreads.h"
subst() { sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" "$1"; }
subst pkg/wasithreads.pc.in > "$lib/pkgconfig/wasithreads.pc"
subst pkg/wasithreadsConfig.cmake.in > "$lib/cmake/wasithreads/wasithreadsConfig.cmake"
case $prefix in
  /usr | /usr/local) if [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi ;;
esac
echo "installed wasithreads $version into $prefix"
