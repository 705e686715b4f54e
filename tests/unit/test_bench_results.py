"""bench/RESULTS.md: rerunning a benchmark replaces its output and keeps what people wrote after it."""

from __future__ import annotations

from bench.__main__ import _render, _sections

OLD_STYLE = """# Benchmark results

<!-- bench:sip_parse -->
old parse output

<!-- issue-22 check (manual) -->
a hand-written before/after table

<!-- bench:sip_cps -->
old cps output
"""


def test_a_rerun_replaces_the_output_and_keeps_the_notes_after_it() -> None:
    sections = _sections(OLD_STYLE)
    sections["sip_parse"] = ("new parse output\n", sections["sip_parse"][1])
    once = _render(sections)
    assert "new parse output" in once
    assert "a hand-written before/after table" in once  # the old layout had no end marker: nothing dropped

    again = _sections(once)
    again["sip_parse"] = ("newer parse output\n", again["sip_parse"][1])
    twice = _render(again)
    assert "newer parse output" in twice
    assert "new parse output\n" not in twice  # with an end marker, only the output is replaced
    assert twice.count("a hand-written before/after table") == 1
    assert "old cps output" in twice


def test_sections_come_out_in_the_benchmarks_order_and_read_back_the_same() -> None:
    sections = {"sip_cps": ("cps\n", "notes\n"), "sip_parse": ("parse\n", ""), "custom": ("x\n", "")}
    text = _render(sections)
    assert text.index("bench:sip_parse") < text.index("bench:sip_cps") < text.index("bench:custom")
    assert _sections(text) == sections
