#!/usr/bin/env bash
# Makes the release artifacts, installable without building Wasmtime or having Rust:
#
#   OUTDIR/wasithreads-<version>-<target triple>.tar.gz
#       wasithreads-<version>-<triple>/lib/libwasithreads.so.<version>  (named by its SONAME)
#                                     /lib/libwasithreads.so -> it, lib/libwasithreads.a
#                                     /include/wasithreads.h, include/wasithreads.hpp
#                                     /bin/wt-run
#                                     /lib/pkgconfig/wasithreads.pc      (prefix=${pcfiledir}/../..)
#                                     /lib/cmake/wasithreads/wasithreadsConfig.cmake
#                                     /lib/cmake/wasithreads/wasithreadsConfigVersion.cmake
#       relocatable: unpack it anywhere, point PKG_CONFIG_PATH or CMAKE_PREFIX_PATH at it.
#   OUTDIR/wasithreads-<version>-py3-none-<platform>.whl
#       the Python package with libwasithreads.so inside (`pip wheel bindings/python` with
#       WASITHREADS_PREBUILT_LIB), for `pip install` with no Rust toolchain.
#
#   bash scripts/dist.sh [--prebuilt DIR] [OUTDIR]     (OUTDIR default: <target dir>/dist)
#
# Both are made from the one release build: scripts/build.sh (nothing is compiled again
# after `cargo build --release` or `cargo test --release`), or DIR's libwasithreads.so and
# .a with --prebuilt (or WASITHREADS_PREBUILT_DIR). The tarball's tree is
# `scripts/install.sh --relocatable`. The wheel's platform tag is manylinux_2_<N>_<arch>
# when the library needs nothing but glibc (at most symbol version 2.<N>), libgcc_s and
# the other libraries the manylinux policy allows, else linux_<arch>. PYTHON (default
# python3) runs pip, which fetches the build backend (setuptools, setuptools-rust).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
usage() { echo "usage: dist.sh [--prebuilt DIR] [OUTDIR]" >&2; exit 2; }
from=${WASITHREADS_PREBUILT_DIR:-}
out=
while [ $# -gt 0 ]; do
  case $1 in
    --prebuilt) [ $# -ge 2 ] || usage; from=$2; shift 2 ;;
    -*) usage ;;
    *) out=$1; shift ;;
  esac
done
if [ -z "$from" ]; then from=$(bash scripts/build.sh); fi
from=$(realpath "$from")
out=$(realpath -m "${out:-$release_dir/../dist}")
triple=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p') || true
triple=${triple:-$(uname -m)-unknown-linux-gnu}
arch=${triple%%-*}
mkdir -p "$out"

# The tarball.
name=wasithreads-$version-$triple
stage=$(mktemp -d "${TMPDIR:-/tmp}/wasithreads-dist.XXXXXX")
trap 'rm -rf "$stage"' EXIT
bash scripts/install.sh --prebuilt "$from" --relocatable "$stage/$name"
tar -C "$stage" --owner=0 --group=0 --numeric-owner -czf "$out/$name.tar.gz" "$name"
echo "dist.sh: $out/$name.tar.gz" >&2

# The wheel's platform tag, from what the library needs of the system.
lib=$from/libwasithreads.so
platform=linux_$arch
glibc_minor=$(objdump -T "$lib" | grep -o 'GLIBC_2\.[0-9]*' | cut -d. -f2 | sort -n | tail -n 1)
unallowed=$(readelf -d "$lib" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' |
  grep -vxE 'libc\.so\.6|libm\.so\.6|libdl\.so\.2|librt\.so\.1|libpthread\.so\.0|libutil\.so\.1|libgcc_s\.so\.1|libstdc\+\+\.so\.6|ld-linux-[a-z0-9-]+\.so\.[12]' || true)
if [[ $triple == *-linux-gnu ]] && [ -n "$glibc_minor" ] && [ -z "$unallowed" ]; then
  platform=manylinux_2_$((glibc_minor > 17 ? glibc_minor : 17))_$arch
fi
rm -f "$out"/wasithreads-*.whl
WASITHREADS_PREBUILT_LIB=$lib WASITHREADS_WHEEL_PLATFORM=$platform \
  "${PYTHON:-python3}" -m pip wheel --disable-pip-version-check -q --no-deps -w "$out" ./bindings/python
echo "dist.sh: $(ls "$out"/wasithreads-*.whl) (needs glibc 2.${glibc_minor:-?})" >&2
