"""After the first answer: the hotline's re-ask, its confirm turn, and a keyword fallback, on held-out audio.

`bench.speech_eval` scores the `need` question's first turn. A caller it does not understand (re-asked, or
offered a wrong intent and saying no) hears `ask_need_retry` ("Just say claim, policy details, payment, ...")
and answers with the word it names for their need, said by the same voice on the same line (the first
clip's voice and condition: `speech_eval.Clip.say`). Each such call is decoded as one call (the first turn,
then the answer: the caller's cepstral mean carries over, as in a live call) two ways:

* before: the answer heard with the full phrase LM and read as a first answer (what the engine did);
* after: heard with the node's `no_match.answers` alone and read by `classify_answer` (this change).

Reported apart: first turn; second turn of the callers whose first turn failed; understood within two turns
(first-turn right, or failed then second-turn right) and false accepts over both turns. `--yes-no` scores
the confirm turn (the caller of a first-turn confirm says "yes" when the offered intent is theirs, else "no"):
heard with the yes/no phrases vs free decoding. `--fallback` scores keyword fallbacks for a first turn under
the confirm threshold (offer what its n-best or a narrow re-decode of its audio names).

    .venv/bin/python -m bench.speech_turns --set dev --step 4 [--voices ...] [--conditions ...] [--yes-no]
        [--fallback] [--engine whisper|moonshine [--beam N] [--answers pocketsphinx]] [--heard FILE|none]

`--answers pocketsphinx` hears the closed turns (the re-ask's answers, yes/no) with PocketSphinx, the open ones with
`--engine` (the per-turn hybrid, `ModelSpec.answers`). The classifier is the flow's as the engine loads it when
`--engine` hears English: its phrases and that engine's confusion-aware training file (flows/hotline.heard.<engine>.tsv)
when there is one; `--heard FILE` trains on another file, `--heard none` on the phrases alone
(`speech_eval.flow_heard`).
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import sys
from collections.abc import Callable, Sequence

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import speech_eval as se  # noqa: E402
from ivr.call import ListenSpec, SpeechInput  # noqa: E402
from ivr.flow.intents import Classifier  # noqa: E402
from ivr.flow.loader import load_text  # noqa: E402
from ivr.flow.model import AskNode, Thresholds  # noqa: E402
from ivr.flow.nodes.listening import yes_no  # noqa: E402
from ivr.flow.nodes.menus import (  # noqa: E402
    answer_intent,
    answer_phrases,
    answer_spec,
    ask_inputs,
    classify_answer,
    classify_speech,
    retry_thresholds,
    yes_no_spec,
)


def failed(v: se.Verdict) -> bool:
    """Asked again: re-asked, or offered a wrong intent (the caller says no). A wrong act has no second turn."""
    return v.action == "reask" or (v.action == "confirm" and v.intent != v.expected)


def answer_word(node: AskNode, intent: str) -> str:
    """What the retry prompt tells a caller with this need to say (the node's first English answer)."""
    return node.no_match.answers[intent]["en"][0]


def cells(vs: Sequence[se.Verdict]) -> str:
    right, acted, fa, _ = se.summary(vs)
    return f"{se.pct(right)} / {se.pct(acted)} / {se.pct(fa)}"


def by_condition(clips: Sequence[se.Clip]) -> list[tuple[str, list[int]]]:
    groups: dict[str, list[int]] = {}
    for k, c in enumerate(clips):
        groups.setdefault(c.condition.name, []).append(k)
    return [*groups.items(), ("**all**", list(range(len(clips))))]


def two_turns(node: AskNode, clf: Classifier | None, clips: Sequence[se.Clip], first: Sequence[se.Verdict],
              phrases: tuple[str, ...], *, repeat: bool = False) -> list[str]:
    """`repeat`: the caller says their first sentence again instead of the word the retry names."""
    again = [k for k, v in enumerate(first) if failed(v)]
    answers = answer_phrases(node, ("en",))
    acts = (0.6, 0.7, 0.8, 0.9)
    swept: dict[float, dict[int, se.Verdict]] = {}
    said = {k: clips[k].audio if repeat else clips[k].say(answer_word(node, clips[k].expected)) for k in again}
    print(f"speech_turns: decoding {2 * len(again)} two-turn calls ...", file=sys.stderr, flush=True)
    second: dict[str, dict[int, se.Verdict]] = {}
    arms: tuple[tuple[str, tuple[str, ...], se.Classify, Thresholds], ...] = (
        ("before", phrases, classify_speech, node.thresholds),
        ("after", answers, lambda n, _, h: classify_answer(n, h), retry_thresholds(node)))
    for arm, listen, classify, levels in arms:
        closed = listen == answers and answer_spec(ListenSpec(), answers).closed  # as the engine's re-ask listens
        heard = se.decode_calls([[(clips[k].audio, phrases, False), (said[k], listen, closed)] for k in again])
        second[arm] = {k: se.decide(node, clf, turns[1], clips[k].expected, classify=classify, levels=levels)
                       for k, turns in zip(again, heard, strict=True)}
        for act in acts if arm == "after" else ():
            swept[act] = {k: se.decide(node, clf, turns[1], clips[k].expected, act=act, classify=classify,
                                       levels=levels) for k, turns in zip(again, heard, strict=True)}
    lines = ["| condition | clips | first turn | asked again | second turn, before | second turn, after "
             "| within two turns, before | within two turns, after |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, idx in by_condition(clips):
        retried = [k for k in idx if k in second["after"]]
        row = [name, str(len(idx)), cells([first[k] for k in idx]), str(len(retried))]
        row += [cells([second[arm][k] for k in retried]) for arm in ("before", "after")]
        for arm in ("before", "after"):
            right = sum(first[k].right or (k in second[arm] and second[arm][k].right) for k in idx)
            fa = sum(first[k].false_accept or (k in second[arm] and second[arm][k].false_accept) for k in idx)
            row.append(f"{se.pct(right / len(idx))} / {se.pct(fa / len(idx))}")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Second turn, after: the act threshold for an answer (`no_match.thresholds.act`; choose on dev):\n",
              "| act | right / acted at once / false acc. | within two turns: right / false acc. |", "|---|---:|---:|"]
    for act, verdicts in swept.items():
        right = sum(first[k].right or (k in verdicts and verdicts[k].right) for k in range(len(clips)))
        fa = sum(first[k].false_accept or (k in verdicts and verdicts[k].false_accept) for k in range(len(clips)))
        lines.append(f"| {act} | {cells(list(verdicts.values()))} | {se.pct(right / max(1, len(clips)))} / "
                     f"{se.pct(fa / max(1, len(clips)))} |")
    return ["Cells: right (acted on or confirmed) / acted on at once and right / false accept; within two turns: "
            "right / false accepts over both turns. Second turn: the callers asked again (their share of clips in "
            "\"asked again\").\n", *lines]


def confirm_turn(node: AskNode, clips: Sequence[se.Clip], first: Sequence[se.Verdict],
                 phrases: tuple[str, ...]) -> list[str]:
    asked = [k for k, v in enumerate(first) if v.action == "confirm"]
    truth = {k: first[k].intent == first[k].expected for k in asked}
    said = {k: clips[k].say("yes" if truth[k] else "no") for k in asked}
    lines = ["| condition | confirms | arm | understood | yes heard for a no (a wrong intent acted on) | "
             "no heard for a yes | not understood |", "|---|---:|---|---:|---:|---:|---:|"]
    results: dict[str, dict[int, bool | None]] = {}
    engine = yes_no_spec("en", node.timeout_s)  # how the engine's yes/no turn listens
    for arm, listen, closed in (("free decoding", (), False), ("yes/no phrases", engine.phrases, engine.closed)):
        heard = se.decode_calls([[(clips[k].audio, phrases, False), (said[k], listen, closed)] for k in asked])
        results[arm] = {k: yes_no(turns[1]) for k, turns in zip(asked, heard, strict=True)}
    for name, idx in by_condition(clips):
        ks = [k for k in idx if k in truth]
        n = max(1, len(ks))
        for arm, got in results.items():
            ok = sum(got[k] is truth[k] for k in ks)
            false_yes = sum(got[k] is True and not truth[k] for k in ks)
            false_no = sum(got[k] is False and truth[k] for k in ks)
            none = sum(got[k] is None for k in ks)
            lines.append(f"| {name} | {len(ks)} | {arm} | {se.pct(ok / n)} | {se.pct(false_yes / n)} | "
                         f"{se.pct(false_no / n)} | {se.pct(none / n)} |")
    return lines


def scan_nbest(node: AskNode, heard: SpeechInput) -> tuple[str | None, float]:
    """The intent whose retry answers the first turn's n-best names with the most weight, and that weight."""
    weights: dict[str, float] = {}
    for h in heard.nbest or (heard,):
        intent, _ = answer_intent(node, SpeechInput(h.text, 1.0, heard.language))
        if intent is not None:
            weights[intent] = weights.get(intent, 0.0) + h.confidence
    if not weights:
        return None, 0.0
    best = max(weights, key=weights.__getitem__)
    return best, weights[best]


def fallbacks(node: AskNode, clips: Sequence[se.Clip], first: Sequence[se.Verdict],
              heard: Sequence[SpeechInput]) -> list[str]:
    """A first turn under the confirm threshold: offer (confirm) the intent a keyword fallback names."""
    low = [k for k, v in enumerate(first) if v.action == "reask"]
    answers = answer_phrases(node, ("en",))
    narrow = dict(zip(low, (t[0] for t in se.decode_calls([[(clips[k].audio, answers, True)] for k in low])),
                      strict=True))

    def offered(rule: Callable[[int], tuple[str | None, float]], floor: float) -> list[se.Verdict]:
        out = list(first)
        for k in low:
            intent, weight = rule(k)
            if intent is not None and weight >= floor:
                out[k] = se.Verdict(first[k].expected, intent, weight, "confirm", heard[k].text)
        return out

    arms: list[tuple[str, list[se.Verdict]]] = [("none (re-ask)", list(first))]
    arms += [(f"n-best scan, weight >= {f}", offered(lambda k: scan_nbest(node, heard[k]), f)) for f in (0.0, 0.1, 0.3)]
    arms += [(f"narrow re-decode, confidence >= {f}", offered(lambda k: answer_intent(node, narrow[k]), f))
             for f in (0.2, 0.4, 0.6)]
    lines = ["| fallback | right / acted at once / false acc. | offered, wrong intent (caller says no) |",
             "|---|---:|---:|"]
    for name, vs in arms:
        wrong = sum(v.action == "confirm" and v.intent != v.expected for v in vs) / max(1, len(vs))
        lines.append(f"| {name} | {cells(vs)} | {se.pct(wrong)} |")
    return [f"First turns re-asked: {len(low)} of {len(first)} clips.\n", *lines]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    se.audio_args(parser)
    se.heard_args(parser)
    parser.add_argument("--yes-no", action="store_true", help="also score the confirm turn's yes/no")
    parser.add_argument("--fallback", action="store_true", help="also score keyword fallbacks for a low first turn")
    parser.add_argument("--repeat", action="store_true",
                        help="also score callers who say their first sentence again instead of the word named")
    args = parser.parse_args()
    se.use_engine(args)
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    heard_lines = se.flow_heard(args)
    loaded = load_text(se.FLOW.read_text(encoding="utf-8"), str(se.FLOW), heard=heard_lines)
    assert loaded.flow is not None, loaded.errors
    node = loaded.flow.spec.nodes[se.NODE]
    assert isinstance(node, AskNode)
    clf = loaded.flow.classifier
    _, phrases = ask_inputs(loaded.flow, node, "en")
    _, _, clips = se.audio_jobs(args)
    print(f"speech_turns: decoding {len(clips)} first turns ...", file=sys.stderr, flush=True)
    heard = se.decode_cached([c.audio for c in clips], phrases)
    first = [se.decide(node, clf, h, c.expected) for c, h in zip(clips, heard, strict=True)]
    lines = two_turns(node, clf, clips, first, phrases)
    if args.repeat:
        lines += ["", "Callers who say their first sentence again (the same audio) instead of the word named:\n",
                  *two_turns(node, clf, clips, first, phrases, repeat=True)]
    if args.yes_no:
        lines += ["", "Confirm turn (yes/no):\n", *confirm_turn(node, clips, first, phrases)]
    if args.fallback:
        lines += ["", "Keyword fallback for a first turn under the confirm threshold:\n",
                  *fallbacks(node, clips, first, heard)]
    flags = " ".join(a for a in sys.argv[1:])
    print(f"Command: `python -m bench.speech_turns {flags}` · machine: {platform.machine()}, nproc {os.cpu_count()} · "
          f"{started}\n")
    print(f"Classifier: the flow's phrases + {sum(map(len, heard_lines.values()))} heard lines "
          f"({se.heard_label(args)}).\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
