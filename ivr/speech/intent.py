"""Intent classification: what the caller wants, from one recognized utterance.

Trained at flow load from the flow's own phrases (a few dozen per intent, Mandarin and English
mixed), so training must take milliseconds. Chinese needs no word segmenter: the text is read as
character 1-3-grams; English adds word 1-2-grams and character 2-4-grams inside words, which keeps
a misrecognised word ("clam" for "claim") close to its original.

Confidence is calibrated to mean something to the flow (act at >= 0.6, confirm, re-ask, keys):

* a multinomial logistic regression over the intents plus a hidden *out-of-domain* class trained on
  generic chatter gives the in-domain distribution;
* that is scaled by how much of the utterance the model has ever seen (share of its n-grams that
  occur in the training phrases), so gibberish and unrelated talk get low confidence even when the
  regression is forced to pick something.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ivr.speech.errors import IntentTrainingError

__all__ = ["IntentClassifier", "IntentScore", "after_correction", "normalize_utterance"]

_OOD = "\x00out_of_domain"
_C = 20.0
"""Inverse regularisation strength, chosen by 5-fold cross-validation on the hotline phrases."""

# Spoken fillers and polite padding that carry no intent. Longest first so "麻烦你" beats "麻烦".
_CMN_PADDING: tuple[str, ...] = tuple(
    sorted(
        {
            "您好",
            "你好",
            "喂",
            "请问一下",
            "请问",
            "麻烦您",
            "麻烦你",
            "麻烦",
            "谢谢您",
            "谢谢你",
            "谢谢",
            "那个",
            "这个",
            "就是说",
            "就是",
            "然后呢",
            "然后",
            "嗯",
            "呃",
            "额",
            "啊",
            "呀",
            "哦",
            "噢",
            "唉",
            "哎",
            "诶",
            "吧",
            "呢",
            "嘛",
            "啦",
            "哈",
            "的话",
            "一下子",
            "一下",
            "我想问问",
            "我想问",
            "帮我",
            "给我",
            "我要",
            "我想",
            "想要",
            "我",
        },
        key=len,
        reverse=True,
    )
)
_EN_PADDING: tuple[str, ...] = (
    "hello",
    "hi",
    "hey",
    "good morning",
    "good afternoon",
    "good evening",
    "please",
    "thank you",
    "thanks",
    "um",
    "umm",
    "uh",
    "uhh",
    "er",
    "erm",
    "ah",
    "oh",
    "well",
    "like",
    "you know",
    "so",
    "i'd like to",
    "i would like to",
    "i want to",
    "i wanna",
    "i need to",
    "can you",
    "could you",
    "can i",
    "could i",
    "would you",
    "help me",
    "i",
    "me",
    "my",
    "the",
    "a",
    "an",
    "to",
    "is",
    "it",
    "yes",
    "okay",
    "ok",
    "just",
    "actually",
    "basically",
)
_EN_PADDING_RE = re.compile(
    r"\b(?:" + "|".join(re.escape(p) for p in sorted(_EN_PADDING, key=len, reverse=True)) + r")\b"
)
_CMN_PADDING_RE = re.compile("|".join(re.escape(p) for p in _CMN_PADDING))
_NON_WORD_RE = re.compile(r"[^\w\u4e00-\u9fff']+")
_SPACES_RE = re.compile(r"\s+")
_CJK_RE = re.compile(r"[\u3400-\u9fff]")

# Generic talk no hotline intent should claim: teaches the regression what "none of these" looks like.
_BACKGROUND: tuple[str, ...] = (
    "今天天气怎么样",
    "明天会不会下雨",
    "你们食堂中午吃什么",
    "帮我订一张去北京的火车票",
    "附近有什么好吃的饭馆",
    "给我讲个笑话",
    "现在几点了",
    "我家的猫不见了",
    "股票今天涨了还是跌了",
    "这首歌叫什么名字",
    "我在看电视剧",
    "足球比赛几点开始",
    "快递到哪里了",
    "我想买一台新电脑",
    "路上堵车堵得厉害",
    "what is the weather like today",
    "tell me a joke",
    "what time is it",
    "book me a flight to boston",
    "where is the nearest restaurant",
    "play some music",
    "my cat ran away",
    "how tall is mount everest",
    "turn on the lights",
    "who won the football game",
    "order a pizza",
    "the traffic is terrible",
)


@dataclass(slots=True, frozen=True)
class IntentScore:
    """One candidate intent for an utterance."""

    intent: str
    """Intent name as declared in the flow."""
    confidence: float
    """Calibrated 0..1: the flow acts at >= 0.6, confirms or re-asks below."""


def normalize_utterance(text: str) -> str:
    """Fold width/case, strip punctuation, fillers and polite padding; keep the words that carry intent."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = _NON_WORD_RE.sub(" ", t)
    t = _CMN_PADDING_RE.sub(" ", t)
    t = _EN_PADDING_RE.sub(" ", t)
    return _SPACES_RE.sub(" ", t).strip()


# A caller correcting themself ("policy... no, a claim", "交保费，哦不是，我要报销") means the words after
# the last correction: what came before names the need they took back.
_CORRECTION_RE = re.compile(
    r"\b(?:no wait|wait no|no sorry|sorry no|sorry i mean|i mean|no actually|actually no|actually just|"
    r"or rather|scratch that|let me rephrase|no no)\b"
    # A bare "no" that starts the caller's new sentence ("I want to cancel no I want to pay"); "no
    # longer", "no money" and a closing "no" are not corrections.
    r"|\bno\b(?=,? (?:i|i'm|just|actually|make it|it's)\b)"
    r"|(?:不对|哦不是|哦不|我是说|说错了|搞错了|算了)"
    r"|(?:(?<=[，,。\s])不是(?=[，,。\s]|我))",
    re.IGNORECASE,
)
_MIN_CORRECTION_TAIL = 4
"""Characters the corrected part must keep (a bare "no" after the marker is no new need)."""

# Sounds that southern and elderly speakers merge and Chinese recognisers swap: zh/z, ch/c, sh/s, n/l,
# -ing/-in, -eng/-en, -ang/-an. Pinyin grams are taken after folding them, so 里赔, 理陪 and 理赔 meet.
_FUZZY_PINYIN = (("zh", "z"), ("ch", "c"), ("sh", "s"))
_FUZZY_FINALS = (("ing", "in"), ("eng", "en"), ("ang", "an"))


def after_correction(text: str) -> str:
    """The part of `text` after the caller's last self-correction, or `text` when there is none."""
    ends = [m.end() for m in _CORRECTION_RE.finditer(text)]
    if not ends:
        return text
    tail = text[ends[-1] :]
    return tail if len(_NON_WORD_RE.sub("", tail)) >= _MIN_CORRECTION_TAIL else text


def _fuzzy(syllable: str) -> str:
    for a, b in _FUZZY_PINYIN:
        if syllable.startswith(a):
            syllable = b + syllable[len(a) :]
            break
    if syllable.startswith("n"):
        syllable = "l" + syllable[1:]
    for a, b in _FUZZY_FINALS:
        if syllable.endswith(a):
            return syllable[: -len(a)] + b
    return syllable


def _pinyin(word: str) -> list[str]:
    """Toneless, accent-folded pinyin of each character of a CJK run (homophones share it)."""
    return [_char_sound(c) for c in word]


@functools.lru_cache(maxsize=8192)
def _char_sound(char: str) -> str:
    """One character's commonest reading, folded. Per character, not per word: an ASR's wrong
    character has no word context either, and a cached lookup keeps classify well under a ms."""
    from pypinyin import lazy_pinyin

    return _fuzzy(lazy_pinyin(char)[0])


def _char_grams(text: str) -> list[str]:
    """Character 1-3-grams of CJK runs with their pinyin syllable 1-2-grams, 2-4-grams inside latin
    words, plus latin word 1-2-grams."""
    grams: list[str] = []
    words = text.split(" ")
    latin: list[str] = []
    for word in words:
        if not word:
            continue
        if _CJK_RE.search(word):
            for n in (1, 2, 3):
                grams.extend("c" + word[i : i + n] for i in range(len(word) - n + 1))
            sounds = _pinyin(word)
            grams.extend("p" + " ".join(sounds[i : i + 2]) for i in range(len(sounds) - 1))
        else:
            latin.append(word)
            padded = f"<{word}>"
            for n in (3, 4):
                grams.extend("l" + padded[i : i + n] for i in range(len(padded) - n + 1))
    grams.extend("w" + w for w in latin)
    grams.extend("b" + a + " " + b for a, b in zip(latin, latin[1:], strict=False))
    return grams


class IntentClassifier:
    """A small linear classifier over character/word n-grams, trained from a flow's phrases."""

    __slots__ = ("_intents", "_vocab", "_idf", "_coef", "_bias", "_keywords", "_labels", "_known")

    def __init__(
        self,
        intents: tuple[str, ...],
        labels: tuple[str, ...],
        vocab: dict[str, int],
        idf: npt.NDArray[np.float64],
        coef: npt.NDArray[np.float64],
        bias: npt.NDArray[np.float64],
        keywords: dict[str, tuple[str, ...]],
        known: frozenset[str],
    ) -> None:
        self._intents = intents
        self._labels = labels
        self._vocab = vocab
        self._idf = idf
        self._coef = coef
        self._bias = bias
        self._keywords = keywords
        self._known = known

    @classmethod
    def train(
        cls,
        examples: Mapping[str, Sequence[str]],
        *,
        keywords: Mapping[str, Sequence[str]] | None = None,
    ) -> IntentClassifier:
        """Fit on `{intent: [phrase, ...]}`; `keywords` are short strings that strongly signal an intent."""
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        intents = tuple(examples)
        if not intents:
            raise IntentTrainingError("cannot train an intent classifier with no intents")
        kw = {
            i: tuple(normalize_utterance(k) for k in (keywords or {}).get(i, ()) if k.strip())
            for i in intents
        }
        unknown = set(keywords or {}) - set(intents)
        if unknown:
            raise IntentTrainingError(f"keywords given for unknown intents: {sorted(unknown)}")
        texts: list[str] = []
        y: list[int] = []
        labels = (*intents, _OOD)
        for idx, intent in enumerate(intents):
            phrases = [normalize_utterance(p) for p in examples[intent]]
            phrases.extend(kw[intent])
            phrases = [p for p in phrases if p]
            if not phrases:
                raise IntentTrainingError(f"intent {intent!r} has no usable training phrase")
            texts.extend(phrases)
            y.extend([idx] * len(phrases))
        known = frozenset(g for t in texts for g in _char_grams(t))
        texts.extend(normalize_utterance(t) for t in _BACKGROUND)
        y.extend([len(intents)] * len(_BACKGROUND))

        vocab: dict[str, int] = {}
        docs = [_char_grams(t) for t in texts]
        for d in docs:
            for g in d:
                vocab.setdefault(g, len(vocab))
        df = np.zeros(len(vocab))
        for d in docs:
            for j in {vocab[g] for g in d}:
                df[j] += 1
        idf = np.log((1 + len(docs)) / (1 + df)) + 1.0
        x = _matrix(docs, vocab, idf)
        model = LogisticRegression(C=_C, solver="newton-cg", max_iter=200)
        # BLAS thread pools thrash on a loaded 2-core box (3 s instead of 40 ms): one thread is fastest here.
        with threadpool_limits(limits=1):
            model.fit(x, np.asarray(y))
        coef = np.asarray(model.coef_, dtype=np.float64)
        bias = np.asarray(model.intercept_, dtype=np.float64)
        # Map sklearn's class order (sorted ints) back onto `labels`.
        order = [int(c) for c in model.classes_]
        full_coef = np.zeros((len(labels), len(vocab)))
        full_bias = np.full(len(labels), -1e9)
        for row, cls_idx in enumerate(order):
            full_coef[cls_idx] = coef[row]
            full_bias[cls_idx] = bias[row]
        return cls(intents, labels, vocab, idf, full_coef, full_bias, kw, known)

    @property
    def intents(self) -> tuple[str, ...]:
        return self._intents

    def classify(self, text: str) -> list[IntentScore]:
        """All intents ranked best first, with calibrated confidence in 0..1."""
        norm = normalize_utterance(after_correction(text))
        grams = _char_grams(norm)
        if not grams:
            return [IntentScore(i, 0.0) for i in self._intents]
        cols, weights = _vectorize(grams, self._vocab, self._idf)
        logits = self._coef[:, cols] @ weights + self._bias
        logits -= logits.max()
        probs = np.exp(logits)
        probs /= probs.sum()
        coverage = _coverage(grams, self._known)
        hits = np.array(
            [sum(1 for k in self._keywords[i] if k and k in norm) for i in self._intents], dtype=float
        )
        p = probs[: len(self._intents)]
        if hits.any():
            p = p * (1.0 + 2.0 * hits)
            p = p / max(p.sum() + probs[-1], 1e-12)
            coverage = max(coverage, 0.9)
        scale = min(1.0, coverage / 0.5)
        scores = [IntentScore(i, float(round(p[k] * scale, 4))) for k, i in enumerate(self._intents)]
        scores.sort(key=lambda s: s.confidence, reverse=True)
        return scores


def _vectorize(
    grams: Sequence[str], vocab: Mapping[str, int], idf: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """The utterance's known n-grams as (columns, weights) of one L2-normalised tf-idf row.

    Sparse on purpose: a dense row over a ~10k-gram vocabulary made each classify hand BLAS a
    vector it threads over, ~20 ms on a loaded 2-core box instead of well under 1 ms."""
    counts: dict[int, int] = {}
    for g in grams:
        j = vocab.get(g)
        if j is not None:
            counts[j] = counts.get(j, 0) + 1
    cols = np.fromiter(counts, dtype=np.intp, count=len(counts))
    weights = np.log1p(np.fromiter(counts.values(), dtype=np.float64, count=len(counts))) * idf[cols]
    norm = float(np.sqrt((weights * weights).sum()))
    if norm > 0:
        weights /= norm
    return cols, weights


def _matrix(docs: Sequence[Sequence[str]], vocab: Mapping[str, int], idf: npt.NDArray[np.float64]) -> Any:
    """The training documents as a sparse CSR matrix of the same rows `_vectorize` makes."""
    from scipy import sparse

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for r, d in enumerate(docs):
        counts: dict[int, int] = {}
        for g in d:
            j = vocab[g]
            counts[j] = counts.get(j, 0) + 1
        weights = {j: float(np.log1p(c) * idf[j]) for j, c in counts.items()}
        norm = float(np.sqrt(sum(w * w for w in weights.values()))) or 1.0
        for j, w in weights.items():
            rows.append(r)
            cols.append(j)
            vals.append(w / norm)
    return sparse.csr_matrix((vals, (rows, cols)), shape=(len(docs), len(vocab)))


def _coverage(grams: Sequence[str], known: frozenset[str]) -> float:
    """Share of the utterance's n-grams seen in the intent phrases; single characters count less."""
    total = seen = 0.0
    for g in grams:
        w = 0.3 if len(g) == 2 else 1.0
        total += w
        if g in known:
            seen += w
    return seen / total if total else 0.0
