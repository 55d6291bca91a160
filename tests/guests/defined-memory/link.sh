#!/bin/sh
# The linker for this guest: rustc's own rust-lld with the arguments rustc gives it for
# wasm32-wasip1-threads, less `--import-memory`, so that the module defines (and
# exports) its shared memory, as some toolchains and hand-written modules do.
for a; do
    shift
    [ "$a" = "--import-memory" ] || set -- "$@" "$a"
done
exec "$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/rust-lld" "$@"
