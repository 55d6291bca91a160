# Sourced by the scripts, from the repository's root: the version (from Cargo.toml), the
# shared library's SONAME (its full version while 0.x, see README "ABI stability") and
# where cargo puts the release build ($CARGO_TARGET_DIR, relative to the repository's
# root as the examples-c CMake project reads it, else target/).
# shellcheck shell=bash disable=SC2034
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
soname=libwasithreads.so.$version
release_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}")/release
