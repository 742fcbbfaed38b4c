# Sourced by scripts/demo.sh and scripts/test.sh: make_venv DIR makes the virtual env at DIR
# when it is missing, with a current pip. Debian 12's bundled pip (23.x) spends ~45 s of CPU
# matching wheel tags against a large package index before installing anything; pip 25 and
# later about a third of that (measured: `pip install -e ".[test]"` into a new env 56 s with
# the bundled pip, 42 s after the 3-s upgrade).
make_venv() {
  [ -x "$1/bin/python" ] && return 0
  python3 -m venv "$1"
  "$1/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip \
    || echo "could not upgrade pip in $1; going on with the bundled one" >&2
}
