#!/usr/bin/env bash
# Installs what the tests need (the package with its test extra, and Debian's chromium for the
# browser tests) and runs the whole test suite. Usage: bash tests/run.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is not installed (apt-get install chromium): the browser tests will be skipped." >&2
  fi
fi
python -m pip install -q -e ".[test]"
status=0
python -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: check the arguments or the tests/ folder." >&2
fi
exit "$status"
