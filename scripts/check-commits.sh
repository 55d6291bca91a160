#!/usr/bin/env bash
# Checks the commit messages since the tree adopted the rule (commit c3c56ae, "Format the
# tree with rustfmt"): a subject of at most 72 characters, then a blank line before any
# body. Older history is left as it was. Run from anywhere:
#     bash scripts/check-commits.sh
set -euo pipefail
cd "$(dirname "$0")/.."
since=c3c56ae
if ! git rev-parse -q --verify "$since^{commit}" >/dev/null 2>&1; then
    echo "check-commits: $since is not in this clone (shallow?); skipped" >&2
    exit 0
fi
bad=0
for c in $(git rev-list --no-merges "$since^..HEAD"); do
    subject=$(git log -1 --format=%s "$c")
    second=$(git log -1 --format=%B "$c" | sed -n 2p)
    if [ ${#subject} -gt 72 ]; then
        echo "check-commits: $(git log -1 --format=%h "$c"): subject is ${#subject} characters (most 72): $subject" >&2
        bad=1
    fi
    if [ -n "$second" ]; then
        echo "check-commits: $(git log -1 --format=%h "$c"): no blank line after the subject" >&2
        bad=1
    fi
done
[ $bad -eq 0 ] && echo "check-commits: every subject since $since is at most 72 characters"
exit $bad
