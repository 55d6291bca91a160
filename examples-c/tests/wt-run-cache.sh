#!/usr/bin/env bash
# The compile cache of wt-run (CTest wt-run-cache): used on the second run, a damaged
# or foreign entry ignored and replaced, processes filling it at once, --no-cache,
# --cache-dir and a directory others may write to.
#   wt-run-cache.sh WT_RUN GUEST.wat SCRATCH_DIR
set -uo pipefail
WT_RUN=$1 GUEST=$2 SCRATCH=$3
export WT_RUN_CACHE_DEBUG=1
unset WT_RUN_CACHE_DIR
passed=0 failed=0
# check NAME: records whether the command list just before it succeeded.
check() {
    local rc=$?
    if [ $rc = 0 ]; then passed=$((passed + 1)); echo "ok   $1"; else failed=$((failed + 1)); echo "FAIL $1"; echo "$err" | sed 's/^/     /'; fi
}
# run DIR ARGS...: runs wt-run with cache dir DIR; stdout in $out, stderr in $err, status in $status.
run() {
    local dir=$1
    shift
    out=$(WT_RUN_CACHE_DIR=$dir "$WT_RUN" "$@" 2>"$SCRATCH/stderr")
    status=$?
    err=$(cat "$SCRATCH/stderr")
}
has() { grep -q -- "$1" <<<"$err"; }
entries() { find "$1" -name '*.wtc' 2>/dev/null | wc -l; }
leftovers() { find "$1" -name '*.tmp' | wc -l; }

rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"

C=$SCRATCH/cache/sub/dir
run "$C" "$GUEST" 7
[ "$status" = 7 ] && has "cache: miss" && has "cache: stored" && [ "$(entries "$C")" = 1 ] && [ "$(stat -c %a "$C")" = 700 ]
check "first run compiles and stores (creating the directory, mode 0700)"
entry=$(find "$C" -name '*.wtc')
before=$(stat -c %i.%s "$entry")
touch -d '1 hour ago' "$entry"
run "$C" "$GUEST" 7
[ "$status" = 7 ] && has "cache: hit" && [ "$(stat -c %i.%s "$entry")" = "$before" ] &&
    [ $(($(date +%s) - $(stat -c %Y "$entry"))) -lt 600 ]
check "second run loads the entry, does not rewrite it, marks it used"
has "module sha256 $(sha256sum "$GUEST" | cut -c1-64)"
check "the module digest is the file's SHA-256"
WT_RUN_CACHE_DEBUG=portable-sha256 run "$C" "$GUEST" 7
has "cache: hit"
check "portable SHA-256 gives the same key"

# A damaged entry: bytes changed in the payload, then cut short, then empty.
size=$(stat -c %s "$entry")
printf 'XXXXXXXXXXXXXXXX' | dd of="$entry" bs=1 seek=$((size / 2)) conv=notrunc status=none
run "$C" "$GUEST" 7
[ "$status" = 7 ] && has "damaged entry.*checksum mismatch" && has "cache: stored"
check "changed bytes: ignored, recompiled, replaced"
run "$C" "$GUEST" 7
[ "$status" = 7 ] && has "cache: hit"
check "the replaced entry is used"
truncate -s $((size - 1000)) "$entry"
run "$C" "$GUEST" 7
[ "$status" = 7 ] && has "damaged entry.*truncated" && [ "$(stat -c %s "$entry")" = "$size" ]
check "truncated: ignored, recompiled, replaced"
: >"$entry"
run "$C" "$GUEST" 7
[ "$status" = 7 ] && has "damaged entry.*too short"
check "empty: ignored"

# Another module's entry under this module's name (e.g. copied by hand).
other=$SCRATCH/other.wat
sed 's/print-env/print-ENV/' "$GUEST" >"$other"
run "$C" "$other" 7
other_entry=$(grep -o "/[^ ]*\.wtc" <<<"$err" | head -1)
cp "$entry" "$other_entry"
run "$C" "$other" 7
[ "$status" = 7 ] && has "another module's entry"
check "another module's entry: ignored"

# The size cap: the least recently used entries go first, the one just stored stays;
# temporary files of processes that died long ago go, recent ones stay.
L=$SCRATCH/lru
for k in 1 2 3; do sed "s/print-env/print-EN$k/" "$GUEST" >"$SCRATCH/m$k.wat"; done
run "$L" "$SCRATCH/m1.wat" 7
run "$L" "$SCRATCH/m2.wat" 7
entry2=$(grep -o "/[^ ]*\.wtc" <<<"$err" | head -1)
touch -d '2 hours ago' "$L"/*.wtc
run "$L" "$SCRATCH/m2.wat" 7 # a hit: m2 is now the most recently used
: >"$L/dead.wtc.1.0.tmp"
touch -d '2 hours ago' "$L/dead.wtc.1.0.tmp"
: >"$L/live.wtc.2.0.tmp"
size=$(stat -c %s "$entry2")
WT_RUN_CACHE_MAX_MB=0 run "$L" "$SCRATCH/m3.wat" 7
[ "$status" = 7 ] && [ "$(entries "$L")" = 1 ] && has "removed.*least recently used" && [ ! -e "$L/dead.wtc.1.0.tmp" ] &&
    [ -e "$L/live.wtc.2.0.tmp" ]
check "WT_RUN_CACHE_MAX_MB=0 keeps only the entry just stored; old temporary files go"
rm -f "$L"/*
run "$L" "$SCRATCH/m1.wat" 7
run "$L" "$SCRATCH/m2.wat" 7
touch -d '2 hours ago' "$L"/*.wtc
run "$L" "$SCRATCH/m2.wat" 7
WT_RUN_CACHE_MAX_MB=0 run "$L" "$SCRATCH/m3.wat" 7 # removes both others, oldest first
removed=$(grep -o 'removed [0-9a-f]*' <<<"$err" | tr '\n' ' ')
run "$L" "$SCRATCH/m2.wat" 7
has "cache: miss" && [ -n "$removed" ] && [ "$(wc -w <<<"$removed")" = 4 ] &&
    [ "$(cut -d' ' -f4 <<<"$removed").wtc" = "$(basename "$entry2")" ]
check "the least recently used entry is removed first (m1 before m2: $removed)"
WT_RUN_CACHE_MAX_MB=lots run "$L" "$SCRATCH/m1.wat" 7
[ "$status" = 2 ] && has "WT_RUN_CACHE_MAX_MB needs a number"
check "a bad WT_RUN_CACHE_MAX_MB is refused"

# Processes filling the same entry at once all succeed and leave one whole entry.
P=$SCRATCH/parallel
pids=()
for k in 1 2 3 4; do
    WT_RUN_CACHE_DIR=$P "$WT_RUN" "$GUEST" 7 >/dev/null 2>"$SCRATCH/par$k" &
    pids+=($!)
done
codes=""
for pid in "${pids[@]}"; do
    wait "$pid"
    codes="$codes $?"
done
run "$P" "$GUEST" 7
[ "$codes" = " 7 7 7 7" ] && [ "$(entries "$P")" = 1 ] && [ "$(leftovers "$P")" = 0 ] && has "cache: hit"
check "4 processes at once: all ran (statuses:$codes), one entry, no temporary file, then a hit"

run "$SCRATCH/unused" --no-cache "$GUEST" 7
[ "$status" = 7 ] && [ ! -e "$SCRATCH/unused" ] && has "cache: off"
check "--no-cache: nothing read or written"
run "$SCRATCH/unused" -C cache=n "$GUEST" 7
[ "$status" = 7 ] && [ ! -e "$SCRATCH/unused" ]
check "-C cache=n: the same"
run "$SCRATCH/unused" --cache-dir "$SCRATCH/option" "$GUEST" 7
[ "$(entries "$SCRATCH/option")" = 1 ] && [ ! -e "$SCRATCH/unused" ]
check "--cache-dir wins over WT_RUN_CACHE_DIR"
env -u WT_RUN_CACHE_DIR XDG_CACHE_HOME="$SCRATCH/xdg" "$WT_RUN" "$GUEST" 7 2>/dev/null
[ "$(entries "$SCRATCH/xdg/wasithreads")" = 1 ]
check "by default in \$XDG_CACHE_HOME/wasithreads"
env -u WT_RUN_CACHE_DIR -u XDG_CACHE_HOME HOME="$SCRATCH/home" "$WT_RUN" "$GUEST" 7 2>/dev/null
[ "$(entries "$SCRATCH/home/.cache/wasithreads")" = 1 ]
check "else in ~/.cache/wasithreads"

mkdir -p "$SCRATCH/shared"
chmod 0777 "$SCRATCH/shared"
run "$SCRATCH/shared" "$GUEST" 7
[ "$status" = 7 ] && [ "$(entries "$SCRATCH/shared")" = 0 ] && has "not using the compile cache"
check "a directory others may write to is not used"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
