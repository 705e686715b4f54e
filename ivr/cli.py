"""The `ivr` command: parses arguments, configures logging, calls one library function per subcommand.

No logic lives here that a test would need. Exit codes as linters use them: 0 ok, 1 checked and found
wanting (or a runtime failure), 2 usage error. Library imports are inside the handlers so
`ivr --help` stays instant.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from collections.abc import Callable, Sequence

from ivr import __version__

Handler = Callable[[argparse.Namespace], int]
QUIET_COMMANDS = frozenset({"call", "scenario", "load", "simulate", "test-flows", "validate", "nlu", "asr", "prompts"})


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="answer calls: SIP, media, flows, queues and the dashboard")
    p.add_argument("--flows", default="flows", help="folder of flow YAML files (default: flows)")
    p.add_argument("--sip", default="127.0.0.1:5060", help="SIP listen address HOST:PORT")
    p.add_argument("--http", default="127.0.0.1:8080", help="dashboard/API listen address HOST:PORT")
    p.add_argument("--db", default="var/ivr.db", help="SQLite database for call records")
    p.add_argument("--config", default=None, help="engine config YAML (agents, trunks, dialect models)")
    p.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from ivr.engine import serve_main

    return serve_main(args)


def _add_nlu(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("nlu", help="classify a caller's words with a flow's intents, or score a held-out TSV")
    p.add_argument("flow", help="flow YAML whose `intents:` section trains the classifier")
    p.add_argument("text", nargs="?", default=None, help="what the caller said")
    p.add_argument("--eval", dest="eval_path", metavar="FILE.tsv", help="score `utterance<TAB>intent` rows")
    p.add_argument("--lang", action="append", dest="languages", metavar="D", help="train on these dialects only")
    p.set_defaults(handler=_nlu)


def _nlu(args: argparse.Namespace) -> int:
    from ivr.speech.commands import run_nlu

    return run_nlu(args.flow, args.text, eval_path=args.eval_path, languages=args.languages, out=print,
                   err=lambda s: print(s, file=sys.stderr))


def _add_asr(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("asr", help="recognize a WAV file as call audio and print transcript and timing")
    p.add_argument("wav", help="WAV file (any rate; resampled to 8 kHz call audio)")
    p.add_argument("--engine", choices=["pocketsphinx", "vosk"], default="pocketsphinx")
    p.add_argument("--dialect", default="en", help="dialect code the model serves (default: en)")
    p.add_argument("--model", default=None, help="model folder (vosk: required; pocketsphinx: built-in en-us)")
    p.add_argument("--phrases", default=None, help="file of phrases, one per line, to bias recognition")
    p.set_defaults(handler=_asr)


def _asr(args: argparse.Namespace) -> int:
    from ivr.speech.commands import run_asr

    return run_asr(args.wav, engine=args.engine, dialect=args.dialect, model=args.model,
                   phrases_file=args.phrases, out=print, err=lambda s: print(s, file=sys.stderr))


def _add_prompts(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("prompts", help="render and check the flows' prompts in every dialect")
    actions = p.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    for name, handler, text in (
        ("build", _prompts_build, "render every prompt the flows need, for every dialect they serve"),
        ("check", _prompts_check, "per dialect: recorded / synthesized / fallback; exit 1 if one is missing"),
    ):
        a = actions.add_parser(name, help=text)
        a.add_argument("--flows", default="flows", help="folder of flow YAML files (default: flows)")
        a.add_argument("--dialects", default="dialects", help="folder of dialect packs (default: dialects)")
        a.add_argument("--prompts", default="prompts", help="folder of recorded prompts (default: prompts)")
        a.add_argument("--cache", default="var/prompt-cache", help="render cache (default: var/prompt-cache)")
        if name == "build":
            a.add_argument("--quiet", action="store_true", help="no progress bar or summary, errors only")
        a.set_defaults(handler=handler)


def _prompts_build(args: argparse.Namespace) -> int:
    from ivr.voice import run_build

    return run_build(args.flows, args.dialects, args.prompts, args.cache, quiet=args.quiet)


def _prompts_check(args: argparse.Namespace) -> int:
    from ivr.voice import run_check

    return run_check(args.flows, args.dialects, args.prompts, args.cache)


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check flow files; prints path:line:col: message per problem")
    p.add_argument("files", nargs="+", metavar="FILE", help="flow YAML files")
    p.add_argument("--warnings", action="store_true", help="also list warnings (dialect fallbacks...)")
    p.add_argument("--dialects", default="dialects", metavar="DIR",
                   help="dialect packs whose fallbacks the engine uses (default: dialects, when present)")
    p.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace) -> int:
    from ivr.flow.commands import validate_files
    from ivr.flow.model import DEFAULT_FALLBACKS
    from ivr.voice.dialects import load_dialects

    packs = pathlib.Path(args.dialects)
    fallbacks = load_dialects(packs).fallbacks() if packs.is_dir() else DEFAULT_FALLBACKS
    return validate_files(args.files, warnings=args.warnings, fallbacks=fallbacks)


def _add_schema(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("schema", help="print the flow file JSON Schema")
    p.set_defaults(handler=_schema)


def _schema(args: argparse.Namespace) -> int:
    from ivr.flow.commands import print_schema

    return print_schema()


def _add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("simulate", help="run a flow with a scripted caller and print every step")
    p.add_argument("flow", metavar="FLOW", help="flow YAML file")
    p.add_argument("--caller", default="13800138000", help="caller number (demo elderly caller: 13900000001)")
    p.add_argument("--say", dest="turns", action="append", type=lambda s: ("say", s), default=[],
                   metavar="TEXT", help="the caller says TEXT at the next prompt (repeatable, in order)")
    p.add_argument("--keys", dest="turns", action="append", type=lambda s: ("keys", s), metavar="DIGITS",
                   help="the caller presses DIGITS at the next prompt (repeatable, in order)")
    p.add_argument("--silence", dest="turns", action="append_const", const=("silence", ""),
                   help="the caller says nothing at the next prompt")
    p.add_argument("--time", default=None, help="wall time, ISO (default: 2026-03-02T10:00, flow's zone)")
    p.add_argument("--backend", default=None, help="data-dip base URL (default: demo back end in-process)")
    p.add_argument("--json", action="store_true", help="print the journey as JSON")
    p.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from ivr.flow.commands import simulate_call

    return simulate_call(args.flow, args.turns, caller=args.caller, time=args.time, backend=args.backend,
                         as_json=args.json)


def _add_test_flows(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("test-flows", help="run flow test files (default: flows/tests/*.yaml)")
    p.add_argument("files", nargs="*", metavar="FILE", help="flow test YAML files")
    p.set_defaults(handler=_test_flows)


def _test_flows(args: argparse.Namespace) -> int:
    from ivr.flow.commands import run_flow_tests

    return run_flow_tests(args.files)


def _add_graph(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("graph", help="draw a flow with graphviz (svg, png, pdf by the -o suffix)")
    p.add_argument("flow", metavar="FLOW", help="flow YAML file")
    p.add_argument("-o", "--output", default="flow.svg", help="output file (default: flow.svg)")
    p.set_defaults(handler=_graph)


def _graph(args: argparse.Namespace) -> int:
    from ivr.flow.commands import draw_graph

    return draw_graph(args.flow, args.output)


def _add_demo_backend(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo-backend", help="serve the demo customer/policy back end for data dips")
    p.add_argument("--listen", default="127.0.0.1:8090", help="HOST:PORT (default: 127.0.0.1:8090)")
    p.set_defaults(handler=_demo_backend)


def _demo_backend(args: argparse.Namespace) -> int:
    from ivr.flow.commands import serve_demo_backend

    host, _, port = args.listen.rpartition(":")
    return serve_demo_backend(host or "127.0.0.1", int(port))


def _add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="print today's figures: containment, NPS, service level, breakpoints...")
    p.add_argument("--since", default="1d", help="start: a span back (90m, 2h, 1d, 1w), 'today' or ISO-8601")
    p.add_argument("--until", default=None, help="end (default: now); same forms as --since")
    p.add_argument("--db", default="var/ivr.db", help="SQLite file or postgresql:// URL (default: var/ivr.db)")
    p.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from datetime import datetime

    from ivr.report import report_main

    return report_main(args.since, args.until, args.db, now=datetime.now().astimezone())



class _StepAction(argparse.Action):
    """Keeps --say/--play/--keys in the order given, each a step of the call's script."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[object] | None, option_string: str | None = None) -> None:
        steps = list(getattr(namespace, "steps", None) or [])
        steps.append((self.dest, str(values)))
        namespace.steps = steps


def _add_call(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("call", help="place a real SIP call that speaks and presses keys, and check the result",
                       description="Place a real SIP call (our UAC): speak, play, press keys, record what is heard, "
                                   "print a timeline; exit 0 only when every --expect-* holds.")
    p.add_argument("uri", help="SIP URI to call, e.g. sip:95519@127.0.0.1")
    p.add_argument("--from", dest="from_number", default="13800000000", help="caller number (From user)")
    p.add_argument("--say", dest="say", action=_StepAction, metavar="TEXT", help="speak TEXT (TTS voice)")
    p.add_argument("--play", dest="play", action=_StepAction, metavar="FILE.wav", help="play a WAV file")
    p.add_argument("--keys", dest="keys", action=_StepAction, metavar="DIGITS", help="press keys")
    p.add_argument("--dtmf", choices=["rfc4733", "info", "inband"], default="rfc4733", help="how keys are sent")
    p.add_argument("--wait", type=float, default=20.0, metavar="SECONDS",
                   help="keep listening this long after the last step before hanging up (default 20)")
    p.add_argument("--api", default=None, help="engine HTTP API (default: the SIP host, port 8080); '' disables")
    p.add_argument("--expect-queue", default=None)
    p.add_argument("--expect-intent", default=None)
    p.add_argument("--expect-dialect", default=None)
    p.add_argument("--expect-outcome", default=None)
    p.add_argument("--record", default=None, metavar="OUT.wav", help="save what the caller heard")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_call, steps=[])


def _call(args: argparse.Namespace) -> int:
    import asyncio
    import pathlib

    from ivr.testing.callcheck import Expectations, place_checked_call, render_json, render_text
    from ivr.testing.caller import DtmfMethod, Keys, PlayFile, Say, Step

    method = DtmfMethod(args.dtmf)
    steps: list[Step] = []
    for kind, value in args.steps:
        if kind == "say":
            steps.append(Say(value))
        elif kind == "play":
            steps.append(PlayFile(pathlib.Path(value)))
        else:
            steps.append(Keys(value, method))
    expect = Expectations(args.expect_queue, args.expect_intent, args.expect_dialect, args.expect_outcome)
    verdict = asyncio.run(place_checked_call(
        args.uri, steps, from_number=args.from_number, expect=expect, api=args.api, linger_s=args.wait,
        record_path=pathlib.Path(args.record) if args.record else None,
    ))
    print(render_json(verdict) if args.json else render_text(verdict))
    return 0 if verdict.passed else 1

def _add_scenario(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("scenario", help="run caller scenario files (tests/scenarios/*.yaml) as real SIP calls")
    actions = p.add_subparsers(dest="scenario_command", metavar="ACTION", required=True)
    r = actions.add_parser("run", help="place the scenarios' calls concurrently; exit 0 only if all pass",
                           description="Place every scenario's call (or --calls N cycling through them) against "
                                       "a SIP URI, judge each from the engine's record, print a pass/fail table.")
    r.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files")
    r.add_argument("--uri", default="sip:95519@127.0.0.1:5060", help="SIP URI to call (default: %(default)s)")
    r.add_argument("--calls", type=int, default=None, metavar="N", help="calls in all (default: each scenario once)")
    r.add_argument("--cps", type=float, default=5.0, metavar="R", help="new calls a second (default: 5)")
    r.add_argument("--api", default=None, help="engine HTTP API (default: the SIP host, port 8080)")
    r.add_argument("--json", action="store_true", help="print the results as JSON (for CI)")
    r.set_defaults(handler=_scenario_run)


def _scenario_run(args: argparse.Namespace) -> int:
    from ivr.testing.scenario import run_command

    return run_command(args.files, uri=args.uri, calls=args.calls, cps=args.cps, api=args.api, as_json=args.json)


def _add_load(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("load", help="drive calls with media at a fixed rate and report setup time, loss, jitter",
                       description="Bounded load test against a loopback SIP URI: calls with media at --cps for "
                                   "--duration seconds (at most --max-calls), each running a scenario.")
    p.add_argument("uri", help="SIP URI on loopback, e.g. sip:95519@127.0.0.1")
    p.add_argument("--cps", type=float, required=True, metavar="R", help="new calls a second")
    p.add_argument("--duration", type=float, required=True, metavar="S", help="seconds to keep starting calls")
    p.add_argument("--scenario", required=True, metavar="FILE", help="scenario YAML each call runs")
    p.add_argument("--max-calls", type=int, default=2000, metavar="N", help="cap on calls (default: 2000)")
    p.add_argument("--api", default=None, help="engine HTTP API for expectations (default: SIP host, port 8080)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_load)


def _load(args: argparse.Namespace) -> int:
    from ivr.testing.load import load_command

    return load_command(args.uri, cps=args.cps, duration_s=args.duration, scenario=args.scenario,
                        max_calls=args.max_calls, api=args.api, as_json=args.json)

Adder = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
COMMANDS: tuple[Adder, ...] = (
    _add_serve,
    _add_nlu,
    _add_asr,
    _add_prompts,
    _add_validate,
    _add_schema,
    _add_simulate,
    _add_test_flows,
    _add_graph,
    _add_demo_backend,
    _add_report,
    _add_call,
    _add_scenario,
    _add_load,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ivr", description="Telephony IVR engine for a customer hotline."
    )
    parser.add_argument("--version", action="version", version=f"ivr {__version__}")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-json", action="store_true", default=None, help="force JSON log lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    from ivr.logconfig import configure_logging

    level = args.log_level
    if args.command in QUIET_COMMANDS and level == "info":
        level = "error"  # their own output is the report; engine chatter would bury it
    configure_logging(level, json=args.log_json)
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ivr schema | head`: the reader left; no traceback, as other CLIs
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
