"""The ``cloudhelp`` command line.

``main`` parses the arguments (cli/parser.py), imports the one module whose command runs
(``*_commands.py``, one per command group) and runs it; a refusal is one sentence on stderr
(cli/failures.py). Nothing heavy is imported before the command is known.
"""

from __future__ import annotations

import os
import sys

from cloudhelp.cli.failures import explain
from cloudhelp.cli.parser import build_parser, command_of


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status: 0 done, 1 refused, 2 usage or database unreachable,
    130 interrupted, 141 output closed early."""
    args = build_parser().parse_args(argv)
    run = command_of(args)
    import asyncio  # here, not at the top: ``--help`` and usage errors do without it

    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `cloudhelp catalog export | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        told = explain(exc)
        if told is None:
            raise
        print(f"cloudhelp: {told.message}", file=sys.stderr)
        for detail in told.details:
            print(f"  - {detail}", file=sys.stderr)
        return told.status
