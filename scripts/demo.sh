#!/usr/bin/env bash
# Install CloudHelp into a virtual env, load the demo data into the embedded SQLite database,
# with 60 days of history, and start the server. Its first line is the URL to open. Extra
# arguments go to the server (e.g. --port 9000). Running it again keeps enrolled kiosks and the
# enrolment links printed before.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CLOUDHELP_VENV:-$PWD/.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check .
exec "$VENV/bin/cloudhelp" demo --history 60 --serve "$@"
