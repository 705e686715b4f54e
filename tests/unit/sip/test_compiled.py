"""The SIP layer compiled with mypyc: the suite runs what ships, and a checkout never runs a build of other sources."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
from pathlib import Path

import pytest

import ivr.sip
from ivr.sip import compiled

EXTENSIONS = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def test_the_checkout_runs_its_sip_layer_compiled() -> None:
    """A wheel ships the layer compiled (tests/integration/deploy/test_install.py checks that one), so the suite
    tests it compiled: compiled code checks annotations at run time and behaves otherwise where pure Python was
    lenient. `make` builds it; IVR_MYPYC=0 is the one way to run the suite pure, and says so."""
    if os.environ.get("IVR_MYPYC") == "0":
        assert not compiled.running_compiled()
        return
    assert compiled.running_compiled(), (
        "the SIP layer runs as pure Python: `make install` compiles it into build/sip (it needs gcc and python3-dev; "
        "scripts/install-system-deps.sh installs them); IVR_MYPYC=0 runs the suite pure on purpose")
    assert ivr.sip.__path__[0] == str(compiled.CHECKOUT_MODULES)


def test_what_runs_compiled_is_exactly_the_compiled_sources() -> None:
    """The pure modules stay pure (each breaks compiled: `compiled.PURE` says why), and no module of a deleted
    source lingers in the build."""
    layer_compiled = compiled.running_compiled()
    for name in ("events", "registrar", "errors", "transport", "compiled"):
        module = importlib.import_module(f"ivr.sip.{name}")
        assert module.__file__ is not None and module.__file__.endswith(".py"), name
    for name in ("parser", "transaction", "dialog", "headers", "sdp"):
        module = importlib.import_module(f"ivr.sip.{name}")
        assert module.__file__ is not None and module.__file__.endswith(EXTENSIONS) == layer_compiled, name
    if layer_compiled:
        built = {p.name.split(".")[0] for p in (compiled.CHECKOUT_MODULES).iterdir()
                 if p.name.endswith(EXTENSIONS)}
        assert built == {p.stem for p in compiled.compiled_sources()} | {"native__mypyc"}


@pytest.fixture
def package(tmp_path: Path) -> Path:
    folder = tmp_path / "sip"
    folder.mkdir()
    (folder / "__init__.py").write_text("")  # pure: not part of the digest
    (folder / "parser.py").write_text("X = 1\n")
    (folder / "uri.py").write_text("Y = 2\n")
    return folder


def built(package: Path, tmp_path: Path) -> Path:
    build = tmp_path / "build"
    build.mkdir()
    (build / compiled.STAMP).write_text(compiled.sources_digest(package) + "\n")
    return build


def test_a_build_of_these_sources_is_searched_first(package: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IVR_MYPYC", raising=False)
    build = built(package, tmp_path)
    assert compiled.search_path([str(package)], build) == [str(build), str(package)]


@pytest.mark.parametrize("edit", ["change", "add", "delete"])
def test_an_edited_checkout_runs_its_sources_and_says_so(package: Path, tmp_path: Path, edit: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IVR_MYPYC", raising=False)
    build = built(package, tmp_path)
    if edit == "change":
        (package / "uri.py").write_text("Y = 3\n")
    elif edit == "add":
        (package / "dialog.py").write_text("Z = 4\n")
    else:
        (package / "uri.py").unlink()
    with pytest.warns(RuntimeWarning, match="built from other sources"):
        assert compiled.search_path([str(package)], build) == [str(package)]


def test_a_pure_module_edit_keeps_the_build(package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IVR_MYPYC", raising=False)
    build = built(package, tmp_path)
    (package / "__init__.py").write_text("# the package's own init is never compiled\n")
    assert compiled.search_path([str(package)], build)[0] == str(build)


def test_no_build_or_ivr_mypyc_0_is_pure_python(package: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IVR_MYPYC", raising=False)
    assert compiled.search_path([str(package)], tmp_path / "none") == [str(package)]
    build = built(package, tmp_path)
    monkeypatch.setenv("IVR_MYPYC", "0")
    assert compiled.search_path([str(package)], build) == [str(package)]
