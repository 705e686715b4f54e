"""PocketSphinx, Whisper and Moonshine decoding in helper processes: on every core, never stalling a call's media.

PocketSphinx holds the GIL while it decodes: in the engine's process, ten callers talking at once
took more than half the interpreter's time (py-spy: 54% in `process_raw`), so the event loop that
paces every call's RTP waited on decoding, and decoding could use one core however many the
machine has. A `DecoderHost` is a helper process holding PocketSphinx recognizers; the engine holds
`RemoteRecognizer` proxies whose blocking methods send one command over a pipe and wait for the
answer, with the GIL released, on a decode worker thread. A host that dies (a crash in the C
decoder) fails only the utterances it was decoding, as `RecognizerError` (a no-match for the call);
the next recognizer opened starts a new host, prepared with the same phrase biases. A host that hangs
(no answer for `REPLY_TIMEOUT_S`) is killed and counts as one that died.

Whisper (CTranslate2) and Moonshine (ONNX Runtime) release the GIL, but are hosted all the same: a niced process
leaves the cores to the media loops under saturation (below), and their models (tiny.en, base-en, int8) are small;
a decoder process loads them when it starts, so a model that cannot be loaded fails the engine's start. Their
recognizer holds nothing but the utterance's audio, so it stays in the engine's process and only its decodes are
hosted (`DecodeHosts`): each goes, with its audio, to the first process free, instead of to the one its recognizer
was opened in. Vosk is not hosted:
Kaldi releases the GIL while decoding, and its models (hundreds of MB) would be loaded once per process.

A host decodes at a lower CPU priority than the engine (`DECODER_NICE`): media is paced in real time and a
late packet is a hole in what a caller hears (or, in `ivr load`'s callers on the same machine, in what they
say), while a decode that waits a few hundred milliseconds only delays one decision. When the cores are
saturated the decoders fall behind instead of the media loops; `ivr.speech.pool` bounds how far behind.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from ivr.speech.errors import RecognizerError, SpeechModelError
from ivr.speech.recognizer import RecognitionResult
from ivr.speech.whole import BEAM_SIZE, Scored

__all__ = ["DecodeHosts", "DecoderHost", "HostedDecoder", "RemoteRecognizer"]

log = structlog.get_logger(__name__)

_STOP_TIMEOUT_S = 5.0

REPLY_TIMEOUT_S = 30.0
"""How long a decoder process may take to answer for one utterance (a decode, a recognizer call). A decode takes
milliseconds to a second or two for a 120 s voice message; a process silent this long is hung (or so starved that
its caller was shed long ago): it is killed and the utterance fails as a `RecognizerError` (a no-match: the caller
goes on by keys), instead of the call waiting on it for ever."""

DECODER_NICE = 10
"""Niceness a decoder process adds to its own (Linux CFS: a nice-10 process weighs ~1/10 of a nice-0 one while
both want the CPU; alone, it gets the whole core). bench/RESULTS.md "speech_load" has the effect."""


class DecoderHost:
    """One helper process holding recognizers of the given model specs; one command at a time."""

    def __init__(self, specs: Sequence[Any], name: str) -> None:
        self._specs = tuple(specs)
        self._name = name
        self._lock = threading.Lock()  # decode worker threads share the pipe
        self._starting = threading.Lock()
        self._ids = itertools.count(1)
        self._prepared: dict[tuple[str, tuple[str, ...], bool], int] = {}
        """Phrase biases built so far, built again in a replacement process."""
        self._process: Any = None
        self._conn: Connection | None = None
        self.open_recognizers = 0

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else int(self._process.pid)

    def start(self) -> None:
        """Start the process and load the models in it (blocking: about a second)."""
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        """Start the process without waiting for it (several hosts then load their models at once)."""
        context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child, self._specs), name=self._name, daemon=True)
        process.start()
        child.close()
        self._process, self._conn = process, parent
        self.open_recognizers = 0

    def wait_ready(self) -> None:
        """Wait until the spawned process has loaded its models, then rebuild its phrase biases."""
        self._request("ping")
        for (dialect, phrases, closed), count in self._prepared.items():
            self._request("prepare", dialect, phrases, count, closed)
        log.info("decoder_host_started", host=self._name, pid=self.pid)

    def ensure_started(self) -> None:
        with self._starting:
            if not self.alive:
                self.stop()
                self.start()

    def prepare(self, dialect: str, phrases: Sequence[str], recognizers: int, *, closed: bool = False) -> None:
        """Build `dialect`'s phrase bias in `recognizers` pooled recognizers (`closed`: its answers engine's)."""
        self._prepared[dialect, tuple(phrases), closed] = recognizers
        self._request("prepare", dialect, tuple(phrases), recognizers, closed)

    def open(self, dialect: str, *, closed: bool = False) -> RemoteRecognizer:
        """A recognizer of `dialect` in this process (`closed`: of its answers engine, `SpeechModels.open`)."""
        rid = next(self._ids)
        self._request("open", dialect, rid, closed)
        self.open_recognizers += 1
        return RemoteRecognizer(self, rid, dialect, self.pid)

    def release(self, recognizer: RemoteRecognizer) -> None:
        """Give a recognizer back to the host's free list (nothing to do if the host has died since)."""
        if recognizer.pid != self.pid or not self.alive:
            return
        self.open_recognizers -= 1
        self._request("release", recognizer.rid)

    def decode(self, dialect: str, audio: npt.NDArray[np.int16], beam_size: int) -> list[Scored]:
        """One whole utterance decoded by the process's Whisper or Moonshine model of `dialect` (blocking)."""
        scored: list[Scored] = self._request("decode", dialect, audio, beam_size, timeout_s=REPLY_TIMEOUT_S)
        return scored

    def _kill_hung(self, what: str, waited_s: float) -> None:
        log.error("decoder_host_hung", host=self._name, pid=self.pid, command=what, waited_s=waited_s)
        if self._process is not None:
            self._process.kill()  # the next recognizer opened, or decode, starts a new process
            self._process.join(_STOP_TIMEOUT_S)
        raise RecognizerError(f"decoder process {self._name} did not answer {what!r} in {waited_s:g} s: killed")

    def call(self, recognizer: RemoteRecognizer, method: str, *args: Any) -> Any:
        if recognizer.pid != self.pid:
            raise RecognizerError(f"decoder process {recognizer.pid} of {recognizer.language!r} is gone")
        return self._request("call", recognizer.rid, method, *args, timeout_s=REPLY_TIMEOUT_S)

    def stop(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is None:
            return
        try:
            if conn is not None and process.is_alive():
                with self._lock:
                    conn.send(("stop",))
            process.join(_STOP_TIMEOUT_S)
        except OSError:
            pass
        if process.is_alive():
            process.kill()
            process.join(_STOP_TIMEOUT_S)
        if conn is not None:
            conn.close()

    def _request(self, *command: Any, timeout_s: float | None = None) -> Any:
        """Send one command and wait for its answer (`timeout_s`: at most that long, then the process is taken for
        hung and killed: its late answer would be read as the next command's)."""
        conn = self._conn
        if conn is None:
            raise RecognizerError(f"decoder process {self._name} is not running")
        with self._lock:
            try:
                conn.send(command)
                if timeout_s is not None and not conn.poll(timeout_s):
                    self._kill_hung(command[0], timeout_s)
                ok, value = conn.recv()
            except (EOFError, OSError) as exc:
                code = self._process.exitcode if self._process is not None else None
                log.error("decoder_host_died", host=self._name, pid=self.pid, exitcode=code)
                raise RecognizerError(f"decoder process {self._name} died (exit code {code})") from exc
        if ok:
            return value
        kind, message = value
        if kind == "SpeechModelError":
            raise SpeechModelError(*message)
        raise RecognizerError(message)


class DecodeHosts:
    """The decoder processes as a pool for whole-utterance decodes: each decode goes to the first process free.

    Ten Whisper callers ending together, with recognizers bound to a process when opened (as PocketSphinx's must be:
    their live state is in it), were decoded six on one process and four on the other while the first idled
    (`bench.asr whisper`, bench/RESULTS.md whisperfast); here neither idles while a decode waits."""

    def __init__(self, hosts: Sequence[DecoderHost]) -> None:
        self._free: queue.SimpleQueue[DecoderHost] = queue.SimpleQueue()
        for host in hosts:
            self._free.put(host)

    def decode(self, dialect: str, audio: npt.NDArray[np.int16], beam_size: int) -> list[Scored]:
        """Wait for a free process, decode there (one that died is started again first: about a second)."""
        host = self._free.get()
        try:
            host.ensure_started()
            return host.decode(dialect, audio, beam_size)
        finally:
            self._free.put(host)


@dataclass(slots=True, frozen=True)
class HostedDecoder:
    """A `WholeDecoder` (Whisper, Moonshine) whose decodes run in the decoder processes (`DecodeHosts`)."""

    dialect: str
    hosts: DecodeHosts

    def decode(self, audio: npt.NDArray[np.int16], beam_size: int = BEAM_SIZE) -> list[Scored]:
        return self.hosts.decode(self.dialect, audio, beam_size)


class RemoteRecognizer:
    """A `Recognizer` living in a `DecoderHost` (blocking calls: run them through `DecodePool`)."""

    def __init__(self, host: DecoderHost, rid: int, language: str, pid: int | None) -> None:
        self.host = host
        self.rid = rid
        self.pid = pid
        self._language = language

    @property
    def language(self) -> str:
        return self._language

    def set_phrases(self, phrases: Sequence[str]) -> None:
        self.host.call(self, "set_phrases", tuple(phrases))

    def accept(self, frame: npt.NDArray[np.int16]) -> None:
        self.host.call(self, "accept", frame)

    def partial(self) -> RecognitionResult:
        result: RecognitionResult = self.host.call(self, "partial")
        return result

    def finish(self) -> RecognitionResult:
        result: RecognitionResult = self.host.call(self, "finish")
        return result

    def settle(self) -> RecognitionResult | None:
        result: RecognitionResult | None = self.host.call(self, "settle")
        return result

    def reset(self) -> None:
        self.host.call(self, "reset")

    def acoustic_state(self) -> str | None:
        state: str | None = self.host.call(self, "acoustic_state")
        return state

    def restore_acoustic_state(self, state: str | None) -> None:
        self.host.call(self, "restore_acoustic_state", state)

    def close(self) -> None:
        self.host.release(self)


_METHODS = frozenset(
    {"set_phrases", "accept", "partial", "finish", "settle", "reset", "acoustic_state", "restore_acoustic_state"}
)


def yield_cpu(nice: int = DECODER_NICE) -> None:
    """Lower this process's CPU priority by `nice` (never raises it: only privilege could take it back)."""
    if nice > 0 and hasattr(os, "nice"):
        try:
            os.nice(nice)
        except OSError as exc:  # a sandbox without setpriority: decode at the engine's priority
            log.warning("decoder_nice_refused", error=str(exc))


def _serve(conn: Connection, specs: tuple[Any, ...]) -> None:
    """The host process: load the models, then answer commands until told to stop."""
    from threadpoolctl import threadpool_limits

    from ivr.speech.models import SpeechModels

    yield_cpu()
    # One thread each, so a decoder process is one core's worth. CTranslate2's OpenMP (Whisper) reads the variable when
    # it is first imported (below: 0.165 s CPU a need for 0.110 s wall when unset). numpy's OpenBLAS was loaded with
    # this module, a thread per core: Whisper's features (a matrix product per need) woke its second thread, which
    # then spun, so a decode cost twice its wall time in CPU, and two processes decoding at once 196 ms a decode each
    # instead of 79 (bench/RESULTS.md whisperfast).
    os.environ["OMP_NUM_THREADS"] = "1"
    threadpool_limits(limits=1)
    try:  # whole-utterance models loaded now: one that cannot be fails the engine's start, not a caller's decode
        models = SpeechModels.load(specs)
        models.load_whole()
    except SpeechModelError as exc:
        _refuse(conn, exc)
        return
    recognizers: dict[int, Any] = {}
    while True:
        try:
            command = conn.recv()
        except EOFError:
            return  # the engine is gone
        op, args = command[0], command[1:]
        if op == "stop":
            return
        try:
            value: Any = None
            if op == "ping":
                pass
            elif op == "prepare":
                dialect, phrases, count, closed = args
                models.prepare(dialect, phrases, recognizers=count, closed=closed)
            elif op == "open":
                dialect, rid, closed = args
                recognizers[rid] = models.open(dialect, closed=closed)
            elif op == "release":
                models.release(recognizers.pop(args[0]))
            elif op == "decode":
                dialect, audio, beam_size = args
                value = models.decode_whole(dialect, audio, beam_size)
            elif op == "call" and args[1] in _METHODS:
                value = getattr(recognizers[args[0]], args[1])(*args[2:])
            else:
                raise ValueError(f"unknown decoder host command {op!r}")
            conn.send((True, value))
        except SpeechModelError as exc:
            conn.send((False, _model_error(exc)))
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the engine as an answer
            conn.send((False, (type(exc).__name__, str(exc))))


def _model_error(exc: SpeechModelError) -> tuple[str, tuple[str, Path | None, str]]:
    """A `SpeechModelError` as the engine's `DecoderHost._request` raises it again."""
    return "SpeechModelError", (exc.dialect, exc.path, exc.reason)


def _refuse(conn: Connection, failure: SpeechModelError) -> None:
    """Answer every command with the error that kept the models from loading, until the engine stops the process."""
    while True:
        try:
            command = conn.recv()
        except EOFError:
            return
        if command[0] == "stop":
            return
        conn.send((False, _model_error(failure)))
