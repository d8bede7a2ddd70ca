#!/usr/bin/env bash
# Makes Debian's python3-matrix-nio available for the old-client test (matrix-nio still
# speaks /_matrix/client/r0 and ?access_token=). Installs it when missing (a fresh CI machine).
set -euo pipefail
if /usr/bin/python3 -c 'import nio' 2>/dev/null; then exit 0; fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
  echo "ensure-nio: python3-matrix-nio is missing and cannot be installed here (needs root and apt-get)" >&2
  exit 1
fi
echo "ensure-nio: installing Debian's python3-matrix-nio…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq python3-matrix-nio >&2
