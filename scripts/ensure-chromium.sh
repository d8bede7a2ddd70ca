#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium, installing Debian's `chromium` package
# when none is there (a fresh CI machine). Browser tests (vitest's Chromium project, the
# Service Worker end-to-end tests) and the storage bench call this before they launch it.
# Override with CHROMIUM_PATH=/path/to/chrome.
set -euo pipefail

if [[ -n "${CHROMIUM_PATH:-}" ]]; then
  echo "$CHROMIUM_PATH"
  exit 0
fi
for candidate in /usr/bin/chromium /usr/bin/chromium-browser; do
  if [[ -x "$candidate" ]]; then
    echo "$candidate"
    exit 0
  fi
done

if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
  echo "ensure-chromium: no Chromium found and cannot install it (needs root and apt-get); set CHROMIUM_PATH" >&2
  exit 1
fi
echo "ensure-chromium: installing Debian's chromium package…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq chromium >&2
echo /usr/bin/chromium
