#!/usr/bin/env bash
# Prints the Debian version of this tree: v1.2.3 → 1.2.3; 4 commits after it → 1.2.3+4.gSHA;
# no release tag yet → 0.0.0+gitYYYYMMDD.SHA (the commit's date); outside git → 0.0.0+unknown.
set -euo pipefail
cd "$(dirname "$0")/.."
if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
  d=${d#v}
  case "$d" in
    *-*-g*) base=${d%-*-g*}; rest=${d#"$base"-}; echo "$base+${rest//-/.}" ;;
    *) echo "$d" ;;
  esac
elif sha=$(git rev-parse --short=7 HEAD 2>/dev/null); then
  echo "0.0.0+git$(git log -1 --format=%cd --date=format:%Y%m%d).$sha"
else
  echo "0.0.0+unknown"
fi
