"""What a new user reads first stays true: README links every doc in docs/ (and each link resolves), and
every `ivr ...` command line in README, docs/ and campaigns/README.md names a real subcommand and only
flags it accepts (checked against the parser `ivr --help` prints)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from ivr.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
READ_BY_USERS = [README, *DOCS, ROOT / "campaigns" / "README.md"]
COMMAND = re.compile(r"(?:^|[`\s$(])(?:\.venv/bin/)?ivr ([a-z][a-z-]*(?: [a-z][a-z-]*)?)([^`|\n#]*)")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*)")


def _child(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            child: argparse.ArgumentParser = action.choices[name]
            return child
    return None


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def test_readme_links_every_doc_and_every_link_resolves() -> None:
    text = README.read_text(encoding="utf-8")
    for doc in DOCS:
        assert f"(docs/{doc.name})" in text, f"README.md does not link docs/{doc.name}"
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        assert (ROOT / target).exists(), f"README.md links {target}, which does not exist"


@pytest.mark.parametrize("path", READ_BY_USERS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_ivr_command_line_in_the_docs_exists(path: Path) -> None:
    parser = build_parser()
    problems = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for match in COMMAND.finditer(line):
            words, command = match.group(1).split(), parser
            used: list[str] = []
            for word in words:
                child = _child(command, word)
                if child is None:
                    break
                command, used = child, [*used, word]
            if not used:
                continue  # prose ("ivr is ..."), not a command line
            rest = " ".join(words[len(used) :]) + match.group(2)
            for flag in FLAG.findall(rest):
                if flag not in _flags(command):
                    problems.append(f"{path.name}:{number}: `ivr {' '.join(used)}` has no {flag}")
    assert problems == []
