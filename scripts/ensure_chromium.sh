#!/usr/bin/env bash
# Makes sure headless Chromium is available for the browser test (tests/test_server_e2e.py).
# Installs Debian's `chromium` package non-interactively when it is missing and we are root; otherwise says
# how to install it and exits 0 (the browser test then skips with that reason). Never fails the test run.
set -uo pipefail
for exe in chromium chromium-browser google-chrome; do
  if command -v "$exe" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_chromium: no chromium found; install it (Debian: apt-get install chromium) for the browser test" >&2
  exit 0
fi
echo "ensure_chromium: installing Debian's chromium for the browser test" >&2
export DEBIAN_FRONTEND=noninteractive
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-liberation; } </dev/null >/dev/null 2>&1 \
  || echo "ensure_chromium: apt-get install chromium failed; the browser test will skip" >&2
exit 0
