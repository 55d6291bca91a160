#!/usr/bin/env bash
# Builds libwasithreads and installs it into PREFIX (default /usr/local):
#   PREFIX/lib/libwasithreads.so.X.Y.Z, libwasithreads.so.X -> it, libwasithreads.so -> .so.X
#   PREFIX/lib/libwasithreads.a
#   PREFIX/include/wasithreads.h
#   PREFIX/lib/pkgconfig/wasithreads.pc                      (pkg-config wasithreads)
#   PREFIX/lib/cmake/wasithreads/wasithreadsConfig.cmake     (find_package(wasithreads))
set -euo pipefail
prefix=$(realpath -m "${1:-/usr/local}")
cd "$(dirname "$0")/.."
cargo build --release --locked
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
major=${version%%.*}
lib="$prefix/lib"
install -d "$lib/pkgconfig" "$lib/cmake/wasithreads" "$prefix/include"
install -m 755 target/release/libwasithreads.so "$lib/libwasithreads.so.$version"
ln -sf "libwasithreads.so.$version" "$lib/libwasithreads.so.$major"
ln -sf "libwasithreads.so.$major" "$lib/libwasithreads.so"
install -m 644 target/release/libwasithreads.a "$lib/libwasithreads.a"
install -m 644 include/wasithreads.h "$prefix/include/wasithreads.h"
subst() { sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@MAJOR@|$major|g" "$1"; }
subst pkg/wasithreads.pc.in > "$lib/pkgconfig/wasithreads.pc"
subst pkg/wasithreadsConfig.cmake.in > "$lib/cmake/wasithreads/wasithreadsConfig.cmake"
echo "installed wasithreads $version into $prefix"
