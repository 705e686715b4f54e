"""Prompts → 8 kHz int16 audio, served from memory during calls.

`PromptLibrary.build(flows)` resolves every prompt of the loaded flows in every dialect they serve,
loads the recordings it chose and renders the fixed text of every synthesized prompt (the text
between `{placeholders}`) through the content-addressed cache, into memory. A call then asks
`await library.audio_for(prompt)`: fixed parts come from memory, only the variable parts (a policy
number, an amount) are rendered, in a bounded thread pool off the event loop, cached on disk and in
a bounded in-memory LRU, and concatenated.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import structlog
from numpy.typing import NDArray

from ivr.call import Prompt
from ivr.media.resample import TELEPHONY_RATE_HZ
from ivr.voice.audio import load_prompt_audio
from ivr.voice.cache import RenderCache, render_key
from ivr.voice.dialects import DialectSet, TtsSettings
from ivr.voice.errors import PromptUnavailable, SpeakError, TtsError
from ivr.voice.flowprompts import FlowPrompts
from ivr.voice.resolve import PLACEHOLDER_RE, PromptSource, Resolution, Resolver, scan_recordings
from ivr.voice.speak import Numerals, read_long_numbers, say_default
from ivr.voice.tts import TtsEngine

log = structlog.get_logger(__name__)

Audio = NDArray[np.int16]
_JOIN_SILENCE_SAMPLES = TELEPHONY_RATE_HZ * 8 // 100
"""Silence kept at each join of a multi-part prompt (80 ms); TTS clips end with ~0.4 s of it."""
_SILENCE_LEVEL = 200
SERVED_FIXED_MAX = 4096
"""Fixed prompts (no variables) kept as served, per build: beyond this many the memo starts over."""


@dataclass(slots=True, frozen=True)
class Segment:
    """A piece of a prompt template: fixed text, or a `{variable}` (`variable` set, `text` empty)."""

    text: str
    variable: str | None = None
    unit_follows: bool = False
    """The template goes on with a currency unit (`{amount}元`): say the amount as a plain number."""


_UNIT_RE = re.compile(r"元|\s*yuan\b", re.IGNORECASE)


def split_template(template: str) -> tuple[Segment, ...]:
    """`保单{policy_no}余额{amount}。` → fixed, variable, fixed, variable; punctuation-only parts dropped."""
    out: list[Segment] = []
    pos = 0
    for match in PLACEHOLDER_RE.finditer(template):
        out.append(Segment(template[pos : match.start()]))
        out.append(Segment("", match[1], bool(_UNIT_RE.match(template, match.end()))))
        pos = match.end()
    out.append(Segment(template[pos:]))
    return tuple(s for s in out if s.variable is not None or _speakable(s.text))


def _speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


@dataclass(slots=True, frozen=True)
class ResolvedPrompt:
    """The audio for one prompt and how it was chosen (also logged as `prompt_resolved`)."""

    audio: Audio
    resolution: Resolution
    spoken_text: str | None = None
    """What TTS said, variables filled in; None for a recording."""
    cache_keys: tuple[str, ...] = ()
    """Render-cache keys of the synthesized parts, in order."""

    @property
    def source(self) -> PromptSource:
        return self.resolution.source

    @property
    def dialect_used(self) -> str:
        return self.resolution.dialect_used

    @property
    def fallback_from(self) -> str | None:
        return self.resolution.fallback_from

    @property
    def path(self) -> Path | None:
        """The recording played, for a recorded prompt."""
        return self.resolution.recording

    @property
    def duration_s(self) -> float:
        return self.audio.size / TELEPHONY_RATE_HZ


@dataclass(slots=True, frozen=True)
class RenderJob:
    key: str
    text: str
    voice: str
    rate_wpm: int
    personal: bool = False
    """A caller's own words (a name, an amount): cached apart, purged by `RenderCache.purge_personal`."""


@dataclass(slots=True, frozen=True)
class BuildReport:
    """What `PromptLibrary.build` did."""

    resolutions: tuple[tuple[str, Resolution], ...]
    """(flow name, resolution) for every prompt × dialect the flows serve."""
    unavailable: tuple[tuple[str, PromptUnavailable], ...]
    rendered: int
    """Fixed parts synthesized now (the rest came from the disk cache)."""
    from_cache: int
    recordings: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.unavailable


ProgressFn = Callable[[int, int], None]
"""Called with (done, total) as build jobs finish."""


def merge_flow_texts(flows: Iterable[FlowPrompts]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """All flows' texts by prompt id and dialect; the first flow to define one wins (others warned about)."""
    texts: dict[str, dict[str, str]] = {}
    warnings: list[str] = []
    for flow in flows:
        for prompt_id, by_dialect in flow.texts.items():
            known = texts.setdefault(prompt_id, {})
            for code, text in by_dialect.items():
                if code in known and known[code] != text:
                    warnings.append(
                        f"flow '{flow.name}': prompt '{prompt_id}' [{code}] differs from another flow's"
                    )
                known.setdefault(code, text)
    return texts, warnings


def resolve_flows(
    flows: Iterable[FlowPrompts], dialects: DialectSet, resolver_for: Callable[[FlowPrompts], Resolver]
) -> Iterator[tuple[FlowPrompts, Resolution | PromptUnavailable]]:
    """Every prompt of every flow in every dialect the flow serves (its declaration, else every pack)."""
    for flow in flows:
        resolver = resolver_for(flow)
        for code in flow.dialects or tuple(dialects):
            for prompt_id in flow.texts:
                try:
                    yield flow, resolver.resolve(prompt_id, code)
                except PromptUnavailable as exc:
                    yield flow, exc


def check_voices(dialects: DialectSet, engine: TtsEngine) -> tuple[DialectSet, list[str]]:
    """Packs whose voice the engine lacks become recordings-only, with a warning naming pack and voice."""
    try:
        installed = engine.voices()
    except TtsError as exc:
        installed = frozenset()
        warnings = [f"TTS unavailable, every dialect is served from recordings only: {exc}"]
    else:
        warnings = []
    missing: set[str] = set()
    for pack in dialects.values():
        if pack.tts is not None and pack.tts.voice.lower() not in installed:
            missing.add(pack.tts.voice)
            if installed:
                warnings.append(
                    f"{pack.tts.where}: TTS voice '{pack.tts.voice}' is not installed "
                    "(espeak-ng --voices); the dialect is served from recordings and its fallbacks"
                )
    return (dialects.without_voices(missing) if missing else dialects), warnings


def _trim_join(parts: Sequence[Audio]) -> Audio:
    """Concatenate, trimming each join to at most `_JOIN_SILENCE_SAMPLES` of silence on either side."""
    if len(parts) == 1:
        return parts[0]
    trimmed: list[Audio] = []
    for i, part in enumerate(parts):
        loud = np.flatnonzero(np.abs(part.astype(np.int32)) > _SILENCE_LEVEL)
        if loud.size == 0:
            continue
        start = 0 if i == 0 else max(0, int(loud[0]) - _JOIN_SILENCE_SAMPLES // 2)
        end = part.size if i == len(parts) - 1 else min(part.size, int(loud[-1]) + _JOIN_SILENCE_SAMPLES // 2)
        trimmed.append(part[start:end])
    return np.concatenate(trimmed) if trimmed else np.zeros(0, dtype=np.int16)


class PromptLibrary:
    """Resolves, renders, caches and serves prompt audio for the call layer."""

    def __init__(
        self,
        dialects: DialectSet,
        engine: TtsEngine,
        cache: RenderCache,
        prompts_dir: Path,
        *,
        max_workers: int = 2,
        variable_cache_entries: int = 4096,
    ) -> None:
        self._engine = engine
        self._cache = cache
        self._prompts_dir = prompts_dir
        self.dialects, self.voice_warnings = check_voices(dialects, engine)
        for warning in self.voice_warnings:
            log.warning("tts_voice_missing", detail=warning)
        self.recordings = scan_recordings(prompts_dir)
        self._resolver = Resolver(self.dialects, {}, self.recordings)
        self._fixed: dict[str, Audio] = {}
        self._recorded: dict[Path, Audio] = {}
        self._variable: OrderedDict[str, Audio] = OrderedDict()
        self._variable_limit = variable_cache_entries
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ivr-tts")
        self._inflight: dict[str, asyncio.Future[Audio]] = {}
        self._served: dict[tuple[str, str, str], ResolvedPrompt] = {}
        """Prompts with no variables as already served, by (id, dialect, text): every call of a flow
        plays the same greeting, and resolving it, splitting its template and hashing its render keys
        cost ~90 µs a call under `bench.sip_cps` (issue 22). Valid for one resolver (`_served_by`)."""
        self._served_by: Resolver | None = None

    # -- build (before serving) ------------------------------------------------------------------

    def build(self, flows: Sequence[FlowPrompts], progress: ProgressFn | None = None) -> BuildReport:
        """Resolve every prompt the flows need in every dialect they serve; load and render it all.

        Blocking (renders run in the pool, in parallel): call it before serving, or use `rebuild`.
        Recordings are looked for again, so a new file in prompts/ is picked up. What calls are
        served is replaced only once everything is in memory.
        """
        texts, warnings = merge_flow_texts(flows)
        found = scan_recordings(self._prompts_dir)
        resolver = Resolver(self.dialects, texts, found)
        resolutions: list[tuple[str, Resolution]] = []
        unavailable: list[tuple[str, PromptUnavailable]] = []
        for flow, result in resolve_flows(flows, self.dialects, lambda _flow: resolver):
            if isinstance(result, PromptUnavailable):
                unavailable.append((flow.name, result))
            else:
                resolutions.append((flow.name, result))
        recordings = sorted({r.recording for _f, r in resolutions if r.recording is not None})
        jobs = {job.key: job for _f, r in resolutions for job in self.fixed_jobs(r)}
        total = len(recordings) + len(jobs)
        from_cache = sum(1 for key in jobs if key in self._cache)
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            if progress:
                progress(done, total)

        recorded: dict[Path, Audio] = {}
        for path, audio in zip(recordings, self._executor.map(load_prompt_audio, recordings), strict=True):
            audio.flags.writeable = False  # as `_render_sync`'s
            recorded[path] = audio
            tick()
        fixed: dict[str, Audio] = {}
        for key, audio in zip(jobs, self._executor.map(self._render_sync, jobs.values()), strict=True):
            fixed[key] = audio
            tick()
        self.recordings, self._resolver, self._fixed, self._recorded = found, resolver, fixed, recorded
        for warning in warnings:
            log.warning("prompt_text_conflict", detail=warning)
        report = BuildReport(
            tuple(resolutions), tuple(unavailable), len(jobs) - from_cache, from_cache, len(recordings),
            tuple(self.voice_warnings + warnings),
        )  # fmt: skip
        log.info(
            "prompts_built", prompts=len(resolutions), unavailable=len(unavailable),
            rendered=report.rendered, from_cache=report.from_cache, recordings=report.recordings,
        )  # fmt: skip
        return report

    async def rebuild(self, flows: Sequence[FlowPrompts]) -> BuildReport:
        """`build` from a running loop (a flow reload): runs in a worker thread; calls keep being served
        from the previous build until the new one is complete."""
        return await asyncio.to_thread(self.build, flows)

    def fixed_jobs(self, resolution: Resolution) -> list[RenderJob]:
        """The render jobs for a synthesized prompt's fixed text (none for a recording)."""
        tts, text = resolution.tts, resolution.text
        if resolution.source is not PromptSource.SYNTHESIZED or tts is None or text is None:
            return []
        fixed = (
            read_long_numbers(seg.text, resolution.numerals)
            for seg in split_template(text)
            if seg.variable is None
        )
        return [self._job(part, tts) for part in fixed]

    def _job(self, text: str, tts: TtsSettings, *, personal: bool = False) -> RenderJob:
        return RenderJob(render_key(text, tts.voice, tts.rate_wpm, self._engine.engine_id), text, tts.voice,
                         tts.rate_wpm, personal)  # fmt: skip

    def _render_sync(self, job: RenderJob) -> Audio:
        """Disk cache or TTS (then stored). Runs in the pool."""
        cached = self._cache.load(job.key, personal=job.personal)
        if cached is None:
            cached = self._engine.synthesize(job.text, job.voice, job.rate_wpm)
            self._cache.store(job.key, cached, personal=job.personal)
        cached.flags.writeable = False  # served to every call: the media layer encodes it once (EncodedClips)
        return cached

    def add_recording(self, dialect: str, prompt_id: str, path: Path, audio: Audio) -> None:
        """Serve a recording just written (the prompt-recording line's accepted take) from the next prompt on,
        without a rebuild: the audio is in memory already, and the resolver is swapped in one assignment."""
        self._recorded[path] = audio
        self.recordings = {**self.recordings, (dialect, prompt_id): path}
        self._resolver = self._resolver.with_recording(dialect, prompt_id, path)
        log.info("prompt_recording_added", dialect=dialect, prompt_id=prompt_id, path=str(path))

    # -- serving (during calls) --------------------------------------------------------------------

    def resolve(self, prompt: Prompt) -> Resolution:
        return self._resolver.resolve(prompt.prompt_id, prompt.dialect, prompt.text)

    async def audio_for(self, prompt: Prompt) -> ResolvedPrompt:
        """The prompt's audio; fixed parts from memory, variable parts rendered off the loop and cached.

        Raises `PromptUnavailable` when no dialect in the chain can supply it, `TtsError` when
        synthesis of a variable part fails.
        """
        served = self._served_memo()
        key = (prompt.prompt_id, prompt.dialect, prompt.text)
        result = served.get(key)
        if result is None:
            result = await self._audio_for(prompt)
            if result.resolution.recording is not None or not self._has_variables(result):
                if len(served) >= SERVED_FIXED_MAX:
                    served.clear()
                served[key] = result
        log.info(
            "prompt_resolved",
            prompt_id=prompt.prompt_id,
            requested=prompt.dialect,
            dialect_used=result.dialect_used,
            source=result.source.value,
            fallback_from=result.fallback_from,
            path=str(result.path) if result.path else None,
            duration_s=round(result.duration_s, 2),
        )
        return result

    def _served_memo(self) -> dict[tuple[str, str, str], ResolvedPrompt]:
        """The memo of fixed prompts for the resolver in force (a build or a new recording starts a new one:
        the resolver and the fixed audio are replaced together)."""
        if self._served_by is not self._resolver:
            self._served, self._served_by = {}, self._resolver
        return self._served

    @staticmethod
    def _has_variables(result: ResolvedPrompt) -> bool:
        text = result.resolution.text
        return text is not None and any(seg.variable is not None for seg in split_template(text))

    async def _audio_for(self, prompt: Prompt) -> ResolvedPrompt:
        try:
            resolution = self.resolve(prompt)
        except PromptUnavailable as exc:
            log.warning(
                "prompt_unavailable", prompt_id=prompt.prompt_id, dialect=prompt.dialect, detail=str(exc)
            )
            raise
        if resolution.recording is not None:
            return ResolvedPrompt(await self._recording(resolution.recording), resolution)
        return await self._synthesized(prompt, resolution)

    async def _recording(self, path: Path) -> Audio:
        audio = self._recorded.get(path)
        if audio is None:
            log.warning("prompt_not_prebuilt", path=str(path))
            audio = await asyncio.get_running_loop().run_in_executor(self._executor, load_prompt_audio, path)
            self._recorded[path] = audio
        return audio

    async def _synthesized(self, prompt: Prompt, resolution: Resolution) -> ResolvedPrompt:
        assert resolution.tts is not None and resolution.text is not None
        parts: list[Audio] = []
        keys: list[str] = []
        words: list[str] = []
        for seg in split_template(resolution.text):
            if seg.variable is None:
                job = self._job(read_long_numbers(seg.text, resolution.numerals), resolution.tts)
                audio = self._fixed.get(job.key)
                if audio is None:
                    log.warning(
                        "prompt_not_prebuilt", prompt_id=prompt.prompt_id, dialect=resolution.dialect_used
                    )
                    audio = await self._render(job, fixed=True)
                words.append(job.text)
            else:
                spoken = self._speak(prompt.prompt_id, seg, prompt.variables, resolution.numerals)
                if not spoken:
                    continue
                job = self._job(spoken, resolution.tts, personal=True)
                hit = self._variable_hit(job.key)
                audio = hit if hit is not None else await self._render(job, fixed=False)
                words.append(spoken)
            parts.append(audio)
            keys.append(job.key)
        audio = _trim_join(parts) if parts else np.zeros(0, dtype=np.int16)
        return ResolvedPrompt(audio, resolution, "".join(words) if words else None, tuple(keys))

    @staticmethod
    def _speak(prompt_id: str, seg: Segment, variables: Mapping[str, str], numerals: Numerals) -> str:
        name = seg.variable or ""
        value = variables.get(name)
        if value is None:
            log.warning("prompt_variable_missing", prompt_id=prompt_id, variable=name)
            return ""
        try:
            return say_default(name, str(value), numerals, unit_follows=seg.unit_follows)
        except SpeakError as exc:
            log.warning("prompt_variable_unspeakable", prompt_id=prompt_id, variable=name, detail=str(exc))
            return str(value)

    def _variable_hit(self, key: str) -> Audio | None:
        audio = self._variable.get(key)
        if audio is not None:
            self._variable.move_to_end(key)
        return audio

    async def _render(self, job: RenderJob, *, fixed: bool) -> Audio:
        """Render in the pool; concurrent requests for one key share one render."""
        future = self._inflight.get(job.key)
        if future is None:
            future = asyncio.get_running_loop().run_in_executor(self._executor, self._render_sync, job)
            self._inflight[job.key] = future
            future.add_done_callback(lambda _f: self._inflight.pop(job.key, None))
        audio = await asyncio.shield(future)
        if fixed:
            self._fixed[job.key] = audio
        else:
            self._variable[job.key] = audio
            while len(self._variable) > self._variable_limit:
                self._variable.popitem(last=False)
        return audio

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> PromptLibrary:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
