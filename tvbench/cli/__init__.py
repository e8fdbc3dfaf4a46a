"""The ``tvbench`` command line: run -> score -> report, plus gate, ls, validate and data.

Every command is a thin layer over the library. Errors a user can fix print one line and exit 2; a run
or a gate that found failures exits 1; anything else is a bug and says how to get its traceback.
"""

from __future__ import annotations

import os
import sys

import click

# Each module registers its commands on `app`, in the order `tvbench --help` lists them.
from tvbench.cli import run, score, report, compare, listing, data, tvedit, train  # noqa: F401
from tvbench.cli.app import app, say
from tvbench.errors import TvbenchError, one_line


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors, meaningful exit codes."""
    try:
        code = app(args=argv, standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        say("interrupted; rerun the same command to continue where it stopped")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TvbenchError as exc:
        say(f"error: {exc}")
        sys.exit(exc.exit_code)
    except OSError as exc:  # a file the user named cannot be read or written (permissions, disk full, ...)
        say(f"error: {one_line(exc)}")
        sys.exit(2)
    except Exception as exc:
        if os.environ.get("TVBENCH_DEBUG"):
            raise
        say(f"internal error: {one_line(exc)} (set TVBENCH_DEBUG=1 to see the traceback)")
        sys.exit(3)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
