"""What may import what in `ivr/` (docs/ARCHITECTURE.md, issue 14): imports point down the layers.

Wire formats and pure protocol machines never reach up to the adapters or the application, and no
runtime package reaches into the test tools in `ivr.testing`. Imports are read with `ast`, so an import
inside a function counts as much as one at the top of the module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

IVR = Path(__file__).resolve().parents[2] / "ivr"

# package (folder under ivr/) -> modules it must never import (a name and everything below it)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # ivr.config is the application's settings: the layers below take values, never the loader
    # (host:port parsing lives in ivr/sip/hostport.py, which the config imports).
    "sip": (
        "ivr.sipua", "ivr.engine", "ivr.flow", "ivr.acd", "ivr.web", "ivr.testing",
        "ivr.store", "ivr.speech", "ivr.voice", "ivr.outbound", "ivr.cli", "ivr.demo_backend", "ivr.config",
    ),
    "sipua": (
        "ivr.engine", "ivr.flow", "ivr.acd", "ivr.web", "ivr.testing",
        "ivr.store", "ivr.outbound", "ivr.cli", "ivr.demo_backend", "ivr.config",
    ),
    "rtp": (
        "ivr.sip", "ivr.sipua", "ivr.engine", "ivr.flow", "ivr.acd", "ivr.web", "ivr.testing", "ivr.store",
        "ivr.config",
    ),
    "media": ("ivr.rtp", "ivr.sip", "ivr.sipua", "ivr.engine", "ivr.testing", "ivr.config"),
    "acd": (
        "ivr.sip", "ivr.sipua", "ivr.rtp", "ivr.engine", "ivr.flow", "ivr.web", "ivr.testing", "ivr.store",
    ),
    "flow": ("ivr.testing", "ivr.demo_backend", "ivr.engine", "ivr.sip", "ivr.sipua", "ivr.rtp"),
    "voice": ("ivr.flow", "ivr.engine", "ivr.testing"),
}

# Within ivr/sip only the socket adapters may use asyncio; everything else there is sans-I/O.
SIP_ADAPTERS = {"transport.py", "listen.py", "tls.py"}
ASYNC_NAMES = {"asyncio", "get_running_loop", "get_event_loop"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_every_checked_package_exists() -> None:
    assert [p for p in FORBIDDEN if not (IVR / p).is_dir()] == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_it(package: str) -> None:
    wrong = sorted(
        f"{path.relative_to(IVR.parent)} imports {name}"
        for path in (IVR / package).rglob("*.py")
        for name in imported(_tree(path))
        if any(_under(name, f) for f in FORBIDDEN[package])
    )
    assert wrong == []


def test_only_the_cli_reaches_the_test_tools() -> None:
    """`ivr.testing` serves the test commands (`ivr call`, `ivr load`, `ivr simulate`); runtime code never uses it."""
    wrong = sorted(
        f"{path.relative_to(IVR.parent)} imports {name}"
        for path in IVR.rglob("*.py")
        if "testing" not in path.relative_to(IVR).parts and path != IVR / "cli.py"
        for name in imported(_tree(path))
        if _under(name, "ivr.testing")
    )
    assert wrong == []


def test_runtime_code_never_imports_fake_clock() -> None:
    """`FakeClock` lives in ivr/clock.py for tests; production code never builds one."""
    wrong = sorted(
        str(path.relative_to(IVR.parent))
        for path in IVR.rglob("*.py")
        if "testing" not in path.relative_to(IVR).parts and path.name != "clock.py"
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ImportFrom) and node.module == "ivr.clock"
        and any(alias.name == "FakeClock" for alias in node.names)
    )
    assert wrong == []


def test_asyncio_only_in_the_sip_adapters() -> None:
    wrong = sorted(
        f"{path.relative_to(IVR.parent)}:{getattr(node, 'lineno', 0)}"
        for path in (IVR / "sip").rglob("*.py")
        if path.name not in SIP_ADAPTERS
        for node in ast.walk(_tree(path))
        if (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "asyncio" for a in node.names))
        or (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "asyncio")
        or (isinstance(node, ast.Name) and node.id in ASYNC_NAMES)
        or (isinstance(node, ast.Attribute) and node.attr in ASYNC_NAMES)
    )
    assert wrong == []


def test_the_checks_see_a_forbidden_import() -> None:
    """The walk must find imports wherever they stand, or every test above passes vacuously."""
    tree = ast.parse("def f():\n    from ivr.testing.sipharness import MemoryNetwork\nimport ivr.engine.app\n")
    assert imported(tree) == {"ivr.testing.sipharness", "ivr.engine.app"}
