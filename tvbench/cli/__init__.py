"""The ``tvbench`` command line: run -> score -> report, plus gate, ls, validate, data and judge.

Every command is a thin layer over the library. Usage mistakes print click's usage message and exit 2, as do
errors a user can fix (one line); a run or a gate that found failures exits 1; Ctrl-C exits 130 and says that
a rerun resumes; a torchvision built for another torch exits 2 naming both versions; anything else is a bug (exit
3) and says how to get its traceback and what to report.
"""

from __future__ import annotations

import errno
import os
import sys

import typer

# Each module registers its commands on `app`, in the order `tvbench --help` lists them.
from tvbench.cli import run, score, report, reproduce, compare, listing, data, tvedit, train, judge  # noqa: F401
from tvbench.cli.app import app, plain_metavars, say
from tvbench.errors import TvbenchError, one_line, torch_pair_mismatch

# typer >= 0.20 raises the exceptions of its own copy of click (typer._click), older typer those of click itself;
# the ClickException base is found through typer's public BadParameter so that either is caught.
CLICK_EXCEPTION: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
INTERRUPTED_EXIT = 130  # 128 + SIGINT, what shells report for Ctrl-C


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors, meaningful exit codes.

    The command is parsed and invoked here rather than through typer's own ``main``, which turns Ctrl-C into a
    silent exit 130 before this function could say that a rerun resumes.
    """
    command = plain_metavars(typer.main.get_command(app))
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with command.make_context("tvbench", args) as ctx:
            command.invoke(ctx)
    except (KeyboardInterrupt, typer.Abort):
        say("interrupted; rerun the same command to resume")
        sys.exit(INTERRUPTED_EXIT)
    except typer.Exit as exc:  # --help, --version, `raise typer.Exit(1)` in a command
        sys.exit(exc.exit_code)
    except CLICK_EXCEPTION as exc:  # usage errors (exit 2), with no arguments the help text
        exc.show()
        sys.exit(exc.exit_code)
    except TvbenchError as exc:
        say(f"error: {exc}")
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # `tvbench ls | head`: the reader left; nothing to report
            sys.stdout = open(os.devnull, "w")  # the final flush must not fail again
            sys.exit(1)
        say(f"error: {one_line(exc)}")  # a file the user named cannot be read or written (permissions, disk full)
        sys.exit(2)
    except Exception as exc:
        if os.environ.get("TVBENCH_DEBUG"):
            raise
        mismatch = torch_pair_mismatch(exc)  # an install whose torchvision was built for another torch: not a bug
        if mismatch:
            say(f"error: {mismatch}")
            sys.exit(2)
        say(f"internal error (a bug in tvbench): {one_line(exc)}; rerun with TVBENCH_DEBUG=1 and report the "
            "traceback, the command and `tvbench --version`")
        sys.exit(3)
    sys.exit(0)


if __name__ == "__main__":
    main()
