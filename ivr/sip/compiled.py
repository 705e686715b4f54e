"""Which modules of the SIP layer mypyc compiles, and whether this process runs them compiled.

The SIP layer is the per-call Python of signalling (parser, headers, transactions, dialogs, SDP...); compiled with
mypyc it costs ~0.85 of the CPU a call (bench/RESULTS.md "The SIP layer compiled"). A wheel (`pip install .`,
setup.py) carries the compiled modules beside their .py files, where the import system takes them first. A checkout
(`make install`, an editable install) builds them into build/sip/ instead, never beside the sources: there a
compiled module would shadow its .py, and an edit would silently not run. `ivr.sip` searches that folder first only
while the digest written at its build is the sources' digest now (`search_path`); an edited checkout runs pure
Python, says so, and `make install` compiles it again.

Standard library only: setup.py loads this file by path, before anything is installed.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import os
import warnings
from pathlib import Path

# The modules that stay pure Python, each with the reason it would break compiled:
PURE = frozenset({
    "__init__.py",  # the package's search path is set up here (`search_path`), before any module is imported
    "compiled.py",  # read by setup.py before the build
    # its dataclasses annotate fields with transaction classes imported only under TYPE_CHECKING (events <->
    # transaction); compiled, it builds those annotations at import, before ivr.sip.transaction exists: a crash
    "events.py",
    "registrar.py",  # ivr/engine/agents.py subclasses its Registrar; interpreted code cannot subclass a native class
    # its exceptions derive from ivr.errors.IvrError (pure), so mypyc makes them plain classes and drops an annotated
    # class default (`status_hint: int = 488`): AttributeError
    "errors.py",
    # the asyncio adapter (its cost is the sendto, not its Python): compiled, `datagram_received` would reject an
    # IPv6 socket's 4-tuple address (compiled code checks annotations at run time)
    "transport.py",
})
GROUP = "ivr.sip.native"
"""mypyc's name for the compiled modules together: their shared library is `ivr.sip.native__mypyc`, inside the
package (mypyc's default, a hash, would be a top-level module an editable install's finder does not reach)."""
STAMP = "SOURCES.sha256"
"""Written beside the compiled modules at their build: the digest of the sources they were compiled from."""
PACKAGE = Path(__file__).resolve().parent
CHECKOUT_BUILD = PACKAGE.parents[1] / "build" / "sip"
"""A checkout's compiled build (`make install`: `setup.py build_ext --build-lib build/sip`); absent in a wheel."""
CHECKOUT_MODULES = CHECKOUT_BUILD / "ivr" / "sip"
"""Where in `CHECKOUT_BUILD` the compiled modules of this package and their `STAMP` are."""


def compiled_sources(package: Path = PACKAGE) -> list[Path]:
    """The modules mypyc compiles: the package's .py files but `PURE`, in a stable order."""
    return sorted(p for p in package.glob("*.py") if p.name not in PURE)


def sources_digest(package: Path = PACKAGE) -> str:
    """SHA-256 over the compiled modules' names and contents (~1 ms): what a build is checked against."""
    digest = hashlib.sha256()
    for source in compiled_sources(package):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()


def search_path(package_path: list[str], build: Path = CHECKOUT_MODULES) -> list[str]:
    """`ivr.sip.__path__`: the checkout's compiled build first when it was built from these very sources, else the
    sources alone (a wheel, IVR_MYPYC=0, no build, or an edited checkout: the last one with a warning)."""
    if os.environ.get("IVR_MYPYC") == "0":
        return package_path
    try:
        built_from = (build / STAMP).read_text(encoding="ascii").strip()
    except OSError:
        return package_path
    if built_from != sources_digest(Path(package_path[0])):
        warnings.warn(f"the compiled SIP layer in {build} was built from other sources: running them as pure "
                      "Python (`make install` compiles them again)", RuntimeWarning, stacklevel=2)
        return package_path
    return [str(build), *package_path]


def running_compiled() -> bool:
    """Whether this process runs the compiled SIP layer (its parser is an extension module)."""
    import ivr.sip.parser

    return ivr.sip.parser.__file__ is not None and ivr.sip.parser.__file__.endswith(
        tuple(importlib.machinery.EXTENSION_SUFFIXES))

