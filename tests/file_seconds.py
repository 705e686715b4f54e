"""Refresh tests/file_seconds.json, the measured wall time of the suite's slow test files, from the JUnit XML
of a full run: `python -m tests.file_seconds run.xml [more.xml...]` (several runs: the longest time counts).

`make test` hands whole files to its workers (`--dist loadfile`), and tests/conftest.py orders them longest
first with these figures, so that no long file starts last and keeps one worker busy after the others stop."""

from __future__ import annotations

import json
import pathlib
import sys
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "file_seconds.json"
SLOW_S = 10.0
"""A file faster than this is not listed: it fits any gap at the end of the run."""


def source_file(classname: str) -> str | None:
    """The test file (relative path) that a JUnit `classname` (`tests.unit.x.test_y[.Class]`) comes from."""
    parts = classname.split(".")
    for end in range(len(parts), 0, -1):
        path = "/".join(parts[:end]) + ".py"
        if (ROOT / path).is_file():
            return path
    return None


def file_seconds(reports: list[pathlib.Path]) -> dict[str, float]:
    longest: dict[str, float] = {}
    for report in reports:
        seconds: dict[str, float] = {}
        for case in ET.parse(report).iter("testcase"):
            path = source_file(case.get("classname", ""))
            if path is not None:
                seconds[path] = seconds.get(path, 0.0) + float(case.get("time", "0"))
        for path, total in seconds.items():
            longest[path] = max(longest.get(path, 0.0), total)
    ranked = sorted(((p, s) for p, s in longest.items() if s >= SLOW_S), key=lambda kv: -kv[1])
    return {path: round(total, 1) for path, total in ranked}


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    OUTPUT.write_text(json.dumps(file_seconds([pathlib.Path(a) for a in argv]), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
