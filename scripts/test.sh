#!/usr/bin/env bash
# Runs every check of the workspace: formatting and clippy, then the unit tests, and the integration tests against a real
# nats-server (the project's own, installed into .local/ if missing) and real databases
# (SQLite files, and PostgreSQL at $JIESU_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo >/dev/null || { echo "test: cargo is missing (install Rust: https://rustup.rs)" >&2; exit 1; }
scripts/install-nats.sh >/dev/null
export NATS_SERVER_BIN="$PWD/.local/bin/nats-server"
export JIESU_TEST_PG_URL="${JIESU_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"

# The page tests drive a real headless Chromium through chromedriver (services/testkit/src/browser.rs):
# install Debian's packages when either is missing, and a Chinese font, so that the screenshots
# a person looks at show the pages' text rather than empty boxes.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || ! fc-list :lang=zh 2>/dev/null | grep -q .; then
  command -v apt-get >/dev/null || { echo "test: chromium, chromedriver or a Chinese font is missing and there is no apt-get: install them" >&2; exit 1; }
  echo "test: installing chromium, chromium-driver and fonts-wqy-microhei (for the page tests)" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei >/dev/null
fi

# Tests in other languages' clients: the Open311 endpoint through Python's georeport
# (channels/web/tests/open311), the worked Python producer through the generic nats-py
# (examples/python): both installed into .local/python when missing.
if [ ! -d .local/python/georeport ] || [ ! -d .local/python/nats ] || [ ! -d .local/python/nkeys ]; then
  echo "test: installing georeport and nats-py into .local/python (for the Open311 and producer tests)" >&2
  python3 -m pip install -q --disable-pip-version-check --target .local/python georeport==0.3.1 'nats-py[nkeys]==2.12.0' >/dev/null
fi
export JIESU_TEST_PYTHONPATH="$PWD/.local/python"

# The PostgreSQL tests are part of the suite, never skipped: say clearly when the server is down.
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "test: starting the local PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 || echo "test: WARNING: PostgreSQL is not answering at 127.0.0.1:5432; the PostgreSQL tests will fail" >&2
fi

# The house style is part of the suite: formatting (rustfmt.toml) and clippy, warnings denied.
echo "test: cargo fmt --check" >&2
cargo fmt --all --check
echo "test: cargo clippy --all-targets -- -D warnings" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings

# cargo prints one "test result" line per test target; add them up into one closing line.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
