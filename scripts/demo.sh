#!/usr/bin/env bash
# Install CloudHelp into a virtual env, load the demo data into the embedded SQLite database,
# with 60 days of history, and start the server. Its first line is the URL to open. Extra
# arguments go to the server (e.g. --port 9000). Running it again keeps enrolled kiosks and the
# enrolment links printed before.
set -euo pipefail
cd "$(dirname "$0")/.."
host=${CLOUDHELP_HOST:-127.0.0.1} port=${CLOUDHELP_PORT:-8080}
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --port) port=${args[i + 1]:-$port} ;;
    --port=*) port=${args[i]#--port=} ;;
    --host) host=${args[i + 1]:-$host} ;;
    --host=*) host=${args[i]#--host=} ;;
  esac
done
case $host in 0.0.0.0 | :: | "") host=127.0.0.1 ;; esac
echo "CloudHelp demo: http://$host:$port/ (installing and loading the demo data first; the server says when it is running)"
VENV=${CLOUDHELP_VENV:-$PWD/.venv}
. scripts/venv.sh
make_venv "$VENV"
log=$(mktemp)
if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e . >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
exec "$VENV/bin/cloudhelp" demo --history 60 --serve "$@"
