#!/usr/bin/env bash
# Fails when the API in proto/ breaks compatibility (buf's FILE rules, configured in buf.yaml) with
# an earlier commit: by default "the previous main", which is
#
#   * on main itself (CI runs on a fresh clone of main after a merge): HEAD's first parent, i.e.
#     main as it was before the change landed;
#   * on any other branch: the merge-base with main (or origin/main), i.e. where the branch started.
#
# Usage: proto/check_breaking.sh [REF]     REF: any git revision to compare with instead.
#
# Needs the git history up to REF: a shallow clone of depth 1 cannot answer, and the script says
# so rather than passing silently (in CI, fetch at least 2 commits). When REF has no proto/brokkr
# (the API did not exist yet) there is nothing to break, and the script says that and succeeds.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF="${BUF:-$(command -v buf || echo .venv/bin/buf)}"

default_ref() {
    local branch
    branch="$(git rev-parse --abbrev-ref HEAD)"
    if [ "$branch" = "main" ] || [ "$branch" = "HEAD" ]; then
        # on main, or a detached checkout of it (as CI systems do): the commit before
        echo "HEAD^1"
        return
    fi
    local base
    for main in main origin/main; do
        if base="$(git merge-base HEAD "$main" 2>/dev/null)"; then
            echo "$base"
            return
        fi
    done
    echo "HEAD^1"
}

ref="${1:-$(default_ref)}"

if ! commit="$(git rev-parse --verify --quiet "${ref}^{commit}")"; then
    if [ "$(git rev-parse --is-shallow-repository)" = "true" ]; then
        echo "check_breaking: $ref is not in this shallow clone; fetch more history (e.g. fetch-depth: 2)" >&2
        exit 2
    fi
    if [ -z "${1:-}" ] && [ "$(git rev-list --count HEAD)" = "1" ]; then
        echo "check_breaking: HEAD is the first commit; no earlier API to compare with"
        exit 0
    fi
    echo "check_breaking: cannot resolve $ref" >&2
    exit 2
fi

if ! git cat-file -e "${commit}:proto/brokkr" 2>/dev/null; then
    echo "check_breaking: ${ref} (${commit:0:12}) has no proto/brokkr; no earlier API to break"
    exit 0
fi

echo "check_breaking: comparing proto/ with ${ref} (${commit:0:12})"
# buf.yaml at the repository root is a v2 workspace (proto and proto/vendor); the same layout is
# read from the commit compared with.
"$BUF" breaking --against ".git#ref=${commit}"
echo "check_breaking: no breaking changes"
