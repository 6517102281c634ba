#!/usr/bin/env bash
# Create a Subversion repository served by the test svnserve.
#
#   svn-repo.sh create NAME   creates $FERRY_TEST_SVN_ROOT/NAME (svnadmin create), writes its
#                             svnserve.conf (anon-access = none, auth-access = write,
#                             password-db = passwd) and passwd (user ferry / the per-run password),
#                             and prints its URL ($FERRY_TEST_SVN_URL/NAME).
#
# Reads FERRY_TEST_SVN_ROOT, FERRY_TEST_SVN_USER, FERRY_TEST_SVN_PASSWORD and FERRY_TEST_SVN_URL from
# the environment, or from $FERRY_TEST_STATE/env when they are not set. Running it again on an
# existing repository only rewrites the two files (its history is kept).
set -euo pipefail

die() {
    echo "svn-repo.sh: error: $*" >&2
    exit 1
}
usage() {
    sed -n '2,7s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

[[ $# -eq 2 && "$1" == create ]] || usage
name=$2
[[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "bad repository name '$name' (letters, digits, . _ -)"

if [[ -z "${FERRY_TEST_SVN_ROOT:-}" || -z "${FERRY_TEST_SVN_PASSWORD:-}" ]] &&
    [[ -n "${FERRY_TEST_STATE:-}" && -r "$FERRY_TEST_STATE/env" ]]; then
    # shellcheck source=/dev/null
    source "$FERRY_TEST_STATE/env"
fi
root=${FERRY_TEST_SVN_ROOT:?not set: start svnserve first (tests/lib/components.sh ferry_start_svnserve)}
password=${FERRY_TEST_SVN_PASSWORD:?not set: start svnserve first}
user=${FERRY_TEST_SVN_USER:-ferry}

repo="$root/$name"
[[ -e "$repo/format" ]] || svnadmin create "$repo"
cat >"$repo/conf/svnserve.conf" <<CONF
[general]
anon-access = none
auth-access = write
password-db = passwd
realm = ferry-test
CONF
cat >"$repo/conf/passwd" <<CONF
[users]
$user = $password
CONF
chmod 600 "$repo/conf/passwd"
echo "${FERRY_TEST_SVN_URL:-svn://127.0.0.1:3690}/$name"
