"""`ivr report`: the summary figures of a time window as tables in the terminal (rich).

The figures come from `SqlStore.summary` (definitions in `ivr.store.reports`); this module only
renders them, so `render_summary` is what a test reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from rich.console import Console, Group
from rich.table import Table

from ivr.store import SqlStore, Summary, open_store, parse_time
from ivr.store.errors import DatabaseUnreachable, StoreError
from ivr.store.messages import MessageStore
from ivr.voc import MAX_TEXTS, Classify, Comment, VoiceOfCustomer, analyse


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, unit: str = "") -> str:
    return "–" if value is None else f"{value:,.1f}{unit}"


def _counts_table(title: str, header: str, counts: dict[str, int], total: int) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(header)
    table.add_column("calls", justify="right")
    table.add_column("share", justify="right")
    for name, n in counts.items():
        table.add_row(name or "(unknown)", f"{n:,}", _pct(n / total if total else None))
    return table


def render_summary(summary: Summary) -> Group:
    """The summary as rich tables: headline figures, intent mix, breakpoints, dialects."""
    window = f"{summary.since.isoformat(timespec='minutes')} → {summary.until.isoformat(timespec='minutes')}"
    head = Table(title=f"Hotline summary  {window}", title_justify="left")
    head.add_column("figure")
    head.add_column("value", justify="right")
    head.add_column("basis", style="dim")
    rows = [
        (
            "calls",
            f"{summary.calls:,}",
            f"{summary.in_progress} in progress, {summary.interrupted} interrupted",
        ),
        (
            "containment",
            _pct(summary.containment),
            f"{summary.self_served:,} self-served / {summary.finished:,}",
        ),
        (
            "answer rate",
            _pct(summary.answer_rate),
            f"{summary.answered:,} answered / {summary.offered:,} offered",
        ),
        ("abandon rate", _pct(summary.abandon_rate), f"{summary.abandoned:,} abandoned in queue"),
        ("avg speed of answer", _num(summary.asa_s, " s"), "mean wait of answered calls"),
        (
            f"service level ({summary.service_level_s:g} s)",
            _pct(summary.service_level),
            f"{summary.answered_in_sl:,} answered in time / {summary.offered:,}",
        ),
        ("self-service broke", f"{summary.broken:,}", f"{summary.rescued:,} then continued by an agent"),
        (
            "NPS",
            "–" if summary.nps is None else f"{summary.nps:+.1f}",
            f"{summary.promoters} promoters, {summary.detractors} detractors of {summary.surveys} surveys",
        ),
    ]
    for row in rows:
        head.add_row(*row)
    breakpoints = Table(title="Top breakpoints (self-service failed)", title_justify="left")
    for column in ("node", "steps", "calls", "continued by agent"):
        breakpoints.add_column(column, justify="left" if column == "node" else "right")
    for b in summary.breakpoints:
        breakpoints.add_row(b.node or "(call)", f"{b.steps:,}", f"{b.calls:,}", f"{b.rescued:,}")
    return Group(
        head,
        _counts_table("Intent mix", "intent", summary.intent_mix, summary.calls),
        breakpoints,
        _counts_table("Calls by dialect", "dialect", summary.dialects, summary.calls),
    )


def render_voc(voc: VoiceOfCustomer) -> Group:
    """Voice of the customer as rich tables: needs, top themes with examples, per day and per queue."""
    themes = Table(title=f"Voice of the customer: top themes of {voc.total:,} messages", title_justify="left")
    for column in ("theme", "messages", "needs", "examples"):
        themes.add_column(column, justify="right" if column == "messages" else "left")
    for theme in voc.themes:
        needs = ", ".join(f"{need} {n}" for need, n in theme.needs.items())
        themes.add_row(theme.term, f"{theme.count:,}", needs, " | ".join(t[:60] for t in theme.examples))
    if voc.other:
        themes.add_row("(other)", f"{voc.other:,}", "", "")
    return Group(
        _counts_table("Messages by need", "need", voc.by_need, voc.total),
        themes,
        _counts_table("Messages by day", "day", voc.by_day, voc.total),
        _counts_table("Messages by queue", "queue", voc.by_queue, voc.total),
        _counts_table("Messages by kind", "kind", voc.by_source, voc.total),
    )


def voc_of(store: SqlStore, messages_dir: Path, start: datetime, end: datetime,
           classify: Callable[[], Classify | None]) -> VoiceOfCustomer | None:
    """The window's voice of the customer from the stored messages (None when nobody left one)."""
    found = MessageStore(store, messages_dir).between(start, end, limit=MAX_TEXTS)
    if not found:
        return None
    return analyse([Comment(m.transcript, m.created_at.date(), m.queue, m.kind) for m in found], classify())


def report_main(
    since: str, until: str | None, db: str, *, now: datetime, console: Console | None = None,
    err: Console | None = None, messages_dir: Path | None = None,
    classify: Callable[[], Classify | None] = lambda: None,
) -> int:
    """Print the summary for `[since, until)` from the store at `db` (a path or postgresql:// URL), and the
    voice of the customer of the messages left then (`classify` gives the flows' intent classifier);
    errors go to `err` (stderr)."""
    console = console or Console()
    err = err or Console(stderr=True)
    try:
        start = parse_time(since, now)
        end = parse_time(until, now) if until else now
        if end <= start:
            err.print(
                f"[red]error:[/] --until ({end.isoformat()}) must be after --since ({start.isoformat()})"
            )
            return 2
        store = open_store(db, read_only=True)
    except DatabaseUnreachable as exc:  # a runtime failure, not a usage error
        err.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        return 1
    except StoreError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 2
    try:
        console.print(render_summary(store.summary(start, end)))
        voc = voc_of(store, messages_dir, start, end, classify) if messages_dir is not None else None
        if voc is not None:
            console.print(render_voc(voc))
    finally:
        store.close()
    return 0
