"""The build's one dynamic part: the SIP layer compiled with mypyc (ivr/sip/compiled.py says which modules and why).

A wheel or a plain `pip install .` compiles them (C extensions beside the .py files, which stay in the wheel) when
this machine has a C compiler and the interpreter's headers (Debian: gcc, python3-dev), unless IVR_MYPYC=0;
IVR_MYPYC=1 makes a missing compiler an error instead of a pure-Python build. An editable install (`make install`)
is pure Python: the Makefile then compiles a checkout into build/sip with `setup.py build_ext --build-lib build/sip`,
where `ivr.sip` finds it only while it matches the sources.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sysconfig
from pathlib import Path
from types import ModuleType

from setuptools import Distribution, setup
from setuptools.command.build_ext import build_ext

MODE = os.environ.get("IVR_MYPYC", "auto")  # auto | 1 | 0
# pip builds in an isolated environment holding only [build-system] requires: the runtime dependencies mypy would
# read types from (structlog, uvloop...) are missing there, so they are Any, and pyproject's strict [tool.mypy]
# rejects four consequences of that. The types of our own code, which is what mypyc compiles, are the same, and
# `make lint` keeps checking strictly.
MYPY_FLAGS = ["--no-warn-return-any", "--no-warn-unused-ignores", "--allow-subclassing-any", "--allow-untyped-calls"]


def _compiled_module() -> ModuleType:
    """ivr/sip/compiled.py, loaded by path: importing the package would need its dependencies installed."""
    spec = importlib.util.spec_from_file_location("_ivr_sip_compiled", Path("ivr", "sip", "compiled.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _why_pure() -> str | None:
    """None when the SIP layer can be compiled here; otherwise why not."""
    if MODE == "0":
        return "IVR_MYPYC=0"
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return f"no C compiler ({cc}; Debian: apt install gcc)"
    if not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        return "no Python.h (Debian: apt install python3-dev)"
    return None


class MypycBuildExt(build_ext):
    """Runs mypyc when the build starts, not when setup.py is read (an editable build skips it); records the
    sources' digest beside what it built (`compiled.STAMP`)."""

    def finalize_options(self) -> None:
        self.why_pure = "editable install" if self.editable_mode else _why_pure()
        if self.why_pure is None:
            from mypyc.build import mypycify  # a build-time requirement (pyproject.toml [build-system])

            compiled = _compiled_module()
            self.distribution.ext_modules = mypycify(
                [*MYPY_FLAGS, *(os.path.relpath(p) for p in compiled.compiled_sources())],
                opt_level="3", group_name=compiled.GROUP)
        elif MODE == "1":
            raise RuntimeError(f"IVR_MYPYC=1 but the SIP layer cannot be compiled: {self.why_pure}")
        super().finalize_options()

    def run(self) -> None:
        if self.why_pure is not None:
            print(f"ivr: the SIP layer stays pure Python ({self.why_pure})")
            return
        super().run()
        if not self.inplace:
            compiled = _compiled_module()
            Path(self.build_lib, "ivr", "sip", compiled.STAMP).write_text(compiled.sources_digest() + "\n",
                                                                           encoding="ascii")


class MaybeBinaryDistribution(Distribution):
    """A wheel with compiled modules is tagged for this interpreter and platform, not py3-none-any."""

    def has_ext_modules(self) -> bool:
        return _why_pure() is None


setup(cmdclass={"build_ext": MypycBuildExt}, distclass=MaybeBinaryDistribution)
