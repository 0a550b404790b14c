"""Server strings are data: each textsafe function makes any str inert for one destination, and never raises."""

from __future__ import annotations

import io
import re
import unicodedata

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.markup import render
from rich.table import Table

from probes import textsafe
from probes.textsafe import (
    CSV_FORMULA_PREFIXES, clip, csv_safe_frame, for_csv, for_markdown_cell, for_markdown_text, for_plot_label,
    for_terminal, has_invisible, terminal_text, visible,
)

# Text with the characters that cause trouble mixed in often enough to matter.
NASTY = st.sampled_from(list("[]/\\$|`*_~#>-+=@!<>&\n\r\t\x1b\x00\x7f\x9b\u202e\u2066\u200b\ufeff\u2028:") + [
    "[/]", "[bold]", "[/bold]", "[red", "[link=x]", "$\\undefined$", "\x1b[31m", "\x1b]8;;http://x\x1b\\", ":smile:",
    "\ud800", "=HYPERLINK(\"http://x\")", "\n# heading", "![i](http://x)", "[l](http://x)", "<script>", "1. ",
])
TEXT = st.one_of(st.text(), st.lists(st.one_of(NASTY, st.text(max_size=5)), max_size=20).map("".join))

PLAIN_CONSOLE = dict(width=10_000, color_system=None, force_terminal=False, soft_wrap=True, emoji=False,
                     highlight=False)


def _invisible(s: str) -> bool:
    return any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Zl", "Zp"} for c in s)


@given(TEXT)
def test_visible_leaves_no_control_character(s):
    out = visible(s)
    assert not _invisible(out)
    assert not has_invisible(out)
    assert out.isascii() or not _invisible(out)


def test_visible_spells_out_the_dangerous_characters():
    assert visible("a\x1bb\rc\x00d\u202ee\U000e0001\n\t") == "a\\x1bb\\rc\\x00d\\u202ee\\U000e0001\\n\\t"
    assert visible("日记创建成功 ok") == "日记创建成功 ok"


@given(TEXT)
@settings(max_examples=300)
def test_for_terminal_renders_in_rich_literally(s):
    safe = for_terminal(s)
    assert not _invisible(safe)
    # inside markup, between tags: exactly the visible text, no style from the server string
    text = render(f"[bold]{safe}[/bold]", emoji=False)  # emoji codes are the Console's emoji=..., not markup
    assert text.plain == visible(s)
    assert all(span.style == "bold" for span in text.spans)
    mixed = render(f"x{safe}[i]y{safe}[/i]", emoji=False)
    assert mixed.plain == f"x{visible(s)}y{visible(s)}"
    # printed through a real Console
    buf = io.StringIO()
    Console(file=buf, **PLAIN_CONSOLE).print(f"[dim]{safe}[/dim]")
    assert buf.getvalue() == visible(s) + "\n"
    # alone: the same, except that trailing backslashes show doubled (they are kept from escaping a following tag)
    alone = render(safe, emoji=False).plain
    assert alone.rstrip("\\") == visible(s).rstrip("\\")


@given(TEXT)
def test_terminal_text_is_never_markup(s):
    buf = io.StringIO()
    table = Table("step_name")
    table.add_row(terminal_text(s))
    Console(file=buf, width=10_000, color_system=None).print(table)
    assert visible(s) in buf.getvalue() or len(visible(s)) == 0 or "\n" in buf.getvalue()
    assert terminal_text(s).plain == visible(s)


@pytest.mark.parametrize("step_name", ["[/bold] unbalanced [red", "[/]", "[link=javascript:x]click[/link]"])
def test_known_markup_crashes_print_literally(step_name):
    buf = io.StringIO()
    console = Console(file=buf, width=200, color_system=None)
    table = Table("target / label", "step")
    table.add_row(for_terminal(step_name), terminal_text(step_name))
    console.print(table)
    console.print(f"[yellow]note:[/] {for_terminal(step_name)}")
    assert buf.getvalue().count(step_name) == 3


def test_escape_sequences_from_a_backend_are_shown_not_obeyed():
    buf = io.StringIO()
    Console(file=buf, width=200, force_terminal=True).print(for_terminal("ok\x1b]0;pwned\x07\x1b[2J\u202egnp.exe"),
                                                            highlight=False)
    out = buf.getvalue()
    assert "\x1b]0;" not in out and "\x1b[2J" not in out and "\u202e" not in out
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\u202egnp.exe" in out


def test_emoji_codes_stay_text_in_terminal_text():
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(terminal_text(":smile:"))
    assert buf.getvalue() == ":smile:\n"


# --- Markdown ---------------------------------------------------------------------------------

MD_SPECIAL = set("\\`*_~[]!|$")


def _unescaped(s: str, chars: set[str]) -> list[int]:
    """Positions of characters in `chars` not preceded by an odd run of backslashes."""
    found, backslashes = [], 0
    for i, c in enumerate(s):
        if c in chars and c != "\\" and backslashes % 2 == 0:
            found.append(i)
        backslashes = backslashes + 1 if c == "\\" else 0
    return found


@given(TEXT)
def test_markdown_cell_is_one_inert_line(s):
    out = for_markdown_cell(s)
    assert "\n" not in out and "\r" not in out and not _invisible(out)
    assert "<" not in out and ">" not in out
    assert _unescaped(out, MD_SPECIAL) == []


@given(TEXT)
def test_markdown_text_cannot_open_a_block(s):
    out = for_markdown_text(s)
    assert "\n" not in out and "\r" not in out and "<" not in out
    assert _unescaped(out, MD_SPECIAL) == []
    assert not out.startswith(("#", ">", "+", "-", "=", " ", "    "))
    assert not re.match(r"[0-9]{1,9}[.)]", out)  # CommonMark's ordered-list marker: ASCII digits only ("²." is text)


@pytest.mark.parametrize(
    ("raw", "cell"),
    [
        ("<b>bold</b>", "&lt;b&gt;bold&lt;/b&gt;"),
        ("a|b", "a\\|b"),
        ("line\n# injected heading", "line\\\\n# injected heading"),
        ("[click](http://evil)", "\\[click\\](http://evil)"),
        ("![img](http://evil/x.png)", "\\!\\[img\\](http://evil/x.png)"),
        ("`code` *em* _em_ ~~s~~", "\\`code\\` \\*em\\* \\_em\\_ \\~\\~s\\~\\~"),
        ("5 $ and 6 $", "5 \\$ and 6 \\$"),
        ("&amp;", "&amp;amp;"),
    ],
)
def test_markdown_cell_examples(raw, cell):
    assert for_markdown_cell(raw) == cell


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("# heading", "\\# heading"),
        ("> quote", "&gt; quote"),
        ("- item", "\\- item"),
        ("+ item", "\\+ item"),
        ("1. item", "1\\. item"),
        ("12) item", "12\\) item"),
        ("=====", "\\====="),
        ("    code", "&#32;&#32;&#32;&#32;code"),
        ("***", "\\*\\*\\*"),
        ("转录中 32%", "转录中 32%"),
    ],
)
def test_markdown_text_examples(raw, text):
    assert for_markdown_text(raw) == text


# --- CSV --------------------------------------------------------------------------------------


@given(TEXT)
def test_csv_cell_never_starts_a_formula(s):
    out = for_csv(s)
    assert not out.lstrip(" ").startswith(CSV_FORMULA_PREFIXES)
    assert out in (s, "'" + s)


@pytest.mark.parametrize("raw", ['=HYPERLINK("http://evil","click")', "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
                                 " =1+1", "＝1+1"])
def test_csv_formulas_are_neutralised(raw):
    assert for_csv(raw) == "'" + raw


def test_csv_frame_touches_strings_only(tmp_path):
    df = pd.DataFrame({
        "step_name": ['=HYPERLINK("http://evil","x")', "转录中", None],
        "p50": [-1.5, 2.0, float("nan")],
        "n": [1, -2, 3],
        "mixed": ["-3", 4, "@x"],
    })
    out = csv_safe_frame(df)
    assert out["step_name"].tolist()[:2] == ["'=HYPERLINK(\"http://evil\",\"x\")", "转录中"]
    assert out["step_name"].isna().tolist() == [False, False, True]
    assert out["p50"].tolist()[:2] == [-1.5, 2.0] and out["n"].tolist() == [1, -2, 3]
    assert out["mixed"].tolist() == ["'-3", 4, "'@x"]
    assert df["step_name"][0].startswith("=")  # the input is not modified
    path = tmp_path / "t.csv"
    out.to_csv(path, index=False)
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        for cell in line.split(","):
            assert not cell.strip('"').startswith(("=", "+", "@")), line


# --- matplotlib -------------------------------------------------------------------------------


def _draw(label: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        ax.plot([0, 1], [0, 1], label=label)
        ax.set_title(label)
        ax.set_xlabel(label)
        legend = ax.legend() if label else None
        fig.savefig(io.BytesIO(), format="png")
        entries = [t.get_text() for t in legend.get_texts()] if legend else []
        assert entries == ([label] if label else [])  # matplotlib leaves empty labels out
        shown, math = ax.title._preprocess_math(label)  # what matplotlib draws
        assert math is False
        return shown
    finally:
        plt.close(fig)


def test_raw_mathtext_label_crashes_matplotlib():
    with pytest.raises(ValueError):
        _draw(r"a$\undefined$b")


@pytest.mark.parametrize("raw", [r"a$\undefined$b", "$x^2$", "price $5 and $6", "a\\$b$c$", "_hidden", "$"])
def test_plot_label_draws_literally(raw):
    assert _draw(for_plot_label(raw)).strip() == raw


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
@given(TEXT)
@settings(max_examples=25, deadline=None)
def test_plot_label_never_crashes_matplotlib(s):
    label = for_plot_label(clip(s, textsafe.MAX_LABEL * 2))
    assert not _invisible(label)
    _draw(label)


# --- clip -------------------------------------------------------------------------------------


@given(st.text(), st.integers(min_value=-3, max_value=500))
def test_clip_bounds_length(s, limit):
    out = clip(s, limit)
    assert len(out) <= max(limit, 0)
    if len(s) <= limit:
        assert out == s
    elif limit > 0:
        assert out.endswith(textsafe.ELLIPSIS) and s.startswith(out[:-1])


def test_limits_are_sane():
    for name in ("MAX_STEP_NAME", "MAX_MESSAGE", "MAX_ERROR", "MAX_TASK_ID", "MAX_LABEL", "MAX_HEADER_VALUE"):
        assert 36 <= getattr(textsafe, name) <= 1000, name


# --- what remains for the integrator (flip these when wired in) ---------------------------------


def test_end_of_run_table_prints_a_markup_label_as_itself(capsys, monkeypatch):
    from probes.probe.summary import print_summary

    monkeypatch.setenv("COLUMNS", "200")
    records = [{"target": "t", "label": label, "outcome": "completed", "upload_status": 200, "upload_s": 0.1,
                "milestones": {}, "dwell": {}, "longest_stall": None, "total_s": 1.0}
               for label in ("[/]", "[bold red]x[/bold red] :smile:")]
    print_summary(records)
    out, err = capsys.readouterr()
    assert out == ""  # stdout carries only the run directory's path
    assert "t / [/]" in err and "t / [bold red]x[/bold red] :smile:" in err  # text, not markup or emoji
    assert err.count("n=1: completed 1") == 2
    rows = [line for line in err.splitlines() if " total " in line]
    assert len(rows) == 2 and all(line.replace("│", " ").split()[-3:] == ["1.00"] * 3 for line in rows)


def test_report_markdown_cells_carry_no_html_or_links():
    from probes.report.render import markdown_table

    table = markdown_table(pd.DataFrame({"step_name": ['<img src=x onerror="alert(1)">', "[click](http://evil)"]}))
    assert "<img" not in table and "[click](http" not in table  # escaped: \[click\](...) is text, not a link
