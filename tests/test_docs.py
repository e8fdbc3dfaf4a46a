"""The docs cannot drift from the CLI: every ``tvbench`` command shown in README.md and docs/*.md parses with the
installed command's own parser (options exist, values convert, required arguments are there), and every link
between the pages lands on a heading that exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.main import get_command

from tvbench.cli import CLICK_EXCEPTION, app

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SYNOPSIS = re.compile(r"\[|\||\.\.\.|<|\{|…")  # usage synopses (`[--limit N]`, `a|b`), not commands


def commands(text: str) -> list[str]:
    """``tvbench ...`` command lines in code blocks and inline code spans."""
    found = []
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S)
    spans = re.findall(r"(?<!`)`([^`\n]+)`(?!`)", re.sub(r"```.*?```", "", text, flags=re.S))
    for chunk in blocks + spans:
        chunk = chunk.replace("\\\n", " ")
        for line in chunk.splitlines():
            line = line.split(" #", 1)[0]
            for part in re.split(r"&&|;|\|\|", line):
                part = part.strip()
                at = part.find("tvbench ")
                if at == -1 or (at and not part[:at].rstrip().endswith(("=", "$")) and "=" not in part[:at]):
                    continue
                command = part[at:].strip()
                if command.split()[1:2] and not SYNOPSIS.search(command):
                    found.append(command)
    return found


def parse(argv: list[str]) -> None:
    """Walk the command groups as the entry point does and make each command's context (no command runs). A bare
    name (`tvbench compare` in a sentence) names a command: it must exist, and its arguments are not required."""
    command = get_command(app)
    name, args, parent = "tvbench", argv, None
    bare = all(re.fullmatch(r"[a-z][a-z-]*", word) for word in argv)
    while True:
        if bare and not args and not hasattr(command, "resolve_command"):
            return  # the command exists
        context = command.make_context(name, list(args), parent=parent)
        if not hasattr(command, "resolve_command"):  # a command, not a group (typer's own copy of click)
            return
        rest = list(getattr(context, "_protected_args", None) or getattr(context, "protected_args", [])) + context.args
        if not rest:
            return
        name, command, args = command.resolve_command(context, rest)
        parent = context


CASES = sorted({(page.name, command) for page in PAGES for command in commands(page.read_text())})


def test_the_pages_show_commands():
    assert len(CASES) >= 40


@pytest.mark.parametrize("page, command", CASES)
def test_every_documented_command_parses(page, command):
    try:
        parse(shlex.split(command)[1:])
    except typer.Exit:
        pass  # --help, --version
    except CLICK_EXCEPTION as exc:
        pytest.fail(f"{page}: `{command}`: {exc.format_message()}")


def _anchor(title: str) -> str:
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def test_every_link_between_the_pages_lands_on_a_heading():
    headings = {page.resolve(): {_anchor(m) for m in re.findall(r"^#{1,4} (.*)$", page.read_text(), flags=re.M)}
                for page in PAGES}
    broken = []
    for page in PAGES:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)#([\w\-]+)\)", page.read_text()):
            where = (page.parent / target).resolve() if target else page.resolve()
            if anchor not in headings.get(where, set()):
                broken.append(f"{page.name}: ({target}#{anchor})")
    assert not broken
