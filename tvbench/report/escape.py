"""Text escaping per report format, for every string a user controls (method, benchmark and model names).

A method name comes from a folder name and a benchmark name from ``benchmark.json``, so a report must show
``<script>``, ``|`` or ``\\`` as text, never as markup. HTML uses :func:`html.escape`; CSV and JSON quote by
their own rules.
"""

from __future__ import annotations

import html
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")  # newlines, tabs, escape codes: a table row or a comment is one line

# CommonMark lets a backslash escape any ASCII punctuation; these would otherwise format (emphasis, code, links,
# strikethrough) or end a table cell (|). An underscore inside a word never starts emphasis, so `my_method` stays
# readable in the terminal. `<`, `>`, `&` and quotes are HTML-escaped instead, so no raw HTML survives in
# renderers that allow it.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")

# Every character LaTeX treats specially in text, each mapped in one pass (so escapes are not escaped again).
# `<`, `>` and `|` print as other glyphs in the default OT1 font encoding, hence the text commands.
_LATEX = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "%": r"\%",
          "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
          ">": r"\textgreater{}", "|": r"\textbar{}"}
_LATEX_SPECIAL = re.compile("|".join(re.escape(char) for char in _LATEX))


def one_line_text(text: object) -> str:
    """``text`` as one line: control characters (newlines included) become single spaces."""
    return _CONTROL.sub(" ", str(text))


def markdown_text(text: object) -> str:
    """Literal text for a Markdown table cell or paragraph (GitHub-flavoured or CommonMark)."""
    return html.escape(_MARKDOWN_SPECIAL.sub(r"\\\1", one_line_text(text)), quote=True)


def latex_text(text: object) -> str:
    """Literal text for a LaTeX document, a table cell or a ``%`` comment."""
    return _LATEX_SPECIAL.sub(lambda match: _LATEX[match.group(0)], one_line_text(text))


def html_text(text: object) -> str:
    """Literal text for HTML element content or a quoted attribute."""
    return html.escape(str(text), quote=True)
