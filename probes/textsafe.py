"""Server strings as data: one function per place a string from a backend is shown or stored.

A step name, a message, a health body or a label is data. Shown raw it can
restyle or crash the terminal (rich markup, ESC sequences, bidi overrides),
inject a heading or a link into Markdown, run as a formula in a spreadsheet,
or switch matplotlib into maths mode and crash the report. Each function
below makes a string inert for exactly one destination, is pure (no I/O)
and never raises on any `str`:

    for_terminal(s)       rich markup string (control characters visible, tags escaped)
    terminal_text(s)      rich Text for table cells: no markup, no emoji codes, no highlighting
    for_markdown_cell(s)  one cell of a GitHub-flavoured Markdown table
    for_markdown_text(s)  inline Markdown text (a paragraph, a note, a heading's text)
    for_csv(s)            one CSV cell (OWASP formula neutralisation); csv_safe_frame(df) for a table
    for_plot_label(s)     a matplotlib title, label or legend entry (no mathtext)
    clip(s, limit)        a bounded copy, for server strings before they are stored

HTML needs no helper here: `html.escape` is complete for element content and
quoted attributes.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich and pandas are imported where used: `probes run` start-up time matters
    import pandas as pd
    from rich.text import Text

# Limits for server strings before they are stored (clip). A probe stores one
# sample per poll (about 600 in a 5-minute timeout) and every run keeps them,
# so the bound matters more than the exact number; each is far above what the
# real backend sends (reference/thankly-observed.md) and short enough to read.
MAX_STEP_NAME = 200  # thankly's step names are 2-10 characters ("转录中", "Transcribing")
MAX_MESSAGE = 300  # its messages are one sentence; 300 matches the error text kept by probes.probe.wire
MAX_ERROR = 300  # an error code (TRANSCRIPTION_SERVICE_UNAVAILABLE) or a FastAPI detail line
MAX_TASK_ID = 128  # a UUID is 36; room for prefixed or composite ids, not for a body
MAX_LABEL = 100  # a run label or target name as it appears in titles, legends and file names
MAX_HEADER_VALUE = 500  # response headers kept in the fingerprint (server, via, x-instance...)

ELLIPSIS = "…"

# Unicode categories that change how the surrounding text is displayed instead of
# being displayed: Cc (C0/C1 controls, ESC, CR, NUL, DEL), Cf (format: bidi
# overrides U+202A-U+202E and isolates U+2066-U+2069, zero-width characters,
# BOM), Cs (lone surrogates, which also fail to encode to UTF-8) and the
# line/paragraph separators Zl/Zp. Ordinary spaces (Zs), private-use (Co)
# and unassigned (Cn) code points print as themselves.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape_char(ch: str) -> str:
    short = _SHORT_ESCAPES.get(ch)
    if short:
        return short
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(s: str) -> str:
    r"""Every control, format and separator character as a Python-style escape (ESC -> `\x1b`, RLO -> `\u202e`).

    Backslashes already in `s` are kept as they are: the result is for
    reading, not for decoding back.
    """
    if s.isprintable():  # C-speed fast path: isprintable() is False for every category above
        return s
    return "".join(_escape_char(ch) if unicodedata.category(ch) in _INVISIBLE_CATEGORIES else ch for ch in s)


def has_invisible(s: str) -> bool:
    """True when `s` holds a character `visible` would rewrite."""
    return any(unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in s)


# --- terminal (rich) -------------------------------------------------------------------------


# How rich reads markup (rich/markup.py): `[` followed by [a-z#/@] and a `]` before the next
# `[` is a tag, and an odd run of backslashes before it makes it literal (the run is halved);
# in text outside tags `\[` becomes `[`. rich.markup.escape covers only the first case, so a
# literal `\[` loses its backslash; this escaper covers both.
_BACKSLASHES_BRACKET = re.compile(r"(\\*)\[")
_TAG_AFTER_BRACKET = re.compile(r"[a-z#/@][^\[]*?\]")
_TRAILING_BACKSLASHES = re.compile(r"(\\+)\Z")


def _rich_escape(s: str) -> str:
    def bracket(match: re.Match[str]) -> str:
        run = len(match.group(1))
        if _TAG_AFTER_BRACKET.match(s, match.end()):
            return "\\" * (2 * run + 1) + "["  # odd: the tag is literal, the run halves back to `run`
        return "\\" * (run + 1) + "["  # rich turns the last `\[` into `[`

    escaped = _BACKSLASHES_BRACKET.sub(bracket, s)
    # A trailing run is doubled so that it cannot escape a tag the caller writes next.
    return _TRAILING_BACKSLASHES.sub(lambda m: m.group(1) * 2, escaped)


def for_terminal(s: str) -> str:
    r"""A server string ready to be interpolated into a rich markup string.

    Control characters become visible escapes and every `[` is escaped the way
    rich reads markup, so `[/bold] unbalanced [red` prints literally instead of
    raising MarkupError, and `\[x]` keeps its backslash (rich.markup.escape
    alone would drop it). Trailing backslashes are doubled so that they cannot
    escape a tag that follows: `f"[b]{for_terminal(s)}[/b]"` prints `s`
    exactly, while printed alone a final `\` shows twice. Emoji codes such as
    `:smile:` are a Console setting, not markup: print server strings with
    `emoji=False`, or use `terminal_text`.
    """
    return _rich_escape(visible(s))


def terminal_text(s: str, style: str = "") -> Text:
    """A rich Text for a table cell or a print: never parsed for markup, emoji codes or highlighting.

    The better route whenever a whole cell is a server string:
    `table.add_row(terminal_text(step_name), ...)`.
    """
    from rich.text import Text

    return Text(visible(s), style=style)


# --- Markdown --------------------------------------------------------------------------------

# Characters with inline meaning in CommonMark/GFM: escape (\), code (`), emphasis
# (* _), strikethrough (~), links and images ([ ] and the ! before them), raw HTML
# and autolinks (<, handled by the entity below), GitHub maths ($) and table cells (|).
_MD_INLINE = re.compile(r"([\\`*_~\[\]!|$])")
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MD_ENTITY = re.compile(r"[&<>]")
# At the start of a line these open a block: heading, quote, list, thematic break, setext underline.
_MD_BLOCK_START = re.compile(r"^([#>+\-=])")
_MD_ORDERED_LIST = re.compile(r"^(\d{1,9})([.)])")
_MD_LEADING_SPACES = re.compile(r"^ +")


def _md_inline(s: str) -> str:
    s = visible(s)  # no raw newline or CR survives, so nothing can start a new block
    s = _MD_ENTITY.sub(lambda m: _MD_ENTITIES[m.group()], s)  # raw HTML and <autolinks> become text
    return _MD_INLINE.sub(r"\\\1", s)


def for_markdown_cell(s: str) -> str:
    r"""One cell of a GFM table: pipes escaped, newlines visible as `\n`, no HTML, no links, no emphasis."""
    return _md_inline(s)


def for_markdown_text(s: str) -> str:
    """Inline Markdown text that may stand at the start of a line (a note, a list item's text, a heading's text).

    Besides the inline escapes of `for_markdown_cell`, a leading `#`, `>`, `+`,
    `-`, `=`, `1.`/`1)` or run of spaces (an indented code block) is neutralised.
    """
    s = _md_inline(s)
    s = _MD_LEADING_SPACES.sub(lambda m: "&#32;" * len(m.group()), s)
    s = _MD_ORDERED_LIST.sub(r"\1\\\2", s)
    return _MD_BLOCK_START.sub(r"\\\1", s)


# --- CSV -------------------------------------------------------------------------------------

# OWASP "CSV Injection": a cell that starts with one of these is read as a formula by
# Excel, LibreOffice or Google Sheets. The full-width forms are included because some
# spreadsheet locales normalise them; LF is included with TAB and CR.
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
_CSV_GUARD = "'"


def for_csv(s: str) -> str:
    """One CSV cell: a string that a spreadsheet would run as a formula gets a leading `'`.

    Leading spaces do not hide a formula (` =1+1` is neutralised too). The
    quoting of commas, quotes and newlines is the CSV writer's job.
    """
    if s.lstrip(" ").startswith(CSV_FORMULA_PREFIXES):
        return _CSV_GUARD + s
    return s


def csv_safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` with `for_csv` applied to every string cell and column name; numbers are untouched.

    Only object and string columns are visited; inside them only `str` values
    change (None, NaN, numbers and lists stay as they are).
    """
    from pandas.api.types import is_object_dtype, is_string_dtype

    out = df.copy()
    for column in out.columns:
        series = out[column]
        if is_object_dtype(series.dtype) or is_string_dtype(series.dtype):
            out[column] = series.map(_csv_cell)
    return out.rename(columns=_csv_cell)


def _csv_cell(value: Any) -> Any:
    return for_csv(value) if isinstance(value, str) else value


# --- matplotlib ------------------------------------------------------------------------------


def for_plot_label(s: str) -> str:
    r"""A title, axis label or legend entry that matplotlib draws as plain text.

    Every `$` is escaped (`\$`), so mathtext never starts and `a$\undefined$b`
    draws literally instead of raising; control characters are visible. A
    leading `_` would make matplotlib drop the entry from the legend, so it is
    preceded by a space.
    """
    s = visible(s).replace("$", r"\$")
    return " " + s if s.startswith("_") else s


# --- storage ---------------------------------------------------------------------------------


def clip(s: str, limit: int) -> str:
    """`s` cut to at most `limit` characters, the last one an ellipsis when it was cut."""
    if limit <= 0:
        return ""
    if len(s) <= limit:
        return s
    return s[: limit - 1] + ELLIPSIS
