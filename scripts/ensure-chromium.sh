#!/usr/bin/env bash
# Run by `npm run test:browser`: installs Debian's chromium when /usr/bin/chromium is missing.
# The browser tests drive it with playwright-core; no browser is ever downloaded by Playwright.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "ensure-chromium: /usr/bin/chromium missing; installing Debian's chromium" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
# Debian's wrapper script prints a harmless shell warning on some machines: keep only the version.
/usr/bin/chromium --version 2>/dev/null
