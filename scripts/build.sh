#!/usr/bin/env bash
# Builds libwasithreads (`cargo build --release`) and makes the build tree usable as it
# is: programs linked to the library ask for its SONAME, libwasithreads.so.<version>,
# which cargo does not make, so this adds it as a link to libwasithreads.so in
# $CARGO_TARGET_DIR/release (default target/release). The README's C commands,
# scripts/demo.sh, the examples-c CMake project, scripts/install.sh and scripts/dist.sh
# all build through it. Prints the directory.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
cargo build --release --locked
ln -sfn libwasithreads.so "$release_dir/$soname"
echo "build.sh: $release_dir/$soname -> libwasithreads.so" >&2
echo "$release_dir"
