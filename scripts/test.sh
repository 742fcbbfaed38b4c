#!/usr/bin/env bash
# Run the whole CloudHelp test suite on a fresh or used machine.
#
# 1. Installs only what is missing: Debian packages (PostgreSQL, coturn, Redis, nginx, Chromium,
#    CJK fonts) and the Python packages into a virtual env (.venv).
# 2. Re-runs itself inside a private network namespace that has only the loopback interface
#    (and a private PID namespace, so every service and browser dies with the run).
# 3. There it starts PostgreSQL, coturn and Redis on loopback, runs the lint step (ruff, the import
#    contracts with lint-imports, mypy through scripts/mypy_ratchet.py) beside pytest (the whole
#    suite on pytest-xdist workers), stops each service by its PID, and exits non-zero on any
#    failure.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k catalog
# While iterating, `bash scripts/test.sh --no-lint tests/test_x.py` skips the lint step (CI never
# does).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${CLOUDHELP_VENV:-$ROOT/.venv}
# When the command started (kept by the run inside the namespace): the time spent installing
# and starting services before pytest is printed with pytest's.
export CLOUDHELP_TEST_STARTED=${CLOUDHELP_TEST_STARTED:-$(date +%s)}

if [ "${1:-}" != "--inside" ]; then
  # --- Debian packages, each only when absent ------------------------------------------------
  missing=()
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  command -v turnserver >/dev/null || missing+=(coturn)
  command -v redis-server >/dev/null || missing+=(redis-server)  # tests/test_redis_broker.py
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)  # tests/test_deploy_nginx.py
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromium-headless-shell >/dev/null || missing+=(chromium-headless-shell)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v nft >/dev/null || missing+=(nftables)  # tests/test_network_paths.py: NAT, loss
  command -v openssl >/dev/null || missing+=(openssl)
  fc-list 2>/dev/null | grep -i "cjk" >/dev/null || missing+=(fonts-noto-cjk)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "test.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # --- Python packages into a virtual env ----------------------------------------------------
  . scripts/venv.sh
  make_venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"
  # --- Everything else runs with loopback only -----------------------------------------------
  exec unshare --net --pid --fork --kill-child --mount-proc bash "$0" --inside "$@"
fi
shift
LINT=1
if [ "${1:-}" = "--no-lint" ]; then LINT=0; shift; fi
ip link set lo up

PGBIN=$(dirname "$(compgen -G "/usr/lib/postgresql/*/bin/initdb" | sort -V | tail -n 1)")
RUN=$(mktemp -d /tmp/cloudhelp-test.XXXXXX)
chmod 755 "$RUN"
free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi; }

PG_PID=""
TURN_PID=""
REDIS_PID=""
stop_pid() {  # stop_pid PID SIGNAL: signal a service and wait (5 s at most) for it to exit
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill "-$2" "$1"
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
  fi
}
stop_services() {
  stop_pid "$REDIS_PID" TERM
  stop_pid "$TURN_PID" TERM
  stop_pid "$PG_PID" INT
  rm -rf "$RUN"
}
trap stop_services EXIT

# --- PostgreSQL: a throwaway cluster -----------------------------------------------------------
mkdir -p "$RUN/pg" "$RUN/pgsock"
[ "$(id -u)" = 0 ] && chown postgres "$RUN/pg" "$RUN/pgsock"
PG_PORT=$(free_port)
as_postgres "$PGBIN/initdb -D $RUN/pg -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8" >"$RUN/initdb.log" 2>&1 \
  || { cat "$RUN/initdb.log"; exit 1; }
as_postgres "$PGBIN/pg_ctl -D $RUN/pg -w -l $RUN/pgsock/pg.log -o '-p $PG_PORT -k $RUN/pgsock -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 ${CLOUDHELP_TEST_PG_EXTRA:-}' start" >/dev/null \
  || { cat "$RUN/pgsock/pg.log"; exit 1; }
PG_PID=$(head -n 1 "$RUN/pg/postmaster.pid")
export CLOUDHELP_TEST_PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"

# --- coturn: TURN with short-lived credentials (use-auth-secret), relaying on loopback only ------
TURN_PORT=$(free_port)
TURN_SECRET=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))')
turnserver -n --no-cli --no-tls --no-dtls --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 \
  --listening-port="$TURN_PORT" --min-port=49160 --max-port=49400 --use-auth-secret \
  --static-auth-secret="$TURN_SECRET" --realm=cloudhelp.test --allow-loopback-peers \
  --fingerprint --log-file="$RUN/turn.log" --simple-log >/dev/null 2>&1 &
TURN_PID=$!
export CLOUDHELP_TEST_TURN_URL="turn:127.0.0.1:$TURN_PORT"
export CLOUDHELP_TEST_TURN_SECRET="$TURN_SECRET"

# --- Redis: the broker between server processes (tests/test_redis_broker.py); no persistence ---
REDIS_PORT=$(free_port)
# Its latency monitor records any command or event of its own that took over 100 ms, printed
# after pytest: tests have seen a Redis command time out (5 s) under load, and this says whether
# the server itself stalled then.
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
  --latency-monitor-threshold 100 \
  --dir "$RUN" --logfile "$RUN/redis.log" --daemonize no >/dev/null 2>&1 &
REDIS_PID=$!
for _ in $(seq 50); do
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  kill -0 "$REDIS_PID" 2>/dev/null || { cat "$RUN/redis.log"; exit 1; }
  sleep 0.1
done
export CLOUDHELP_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
# The page tests run Debian's chromium-headless-shell (Chromium's old headless mode, the one
# Playwright itself uses): 21-23 % less of the machine's CPU than the desktop browser run
# --headless on the same 44 page tests, 8 December (docs/testing.md). Pages that need what the
# shell lacks (device prompts, the PDF viewer, an insecure origin as secure) run in the browser
# itself, CLOUDHELP_TEST_CHROMIUM_FULL (tests/browserkit.chromium_path).
export CLOUDHELP_TEST_CHROMIUM="${CLOUDHELP_TEST_CHROMIUM:-$(command -v chromium-headless-shell)}"
export CLOUDHELP_TEST_CHROMIUM_FULL="${CLOUDHELP_TEST_CHROMIUM_FULL:-$(command -v chromium)}"
# Password hashes made during the run use argon2's cheapest parameters (cloudhelp/domain/
# passwords.py; ~80 s of CPU saved). Never set in service; benchmarks run without it.
export CLOUDHELP_INSECURE_TEST_PASSWORD_HASHES=1
# A command run without --data-dir (the CLI tests) keeps its data (secret key, files) under the
# run's folder, never in the home folder's ~/.local/share/cloudhelp (cloudhelp/core/config.py).
export XDG_DATA_HOME="$RUN/xdg-data"

# --- Bytecode ---------------------------------------------------------------------------------
# A machine that sets PYTHONDONTWRITEBYTECODE (this one does) would have every pytest worker and
# every `cloudhelp serve` or command a test starts compile the project's sources again: a
# worker's collection took 15.5 s of CPU so, 7–10 s with the bytecode kept. Compiled once here,
# on both cores; pytest keeps its rewritten test modules beside them (__pycache__, git-ignored).
unset PYTHONDONTWRITEBYTECODE
"$VENV/bin/python" -m compileall -q -j 0 cloudhelp signaling benchmarks scripts >/dev/null

# --- Lint beside the suite ---------------------------------------------------------------------
# The lint step runs in the background while pytest runs (mypy alone takes about a minute); its
# output is shown after pytest's, and either failing fails the command.
LINT_PID=""
if [ "$LINT" = 1 ]; then
  (
    set -e
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/lint-imports" --no-logo --no-cache  # the layering contracts in pyproject.toml
    "$VENV/bin/python" scripts/mypy_ratchet.py
    times >"$RUN/lint.times"  # the step's own, then its commands' user and system time
  ) >"$RUN/lint.log" 2>&1 &
  LINT_PID=$!
fi
# The whole suite (no arguments) runs on CLOUDHELP_TEST_WORKERS pytest-xdist workers (3 by
# default: most tests wait on sockets, browsers and timers, so more than 2 on 2 cores; 4 until
# 7 December, when the host stole a third to a half of the cores' time and the cores were
# never idle with 4, whose tests, starved, ran out of their waits); with
# arguments, one process unless CLOUDHELP_TEST_WORKERS says otherwise. Tests that share a
# module-scoped server stay on one worker (tests/conftest.py groups them).
if [ $# -eq 0 ]; then WORKERS=${CLOUDHELP_TEST_WORKERS:-3}; else WORKERS=${CLOUDHELP_TEST_WORKERS:-0}; fi
XDIST=()
if [ "$WORKERS" != 0 ]; then XDIST=(-n "$WORKERS" --dist loadgroup); fi
# The cores' time during pytest (/proc/stat, in clock ticks): busy, idle, and stolen by the
# hypervisor (a virtual machine whose host is busy runs slower whatever the code does; on
# 7 December half of this machine's time was stolen during a run).
cpu_times() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6, $9}' /proc/stat; }
read -r BUSY0 IDLE0 STEAL0 < <(cpu_times)
# With CLOUDHELP_TEST_CPU_REPORT=1, each test's CPU, its servers and browser included
# (tests/cpukit.py; a thread per worker samples /proc twice a second), goes to
# test-artifacts/test-cpu.log and the heaviest are listed after the run.
if [ -n "${CLOUDHELP_TEST_CPU_REPORT:-}" ]; then
  mkdir -p test-artifacts
  export CLOUDHELP_TEST_CPU_LOG="$ROOT/test-artifacts/test-cpu.log"
  : >"$CLOUDHELP_TEST_CPU_LOG"
fi
echo "test.sh: pytest starts $(($(date +%s) - CLOUDHELP_TEST_STARTED)) s after the command did"
status=0
"$VENV/bin/pytest" "${XDIST[@]}" "$@" || status=$?
read -r BUSY1 IDLE1 STEAL1 < <(cpu_times)
awk -v b=$((BUSY1 - BUSY0)) -v i=$((IDLE1 - IDLE0)) -v s=$((STEAL1 - STEAL0)) 'BEGIN {
  t = b + i + s; if (t == 0) exit
  printf "test.sh: the cores during pytest: %.0f %% busy, %.0f %% idle, %.0f %% stolen by the hypervisor\n",
    100 * b / t, 100 * i / t, 100 * s / t }'
REDIS_STALLS=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --csv latency latest 2>/dev/null |
  awk -F, 'NF >= 4 {gsub(/"/, "", $1); printf "%s%s (latest %s ms, max %s ms)", sep, $1, $3, $4; sep = ", "}')
echo "test.sh: Redis's own stalls over 100 ms: ${REDIS_STALLS:-none}"
# The CPU used beside the tests (not in tests/cpukit's per-test figures): PostgreSQL (the
# postmaster, and every backend that has exited, all reaped by it), Redis and coturn so far.
proc_cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.0f", ($14 + $15 + $16 + $17) / t}' "/proc/$1/stat" 2>/dev/null || echo "?"; }
echo "test.sh: CPU seconds beside the tests: PostgreSQL $(proc_cpu "$PG_PID"), Redis $(proc_cpu "$REDIS_PID"), coturn $(proc_cpu "$TURN_PID")"
if [ -s "${CLOUDHELP_TEST_CPU_LOG:-}" ]; then "$VENV/bin/python" -m tests.cpukit "$CLOUDHELP_TEST_CPU_LOG" 20; fi
if [ -n "$LINT_PID" ]; then
  lint_status=0
  wait "$LINT_PID" || lint_status=$?
  echo "--- lint (ruff, lint-imports, mypy ratchet; CPU: $(awk 'NR == 2 {print "user", $1 ", system", $2}' "$RUN/lint.times" 2>/dev/null)) ---"
  cat "$RUN/lint.log"
  if [ "$lint_status" != 0 ]; then
    echo "test.sh: the lint step failed (exit $lint_status)"
    [ "$status" != 0 ] || status=$lint_status
  fi
fi
exit "$status"
