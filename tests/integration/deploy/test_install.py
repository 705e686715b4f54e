"""Install anywhere: `pip install .` (a built wheel, not editable) into a fresh venv, then `ivr init SITE` and
`ivr serve --config SITE/ivr.yaml` from another directory answer a real call, with no checkout in sight.

The package is built from a copy of the source tree (so the checkout gets no build/ folder) and installed
without its dependencies; the fresh venv reaches the dependencies through a `.pth` line naming the dev
venv's site-packages, which adds that folder only (its editable-install hook is not run), so `import ivr`
can only find the installed wheel. That keeps the test to seconds instead of downloading numpy,
scikit-learn and the speech engines again. With IVR_FULL_INSTALL=1 it installs the dependencies too.
The wheel compiles the SIP layer with mypyc (setup.py; ~1 min), as a production install does.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.engine.conftest import ROOT, free_port

pytestmark = pytest.mark.integration

SOURCE_PARTS = ("ivr", "flows", "dialects", "prompts", "config", "pyproject.toml", "setup.py", "README.md")
TOKEN = "ivr_install-test-token"
CALLER = "13700009902"


def run(cmd: list[str], cwd: Path, timeout_s: float = 600, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, env=env)
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fresh venv's bin folder, with the package installed from a built wheel."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    source.mkdir()
    for part in SOURCE_PARTS:
        origin = ROOT / part
        if origin.is_dir():
            shutil.copytree(origin, source / part, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, source / part)
    venv = base / "venv"
    run([sys.executable, "-m", "venv", str(venv)], base)
    full = os.environ.get("IVR_FULL_INSTALL") == "1"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, *([] if full else ["--no-deps"]), str(source)], base, timeout_s=1800)
    if not full:
        purelib = run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                      base).strip()
        (Path(purelib) / "ivr_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    shutil.rmtree(source)  # nothing may still read the source tree
    return venv / "bin"


def test_the_wheel_carries_the_demo_site(installed: Path, tmp_path: Path) -> None:
    where = run([str(installed / "python"), "-c", "import ivr, ivr.config as c; print(ivr.__file__); "
                 "print(c.demo_path('flows'))"], tmp_path).split()
    assert str(installed.parent) in where[0], f"ivr imported from {where[0]}, not the installed wheel"
    flows = Path(where[1])
    assert (flows / "hotline.yaml").is_file() and not (flows / "hotline.yaml").is_symlink()


def test_the_wheel_runs_its_sip_layer_compiled(installed: Path, tmp_path: Path) -> None:
    layer = run([str(installed / "python"), "-c", "import ivr.sip, ivr.sip.parser as p; "
                 "print(ivr.sip.running_compiled(), p.__file__)"], tmp_path).split()
    expected = os.environ.get("IVR_MYPYC") != "0"
    assert layer[0] == str(expected), f"the SIP layer's parser: {layer[1]}"
    assert str(installed.parent) in layer[1], f"ivr.sip.parser loaded from {layer[1]}, not the installed wheel"


def test_init_then_serve_from_another_directory_answers_a_call(installed: Path, tmp_path: Path) -> None:
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "PYTHON"))}
    env |= {"IVR_API_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    run([str(installed / "ivr"), "init", str(site)], elsewhere, env=env)
    run([str(installed / "ivr"), "config", "check", "--config", str(site / "ivr.yaml")], elsewhere, env=env)
    sip_port, http_port = free_port(), free_port(socket.SOCK_STREAM)
    log = tmp_path / "engine.log"
    engine = subprocess.Popen(
        [str(installed / "ivr"), "serve", "--config", str(site / "ivr.yaml"), "--log-json",
         "--sip", f"127.0.0.1:{sip_port}", "--http", f"127.0.0.1:{http_port}"],
        cwd=elsewhere, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
    )
    try:
        wait_ready(engine, f"http://127.0.0.1:{http_port}", log)
        call = subprocess.run(
            [str(installed / "ivr"), "call", f"sip:95519@127.0.0.1:{sip_port}", "--from", CALLER,
             "--wait", "6", "--api", ""],
            cwd=elsewhere, capture_output=True, text=True, timeout=90, env=env,
        )
        assert call.returncode == 0, call.stdout + call.stderr
    finally:
        engine.terminate()
        assert engine.wait(timeout=60) == 0, log.read_text()[-3000:]
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    ready = [e for e in lines if e.get("event") == "engine_ready"]
    assert ready and ready[0]["sip_layer"] == ("pure Python" if os.environ.get("IVR_MYPYC") == "0" else "compiled")
    assert all(line.startswith("{") for line in log.read_text().splitlines() if line.strip()), "plain-text log line"
    invites = [e for e in lines if e.get("event") == "invite_received"]
    assert [e["caller"] for e in invites] == ["*******9902"], "log_pii defaults to false: numbers masked"
    assert CALLER not in log.read_text()
    with sqlite3.connect(site / "var" / "ivr.db") as db:
        rows = db.execute("SELECT flow_id, in_progress FROM calls WHERE caller = ?", (CALLER,)).fetchall()
    assert rows == [("hotline", 0)]
    assert not (elsewhere / "var" / "ivr.db").exists(), "the site's db is relative to its config file"


def wait_ready(engine: subprocess.Popen[bytes], api: str, log: Path, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if engine.poll() is not None:
            raise AssertionError(f"ivr serve exited with {engine.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(api + "/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"ivr serve not ready in {timeout_s} s:\n{log.read_text()[-3000:]}")
