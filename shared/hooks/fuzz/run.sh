#!/usr/bin/env bash
# Fuzz every webhook parser and the signature checks, SECONDS_EACH (default 300) each:
#   shared/hooks/fuzz/run.sh [SECONDS_EACH] [TARGET...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets the stable
# toolchain build with the sanitizer flags cargo-fuzz passes. Seeds come from the
# real payloads in ../tests/fixtures. Not part of tests/run.sh (it takes half an hour).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
secs=${1:-300}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(gitlab github gitea svn harbor manual signature)
fx=../tests/fixtures
seed() { # seed TARGET NAME HEADERS FILE
    mkdir -p "corpus/$1"
    { printf '\001%b\0' "$3"; cat "$4"; } >"corpus/$1/$2"
    { printf '\000%b\0' "$3"; cat "$4"; } >"corpus/$1/$2-nosecret"
}
seed gitlab push 'X-Gitlab-Event: Push Hook\nX-Gitlab-Token: fuzz-secret-123\nContent-Type: application/json' "$fx/gitlab-push.json"
seed gitlab tag 'X-Gitlab-Event: Tag Push Hook\nContent-Type: application/json' "$fx/gitlab-tag-push.json"
seed github push 'X-GitHub-Event: push\nContent-Type: application/json\nX-GitHub-Delivery: 1' "$fx/github-push.json"
seed github delete 'X-GitHub-Event: push\nContent-Type: application/json' "$fx/github-push-delete.json"
seed gitea push 'X-Gitea-Event: push\nContent-Type: application/json' "$fx/gitea-push.json"
seed harbor push 'Authorization: fuzz-secret-123\nContent-Type: application/json' "$fx/harbor-push-artifact.json"
printf '{"repository_url":"svn://127.0.0.1/repo","revision":5,"author":"a","changed_paths":["/trunk/shop/x"]}' >/tmp/ferry-fuzz-svn.json
seed svn commit 'Authorization: Bearer fuzz-secret-123\nContent-Type: application/json' /tmp/ferry-fuzz-svn.json
printf '{"project":"shop","revision":"1"}' >/tmp/ferry-fuzz-manual.json
seed manual run 'Authorization: Bearer fuzz-secret-123\nContent-Type: application/json' /tmp/ferry-fuzz-manual.json
mkdir -p corpus/signature && printf 'key\n757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\nHello, World!' >corpus/signature/vector

for t in "${targets[@]}"; do
    echo "== fuzzing $t for ${secs}s"
    RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 | grep -E '^#[0-9]+ *DONE|Done [0-9]+ runs|ERROR|panicked|SUMMARY|crash-' || true
done
