"""mypy in the test command's lint step: a type check whose error count only goes down.

signaling/ and cloudhelp/core/ must be clean under mypy's strict checks (pyproject.toml names
them). Elsewhere the errors may not outnumber .ci/mypy-baseline.txt; when they fall below it the
step fails too, until the baseline is lowered (``--update`` writes the new count), so an error
fixed stays fixed and a new one cannot hide behind it.

    .venv/bin/python scripts/mypy_ratchet.py            # check
    .venv/bin/python scripts/mypy_ratchet.py --update   # after fixing errors: lower the baseline
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / ".ci" / "mypy-baseline.txt"
STRICT = ("signaling/", "cloudhelp/core/")  # held to zero errors
ERROR = re.compile(r"^[^:\s]+\.py:\d+: error: ")


def main(argv: list[str]) -> int:
    """Run mypy (its files and settings come from pyproject.toml); 0 when the ratchet holds."""
    os.chdir(ROOT)
    out, err, status = api.run([])
    errors = [line for line in out.splitlines() if ERROR.match(line)]
    if status not in (0, 1) or (status == 1 and not errors):
        print(out + err, file=sys.stderr)
        print("mypy_ratchet: mypy did not run to the end (see above).", file=sys.stderr)
        return 2
    strict = [line for line in errors if line.startswith(STRICT)]
    counted = len(errors) - len(strict)
    baseline = int(BASELINE.read_text(encoding="utf-8").split()[0])
    if "--update" in argv and not strict and counted <= baseline:
        BASELINE.write_text(f"{counted}\n", encoding="utf-8")
        print(f"mypy_ratchet: baseline {baseline} → {counted}.")
        return 0
    if strict:
        print("\n".join(strict), file=sys.stderr)
        print(f"mypy_ratchet: {len(strict)} error(s) in {' and '.join(STRICT)}, which must have "
              "none.", file=sys.stderr)  # fmt: skip
        return 1
    if counted > baseline:
        print("\n".join(errors), file=sys.stderr)
        print(f"mypy_ratchet: {counted} errors, more than the {baseline} of "
              f"{BASELINE.relative_to(ROOT)}: fix the new ones (listed above).",
              file=sys.stderr)  # fmt: skip
        return 1
    if counted < baseline:
        print(f"mypy_ratchet: {counted} errors, fewer than the baseline {baseline}: lower it "
              "with `.venv/bin/python scripts/mypy_ratchet.py --update` and commit "
              f"{BASELINE.relative_to(ROOT)}.", file=sys.stderr)  # fmt: skip
        return 1
    print(f"mypy_ratchet: {counted} errors outside {' and '.join(STRICT)} (the baseline); none in "
          "them.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
