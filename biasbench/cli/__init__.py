"""The `biasbench` command: the only place that parses arguments and prints.

One module per command group (`generate`, `training`: run and sweep, `results`: leaderboard, plot, density,
budget, report, `datasets`: publish, export, verify, preview), each with its handlers and a `register(sub)`
that declares its options; `common` holds what they share.
"""

from __future__ import annotations

import argparse
import codecs
import errno
import os
import sys
from typing import Sequence

from biasbench import __version__
from biasbench.cli import datasets, generate, results, training
from biasbench.cli.common import _Parser
from biasbench.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="biasbench",
        description=(
            "Deterministic datasets with spurious correlations (bias-conflicting ratios "
            "0.5/1/2/5%) and one common protocol to benchmark debiasing methods."
        ),
        epilog=(
            "examples:\n"
            "  biasbench generate cmnist --ratio 0.01\n"
            "  biasbench run --method reweighted_erm --seeds 3\n"
            "  biasbench leaderboard --results results --out leaderboard\n"
            "  biasbench sweep --methods all --ratios all --seeds 3 --launcher ray\n"
            "  biasbench report --results results   # -> leaderboard/REPRODUCTION.md\n"
            "\nrun 'biasbench COMMAND --help' for a command's options."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"biasbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    for group in (generate, training, results, datasets):
        group.register(sub)
    return parser


# What the output uses beyond ASCII, as a console that cannot encode it shows it (anything else: '?').
_ASCII = {"±": "+-", "·": ".", "–": "-", "—": "-", "×": "x", "≥": ">=", "≤": "<=", "→": "->", "…": "...",
          "✓": "ok"}


def _ascii_fallback(exc: UnicodeError):
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    text = exc.object[exc.start:exc.end]
    return "".join(_ASCII.get(ch, "?") for ch in text), exc.end


codecs.register_error("biasbench-ascii", _ascii_fallback)


def _console_safe() -> None:
    """A console that cannot encode '±' (PYTHONIOENCODING=ascii, a latin-1 terminal) gets '+-' instead of a
    crash after the results were written."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and (getattr(stream, "encoding", "") or "").lower().replace("-", "") != "utf8":
            try:
                reconfigure(errors="biasbench-ascii")
            except (ValueError, OSError):
                pass


# Errors of the machine, not of the program: one line naming the cause (atomic writes left the old files).
_MACHINE = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
            errno.EROFS: "the file system is read-only"}


def main(argv: Sequence[str] | None = None) -> int:
    _console_safe()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except UserError as exc:
        print(f"biasbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like (an OSError: caught before those)
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as exc:
        if exc.errno not in _MACHINE:
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        print(f"biasbench {args.command}: error: {_MACHINE[exc.errno]}{where}; what was complete before is "
              "unchanged and nothing half-written was left in place: free some space and run it again",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was left in place; re-run to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
