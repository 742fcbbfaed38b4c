#!/usr/bin/env bash
# Install CloudHelp into a virtual env, load the demo data into the embedded SQLite database,
# with 60 days of history, and start the server. Extra arguments go to `cloudhelp serve`
# (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CLOUDHELP_VENV:-$PWD/.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check .
"$VENV/bin/cloudhelp" demo --history 60  # 60 days of past activity for the board and reports
exec "$VENV/bin/cloudhelp" serve "$@"
