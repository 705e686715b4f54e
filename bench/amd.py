"""Answering-machine detection: accuracy and decision time on a generated, labelled set.

    python -m bench.amd                 # evaluation half → markdown on stdout (bench/RESULTS.md)
    python -m bench.amd --half tune     # the tuning half (the only one thresholds were chosen on)
    python -m bench.amd --show          # one line per clip, for looking at mistakes (tuning half only)

The set: people answering "喂？/hello?/您好…" then waiting (some say it again), voicemail greetings
(with and without a beep) and operator announcements in Mandarin and English, ring-back (China,
Europe, North America) and dead air; spoken by espeak-ng (Mandarin, English) and Festival (English)
at several speeds and pitches, placed after a random pick-up delay, with line noise at a random level,
then through G.711 (μ-law or A-law). Texts are split between the halves, so the evaluation half holds
sentences the detector's thresholds never saw. Renders are cached in var/amd-cache/.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ivr.media import load_telephony
from ivr.media.g711 import PCMA, PCMU
from ivr.media.tones import RingbackStyle, beep, ringback, silence
from ivr.outbound.amd import AmdConfig, AmdVerdict, detect
from ivr.testing.peers import ESPEAK_NG, FESTIVAL

RATE = 8000
CLIP_S = 6.0
CACHE = pathlib.Path("var/amd-cache")

HUMAN_CMN = ("喂？", "喂，你好？", "您好", "喂，哪位？", "你好", "喂喂？", "哎，你好", "嗯，喂？")
HUMAN_EN = ("hello?", "hi", "hello, who is this?", "yes?", "hey", "hello", "yeah, hello?", "good morning")
VOICEMAIL_CMN = (
    "您好，我现在不方便接听电话，请在提示音后留言，谢谢。",
    "你好，我是王芳，现在没空接电话，有事请留言。",
    "您好，机主暂时无法接听，请在嘀声后留下您的姓名和电话。",
    "我正在开会，请留言，我会尽快给您回电话。",
    "您好，这里是李明的语音信箱，请留言。",
    "欢迎致电，现在是非工作时间，请在提示音后留言。",
)
VOICEMAIL_EN = (
    "Hi, you've reached Sarah. I can't take your call right now. Please leave a message after the tone.",
    "Hello, this is John Smith. I'm away from my phone, leave your name and number and I'll call you back.",
    "You have reached the voicemail of extension four two one. Please leave a message.",
    "Hey, it's Mike, I'm not around, you know what to do.",
    "Thank you for calling. Nobody is available to take your call. Please leave a message after the beep.",
    "The person you are calling is not available. Record your message at the tone.",
)
OPERATOR_CMN = (
    "您好，您拨打的电话已关机。",
    "对不起，您拨打的用户暂时无法接通，请稍后再拨。",
    "您拨打的号码是空号，请查证后再拨。",
    "您拨打的电话正在通话中，请稍后再拨。",
    "对不起，您拨打的电话已停机。",
    "您拨打的用户正忙，请稍后再拨。",
)
OPERATOR_EN = (
    "The number you have dialed is not in service. Please check the number and try again.",
    "The subscriber you have called is not available. Please try again later.",
    "We're sorry, your call cannot be completed as dialed.",
    "The mobile phone you are calling is switched off.",
    "All circuits are busy now. Please try your call again later.",
    "The person you are calling cannot be reached at the moment.",
)
KINDS = {
    "human_cmn": ("human", HUMAN_CMN),
    "human_en": ("human", HUMAN_EN),
    "voicemail_cmn": ("machine", VOICEMAIL_CMN),
    "voicemail_en": ("machine", VOICEMAIL_EN),
    "operator_cmn": ("machine", OPERATOR_CMN),
    "operator_en": ("machine", OPERATOR_EN),
    "ringback": ("machine", ()),
    "silence": ("machine", ()),
}
# (program, voice, speed words/min, pitch 0-99); Festival ignores speed and pitch.
CMN_VOICES = (("espeak", "cmn", 150, 50), ("espeak", "cmn+f3", 175, 60), ("espeak", "cmn+m3", 130, 40))
EN_VOICES = (("festival", "kal", 0, 0), ("espeak", "en-us", 160, 50), ("espeak", "en-gb+f2", 175, 65))


@dataclass(slots=True, frozen=True)
class Clip:
    name: str
    kind: str
    label: str
    half: str
    audio: NDArray[np.int16]


def _render(text: str, program: str, voice: str, speed: int, pitch: int) -> NDArray[np.int16]:
    key = hashlib.sha256(f"{program}|{voice}|{speed}|{pitch}|{text}".encode()).hexdigest()[:20]
    cached = CACHE / f"{key}.wav"
    if not cached.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="ivr-amd-") as tmp:
            out = pathlib.Path(tmp) / "say.wav"
            if program == "festival":
                FESTIVAL.require()
                command = [str(FESTIVAL.path), "-eval", "(voice_kal_diphone)", "-o", str(out)]
                subprocess.run(command, input=text, capture_output=True, text=True, timeout=60, check=True)
            else:
                ESPEAK_NG.require()
                command = [str(ESPEAK_NG.path), "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text]
                subprocess.run(command, capture_output=True, timeout=60, check=True)
            os.replace(out, cached)
    return load_telephony(cached)


def _noise(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """Line noise: white plus a low hum, at a random level (about -60 to -40 dBFS)."""
    level = 10 ** (rng.uniform(-60, -40) / 20) * 32768
    white = rng.normal(0, level, n)
    t = np.arange(n) / RATE
    hum = 0.5 * level * np.sin(2 * np.pi * rng.choice((50.0, 60.0)) * t + rng.uniform(0, 6.28))
    noise: NDArray[np.float64] = white + hum
    return noise


def _line(rng: np.random.Generator, parts: list[NDArray[np.int16]]) -> NDArray[np.int16]:
    """Parts end to end, cut or padded to CLIP_S, noise added, through G.711 and back."""
    n = int(CLIP_S * RATE)
    audio = np.concatenate(parts).astype(np.float64)[:n]
    audio = np.concatenate([audio, np.zeros(n - audio.size)])
    gain = 10 ** (rng.uniform(-8, 2) / 20)
    mixed = np.clip(audio * gain + _noise(rng, n), -32768, 32767).astype(np.int16)
    codec = PCMU if rng.random() < 0.5 else PCMA
    return codec.decode(codec.encode(mixed))


def _speech_clips(
    kind: str, texts: tuple[str, ...], rng: np.random.Generator
) -> Iterator[tuple[str, str, NDArray[np.int16]]]:
    voices = CMN_VOICES if kind.endswith("cmn") else EN_VOICES
    for t_index, text in enumerate(texts):
        half = "tune" if t_index % 2 == 0 else "eval"
        for voice in voices:
            said = _render(text, *voice)
            if kind.startswith("human"):
                parts = [silence(rng.uniform(0.2, 1.0)), said]
                if rng.random() < 0.4:  # nobody speaks: "喂？……喂？"
                    parts += [silence(rng.uniform(1.5, 2.5)), said]
            else:
                parts = [silence(rng.uniform(0.05, 0.6)), said]
                if kind.startswith("voicemail") and rng.random() < 0.7:
                    parts += [silence(rng.uniform(0.2, 0.6)), beep(float(rng.choice((800.0, 1000.0, 1400.0))), 0.4)]
            yield half, f"{kind}/{t_index}/{voice[0]}-{voice[1]}", _line(rng, parts)


def build_set(seed: int = 19) -> list[Clip]:
    rng = np.random.default_rng(seed)
    clips: list[Clip] = []
    for kind, (label, texts) in KINDS.items():
        if texts:
            for half, name, audio in _speech_clips(kind, texts, rng):
                clips.append(Clip(name, kind, label, half, audio))
    styles = list(RingbackStyle)
    for i in range(18):
        period = ringback(styles[i % len(styles)], level_dbfs=float(rng.uniform(-24, -12)))
        offset = int(rng.uniform(0, period.size))
        looped = np.tile(period, 3)[offset:]
        half = "tune" if i % 2 == 0 else "eval"
        audio = _line(rng, [silence(rng.uniform(0, 0.5)), looped])
        clips.append(Clip(f"ringback/{i}", "ringback", "machine", half, audio))
    for i in range(18):
        half = "tune" if i % 2 == 0 else "eval"
        clips.append(Clip(f"silence/{i}", "silence", "machine", half, _line(rng, [silence(CLIP_S)])))
    return clips


@dataclass(slots=True, frozen=True)
class Score:
    clip: Clip
    verdict: AmdVerdict
    reason: str
    at_ms: int

    @property
    def right(self) -> bool:
        return self.verdict.value == self.clip.label


def evaluate(clips: list[Clip], config: AmdConfig | None = None) -> list[Score]:
    config = config or AmdConfig()
    out = []
    for clip in clips:
        decision = detect(clip.audio, config)
        out.append(Score(clip, decision.verdict, decision.reason.value, decision.at_ms))
    return out


def _row(name: str, rows: list[Score]) -> str:
    human = sum(s.verdict is AmdVerdict.HUMAN for s in rows)
    right = sum(s.right for s in rows) / len(rows)
    return f"| {name} | {len(rows)} | {human} | {len(rows) - human} | {right:.0%} |"


def report(scores: list[Score], half: str, seconds: float) -> str:
    right = sum(s.right for s in scores)
    accuracy = right / len(scores)
    times = [s.at_ms for s in scores]
    human_times = [s.at_ms for s in scores if s.clip.label == "human"]
    machine_times = [s.at_ms for s in scores if s.clip.label == "machine"]
    lines = [
        f"## Answering-machine detection ({half} half of the generated set)",
        "",
        f"- command: `python -m bench.amd{'' if half == 'eval' else ' --half ' + half}`",
        f"- clips: {len(scores)} (8 kHz, {CLIP_S:.0f} s each; espeak-ng + Festival voices, noise, G.711); "
        "thresholds chosen on the tuning half only, texts of the two halves disjoint",
        f"- **accuracy: {accuracy:.1%}** ({right}/{len(scores)}; goal ≥ 95%)",
        f"- median decision time: {statistics.median(times) / 1000:.2f} s after answer "
        f"(people {statistics.median(human_times) / 1000:.2f} s, "
        f"machines {statistics.median(machine_times) / 1000:.2f} s)",
        f"- detector CPU: {seconds / len(scores) * 1000:.1f} ms per clip ({seconds:.1f} s for the set)",
        "",
        "Confusion matrix (rows: what answered; columns: the detector's verdict):",
        "",
        "| answered by | clips | → human | → machine | right |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        rows = [s for s in scores if s.clip.kind == kind]
        if not rows:
            continue
        lines.append(_row(kind, rows))
    for label in ("human", "machine"):
        rows = [s for s in scores if s.clip.label == label]
        lines.append(_row(f"**all {label}**", rows))
    reasons = Counter(s.reason for s in scores)
    lines += ["", "Decisions by rule: " + ", ".join(f"{r} {n}" for r, n in reasons.most_common())]
    wrong = [s for s in scores if not s.right]
    if wrong and half != "eval":
        lines += ["", "Mistakes: " + "; ".join(f"{s.clip.name} → {s.verdict.value} ({s.reason})" for s in wrong)]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.amd", description=__doc__.split("\n\n")[0])
    parser.add_argument("--half", choices=("tune", "eval", "all"), default="eval")
    parser.add_argument("--show", action="store_true", help="one line per clip (tuning half only)")
    args = parser.parse_args(argv)
    clips = [c for c in build_set() if args.half == "all" or c.half == args.half]
    started = time.process_time()
    scores = evaluate(clips)
    seconds = time.process_time() - started
    if args.show:
        if args.half != "tune":
            parser.error("--show is for the tuning half")
        for s in scores:
            print(f"{'ok ' if s.right else 'BAD'} {s.clip.name:40} {s.verdict.value:8} {s.reason:16} {s.at_ms} ms")
    print(report(scores, args.half, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
