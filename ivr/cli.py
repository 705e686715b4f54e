"""The `ivr` command: parses arguments, configures logging, calls one library function per subcommand.

No logic lives here that a test would need. Exit codes as linters use them: 0 ok, 1 checked and found
wanting (or a runtime failure), 2 usage error (a bad flag or a bad config value). Errors go to stderr.
Library imports are inside the handlers so `ivr --help` stays instant. The global options
(`--log-level`, `--log-json`) are accepted before or after the subcommand.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ivr import __version__
from ivr.outbound.cli import add_campaign

if TYPE_CHECKING:
    from ivr.config import EngineConfig, LoadedConfig
    from ivr.store.retention import RenderPurger
    from ivr.voc import Classify

Handler = Callable[[argparse.Namespace], int]
QUIET_COMMANDS = frozenset({"call", "scenario", "load", "simulate", "test-flows", "validate", "nlu", "asr", "prompts",
                            "dialects"})


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """The options every command that reads the engine config takes (serve, config, purge...)."""
    p.add_argument("--config", default=None, metavar="FILE",
                   help="engine config YAML (see docs/CONFIG.md); its relative paths are relative to FILE")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="set any config key (repeatable; beats the file and IVR_<KEY> variables)")


def _add_site_options(p: argparse.ArgumentParser) -> None:
    """serve's address and storage flags: each overrides its config key only when given."""
    p.add_argument("--flows", default=None, metavar="DIR", help="folder of flow YAML files (key flows_dir)")
    p.add_argument("--sip", default=None, metavar="HOST:PORT", help="SIP listen address (keys sip_host, sip_port)")
    p.add_argument("--advertise", default=None, metavar="HOST",
                   help="address peers reach us at, in Contact, Via and SDP (key advertise_address)")
    p.add_argument("--http", default=None, metavar="HOST:PORT",
                   help="dashboard/API listen address (keys http_host, http_port)")
    p.add_argument("--db", default=None, metavar="PATH|URL",
                   help="SQLite file or postgresql:// URL for records, journeys, caller dialects (key db)")


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="answer calls: SIP, media, flows, queues and the dashboard",
                       description="Run the engine. Settings: flags > IVR_<KEY> environment > --config file > "
                                   "defaults (the demo hotline). SIGTERM drains calls in progress.")
    _add_site_options(p)
    p.add_argument("--workers", default=None, metavar="N",
                   help="engine processes sharing the SIP port (key workers; default: one per CPU)")
    _add_config_options(p)
    p.set_defaults(handler=_serve)


_PATH_FLAGS = {"flows": "flows_dir", "dialects": "dialects_dir", "prompts": "prompts_dir",
               "cache": "prompt_cache_dir", "db": "db", "advertise": "advertise_address", "workers": "workers"}
"""Flags that set one config key each, as `--flag` → key."""


def _flag_settings(args: argparse.Namespace) -> dict[str, tuple[object, str]]:
    """Config keys given on the command line: key → (value, the flag that gave it)."""
    from ivr.errors import ConfigError
    from ivr.sip.hostport import parse_hostport

    flags: dict[str, tuple[object, str]] = {}
    for text in getattr(args, "settings", None) or []:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {text!r}: expected KEY=VALUE")
        flags[key.strip()] = (value, f"--set {key.strip()}")
    for flag, key in _PATH_FLAGS.items():
        if getattr(args, flag, None) is not None:
            flags[key] = (getattr(args, flag), f"--{flag}")
    for flag, default_port in (("sip", 5060), ("http", 8080)):
        text = getattr(args, flag, None)
        if text is not None:
            host, port = parse_hostport(text, default_port=default_port)
            flags[f"{flag}_host"], flags[f"{flag}_port"] = (host, f"--{flag}"), (port, f"--{flag}")
    if getattr(args, "log_level", None) is not None:
        flags["log_level"] = (args.log_level, "--log-level")
    if getattr(args, "log_json", None) is not None:
        flags["log_json"] = (args.log_json, "--log-json")
    return flags


def _loaded_config(args: argparse.Namespace) -> LoadedConfig:
    """The effective config for this command line; logging reconfigured by its log settings."""
    from ivr.config import resolve_config
    from ivr.logconfig import configure_logging

    path = getattr(args, "config", None)
    loaded = resolve_config(pathlib.Path(path) if path else None, flags=_flag_settings(args))
    config = loaded.config
    level = config.log_level
    if args.command in QUIET_COMMANDS and loaded.sources["log_level"].kind == "default":
        level = "error"
    configure_logging(level, json=config.log_json, log_pii=config.log_pii)
    return loaded


def _serve(args: argparse.Namespace) -> int:
    config = _loaded_config(args).config  # a bad setting is reported before the engine's imports
    from ivr.workers import serve_node

    return serve_node(config)


def _add_config(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", help="show or check the effective engine config")
    actions = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="every key's effective value (secrets masked) and where it came from")
    show.add_argument("--json", action="store_true", help="print a JSON object key → {value, source}")
    check = actions.add_parser("check", help="type-check the config and the files it names; exit 1 if wrong")
    for a in (show, check):
        _add_site_options(a)
        _add_config_options(a)
    show.set_defaults(handler=_config_show)
    check.set_defaults(handler=_config_check)


def _config_show(args: argparse.Namespace) -> int:
    from ivr.config import describe

    rows = describe(_loaded_config(args))
    if args.json:
        import json

        print(json.dumps({k: {"value": v, "source": src} for k, v, src in rows}, ensure_ascii=False, indent=2))
        return 0
    width = max(len(k) for k, _, _ in rows)
    value_width = min(60, max(len(v) for _, v, _ in rows))
    for key, value, source in rows:
        print(f"{key:<{width}}  {value:<{value_width}}  {source}")
    return 0


def _config_check(args: argparse.Namespace) -> int:
    from ivr.config import check_paths
    from ivr.errors import ConfigError

    try:
        loaded = _loaded_config(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    problems = check_paths(loaded)
    try:  # the API tokens' own rules (names, roles, digests) live with the API
        from ivr.web.access import parse_token_specs

        parse_token_specs(loaded.config.api_tokens)
    except ConfigError as exc:
        problems.append(f"{loaded.sources['api_tokens'].where or 'default'}: {exc}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    where = f" ({loaded.path})" if loaded.path else ""
    print(f"config ok{where}")
    return 0


def _add_init(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("init", help="write a starter site: ivr.yaml, flows, dialects, prompts, agents, a service unit",
                       description="Write a site folder `ivr serve --config DIR/ivr.yaml` runs from anywhere.")
    p.add_argument("dir", metavar="DIR", help="folder to create (may exist if empty)")
    p.add_argument("--force", action="store_true", help="write into a folder that has files (never overwrites)")
    p.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    from ivr.starter import write_site

    try:
        site = write_site(pathlib.Path(args.dir), force=args.force)
    except OSError as exc:  # a read-only or missing parent, no permission: say so, no traceback
        print(f"ivr init: cannot write the site: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {site.config}\nrun:  ivr serve --config {site.config}")
    return 0


def _add_token(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("token", help="make HTTP API tokens")
    actions = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    new = actions.add_parser("new", help="print a new token and the api_tokens entry (hashed) that admits it",
                             description="Print a fresh token (give it to the client) and the `api_tokens` "
                                         "entry to add to the config; the config keeps only its SHA-256.")
    new.add_argument("name", help="who uses it (shown in the access log and as requested_by)")
    new.add_argument("--role", choices=["viewer", "supervisor", "admin"], default="viewer",
                     help="viewer: dashboards, reports; supervisor: + records, dispatch; admin: + tokens")
    new.set_defaults(handler=_token_new)


def _token_new(args: argparse.Namespace) -> int:
    import json

    from ivr.web import Role, new_token_spec

    token, spec = new_token_spec(args.name, Role(args.role))
    print(token)
    print(f"# add to api_tokens in the config:\n  - {json.dumps(spec)}", file=sys.stderr)
    return 0


def _add_agents(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("agents", help="manage agents' SIP secrets in the agents file")
    actions = p.add_subparsers(dest="agents_command", metavar="ACTION", required=True)
    passwd = actions.add_parser("passwd", help="set an agent's SIP password: the file keeps only its HA1 digests",
                                description="Ask for the new password (or read one line from stdin with "
                                            "--stdin) and write ha1_md5/ha1_sha256 for the agent, removing "
                                            "any clear-text password. The engine reads it at its next start.")
    passwd.add_argument("agent_id", metavar="ID", help="the agent's id in the agents file")
    passwd.add_argument("--stdin", action="store_true", help="read the password from stdin (no prompt)")
    _add_config_options(passwd)
    passwd.set_defaults(handler=_agents_passwd)


def _agents_passwd(args: argparse.Namespace) -> int:
    import getpass

    from ivr.agent_passwords import set_agent_password

    config = _loaded_config(args).config
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"new SIP password for {args.agent_id}: ")
        if getpass.getpass("again: ") != password:
            print("ivr agents passwd: the two passwords differ; nothing changed", file=sys.stderr)
            return 1
    username = set_agent_password(config.agents_file, config.queues_file, args.agent_id, password)
    print(f"{config.agents_file}: agent {args.agent_id} (SIP user {username}) now has ha1_md5/ha1_sha256")
    return 0


def _add_purge(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("purge", help="delete call records, journeys and caller dialects older than an age",
                       description="Delete what retention would (finished calls, their journeys and surveys, "
                                   "caller dialect memories, caller-specific prompt renders) older than --older-than.")
    p.add_argument("--older-than", required=True, metavar="AGE", help="30d, 12h, 2w (a bare number is days)")
    p.add_argument("--db", default=None, metavar="PATH|URL", help="database (default: the config's db)")
    _add_config_options(p)
    p.set_defaults(handler=_purge)


def _purge(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from ivr.recording.retention import purge_recordings
    from ivr.store import open_store
    from ivr.store.messages import MessageStore
    from ivr.store.retention import parse_age, purge_all

    age = parse_age(args.older_than)
    config = _loaded_config(args).config
    if not config.db_is_url and not pathlib.Path(config.db).is_file():
        # a mistyped --db must not become a new, empty database that was "purged" of nothing
        print(f"ivr purge: no call-record database at {config.db}", file=sys.stderr)
        return 1
    before = datetime.now(UTC) - age
    store = open_store(config.db, node_id=config.node_id)
    try:
        recordings = config.recording_dir
        counts = purge_all(store, before, _render_purgers(config), [MessageStore(store, config.messages_dir).purge],
                           [lambda cut: purge_recordings(recordings, cut)] if recordings is not None else [])
    finally:
        store.close()
    print(f"purged before {before.isoformat(timespec='seconds')}: {counts.calls} calls, "
          f"{counts.journey_events} journey events, {counts.surveys} surveys, "
          f"{counts.caller_dialects} caller dialects, {counts.renders} caller-specific renders, "
          f"{counts.messages} voice messages, {counts.recordings} call recordings")
    return 0


def _render_purgers(config: EngineConfig) -> list[RenderPurger]:
    """The prompt cache's caller-specific TTS renders (names, amounts) are caller data too."""
    from ivr.voice import purge_personal_renders

    cache = config.prompt_cache_dir
    return [lambda before: purge_personal_renders(cache, before)]


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
    p.add_argument("--engine", choices=["pocketsphinx", "vosk", "whisper", "moonshine"], default=None,
                   help="the recognizer (default: the one a call in that dialect uses: for en `asr_engine`'s, "
                        "i.e. whisper; another dialect's from `asr_models`, else vosk)")
    p.add_argument("--dialect", default="en", help="dialect code the model serves (default: en)")
    p.add_argument("--model", default=None, help="model folder (vosk: required; pocketsphinx: built-in en-us)")
    p.add_argument("--phrases", default=None, help="file of phrases, one per line, to bias recognition")
    p.set_defaults(handler=_asr)


def _asr(args: argparse.Namespace) -> int:
    import wave

    from ivr.engine.app import speech_specs
    from ivr.speech.commands import run_asr
    from ivr.speech.errors import SpeechError

    config = _loaded_config(args).config
    try:
        configured = {spec.dialect: spec.engine.value for spec in speech_specs(config)}
    except SpeechError as exc:
        print(f"ivr asr: the config's speech models: {exc}", file=sys.stderr)
        return 1
    # As a call would hear it: the dialect's configured engine; an unconfigured dialect can only be a Vosk model.
    engine = args.engine or configured.get(args.dialect, "vosk")
    try:
        return run_asr(args.wav, engine=engine, dialect=args.dialect, model=args.model,
                       phrases_file=args.phrases, out=print, err=lambda s: print(s, file=sys.stderr),
                       configured=config.asr_models, model_cache=config.model_cache_dir)
    except (EOFError, wave.Error) as exc:  # not a WAV file (or a truncated one): say so, no traceback
        print(f"ivr asr: {args.wav}: not a readable WAV file ({str(exc) or 'it ends early'})", file=sys.stderr)
        return 1


def _add_prompts(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("prompts", help="render and check the flows' prompts in every dialect")
    actions = p.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    for name, handler, text in (
        ("build", _prompts_build, "render every prompt the flows need, for every dialect they serve"),
        ("check", _prompts_check, "per dialect: recorded / synthesized / fallback; exit 1 if one is missing"),
    ):
        a = actions.add_parser(name, help=text)
        a.add_argument("--flows", default=None, help="folder of flow YAML files (default: the config's flows_dir)")
        a.add_argument("--dialects", default=None, help="folder of dialect packs (default: dialects_dir)")
        a.add_argument("--prompts", default=None, help="folder of recorded prompts (default: prompts_dir)")
        a.add_argument("--cache", default=None, help="render cache (default: prompt_cache_dir)")
        _add_config_options(a)
        if name == "build":
            a.add_argument("--quiet", action="store_true", help="no progress bar or summary, errors only")
        a.set_defaults(handler=handler)
    pin = actions.add_parser("pin", help="hash a staff PIN for the prompt-recording line (prompt_line_pins)")
    pin.add_argument("--stdin", action="store_true", help="read the PIN from stdin (no prompt)")
    pin.set_defaults(handler=_prompts_pin)


def _prompts_pin(args: argparse.Namespace) -> int:
    import getpass

    from ivr.voice.errors import VoiceError
    from ivr.voice.studio import hash_pin

    pin = sys.stdin.readline().strip() if args.stdin else getpass.getpass("PIN (4-12 digits): ")
    try:
        print(hash_pin(pin))
    except VoiceError as exc:
        print(f"ivr prompts pin: {exc}", file=sys.stderr)
        return 2
    return 0


def _add_dialects(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # SPEECH team
    p = sub.add_parser("dialects", help="dialect packs: start a new one")
    actions = p.add_subparsers(dest="dialects_command", metavar="ACTION", required=True)
    a = actions.add_parser("new", help="write a recordings-only pack falling back to another; list prompts to record")
    a.add_argument("code", help="dialect code of the new pack (e.g. cdo, hsn)")
    a.add_argument("--from", dest="parent", required=True, help="the dialect that stands in until recorded (cmn)")
    a.add_argument("--native", default=None, help="the dialect's name in itself")
    a.add_argument("--cmn-name", default=None, help="the dialect's name in Mandarin")
    _add_config_options(a)
    a.set_defaults(handler=_dialects_new)


def _dialects_new(args: argparse.Namespace) -> int:
    from ivr.engine.flowprompts import load_flow_prompts
    from ivr.voice import VoiceError, load_dialects
    from ivr.voice.newpack import run_new

    c = _loaded_config(args).config
    try:
        fallbacks = load_dialects(c.dialects_dir).fallbacks()  # flows may serve packs made here before
    except VoiceError as exc:
        print(f"ivr dialects new: {exc}", file=sys.stderr)
        return 1
    return run_new(args.code, args.parent, c.flows_dir, c.dialects_dir, c.prompts_dir,
                   load_flows=lambda flows_dir: load_flow_prompts(flows_dir, fallbacks),
                   name_native=args.native, name_cmn=args.cmn_name, err=lambda s: print(s, file=sys.stderr))


def _prompts_build(args: argparse.Namespace) -> int:
    from ivr.engine.flowprompts import run_build

    c = _loaded_config(args).config
    return run_build(c.flows_dir, c.dialects_dir, c.prompts_dir, c.prompt_cache_dir, quiet=args.quiet)


def _prompts_check(args: argparse.Namespace) -> int:
    from ivr.engine.flowprompts import run_check

    c = _loaded_config(args).config
    return run_check(c.flows_dir, c.dialects_dir, c.prompts_dir, c.prompt_cache_dir)


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check flow files; prints path:line:col: message per problem")
    p.add_argument("files", nargs="+", metavar="FILE", help="flow YAML files")
    p.add_argument("--warnings", action="store_true", help="also list warnings (dialect fallbacks...)")
    p.add_argument("--dialects", default=None, metavar="DIR",
                   help="dialect packs whose fallbacks the engine uses (default: the config's dialects_dir)")
    _add_config_options(p)
    p.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace) -> int:
    from ivr.flow.commands import validate_files
    from ivr.flow.model import DEFAULT_FALLBACKS
    from ivr.voice.dialects import load_dialects

    packs = _loaded_config(args).config.dialects_dir
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
    from ivr.testing.flowcommands import simulate_call

    return simulate_call(args.flow, args.turns, caller=args.caller, time=args.time, backend=args.backend,
                         as_json=args.json)


def _add_test_flows(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("test-flows", help="run flow test files (default: flows/tests/*.yaml)")
    p.add_argument("files", nargs="*", metavar="FILE", help="flow test YAML files")
    p.set_defaults(handler=_test_flows)


def _test_flows(args: argparse.Namespace) -> int:
    from ivr.testing.flowcommands import run_flow_tests

    return run_flow_tests(args.files)


def _add_graph(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("graph", help="draw a flow with graphviz (svg, png, pdf by the -o suffix)")
    p.add_argument("flow", metavar="FLOW", help="flow YAML file")
    p.add_argument("-o", "--output", default="flow.svg", help="output file (default: flow.svg)")
    p.set_defaults(handler=_graph)


def _graph(args: argparse.Namespace) -> int:
    import graphviz

    from ivr.flow.commands import draw_graph

    fmt = pathlib.Path(args.output).suffix.lstrip(".") or "svg"
    if fmt not in graphviz.FORMATS:
        print(f"ivr graph: graphviz cannot write '.{fmt}' files: name the output .svg, .png or .pdf", file=sys.stderr)
        return 2
    try:
        return draw_graph(args.flow, args.output)
    except graphviz.ExecutableNotFound:
        print("ivr graph: graphviz's `dot` is not installed (apt install graphviz)", file=sys.stderr)
        return 1
    except graphviz.CalledProcessError as exc:  # `dot` refused: a format this build of graphviz lacks...
        reason = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        print(f"ivr graph: dot failed: {reason[0] if reason else exc}", file=sys.stderr)
        return 1


def _add_demo_backend(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo-backend", help="serve the demo customer/policy back end for data dips")
    p.add_argument("--listen", default="127.0.0.1:8090", help="HOST:PORT (default: 127.0.0.1:8090)")
    p.set_defaults(handler=_demo_backend)


def _demo_backend(args: argparse.Namespace) -> int:
    from ivr.testing.flowcommands import serve_demo_backend

    host, _, port = args.listen.rpartition(":")
    return serve_demo_backend(host or "127.0.0.1", int(port))


def _add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="print today's figures: containment, NPS, service level, breakpoints...")
    p.add_argument("--since", default="1d", help="start: a span back (90m, 2h, 1d, 1w), 'today' or ISO-8601")
    p.add_argument("--until", default=None, help="end (default: now); same forms as --since")
    p.add_argument("--db", default=None, metavar="PATH|URL",
                   help="SQLite file or postgresql:// URL (default: the config's db, var/ivr.db)")
    _add_config_options(p)
    p.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from datetime import datetime

    from ivr.report import report_main

    config = _loaded_config(args).config
    return report_main(args.since, args.until, config.db, now=datetime.now().astimezone(),
                       messages_dir=config.messages_dir, classify=lambda: _flow_needs(config))


def _flow_needs(config: EngineConfig) -> Classify | None:
    """The flows' intent classifiers as one (trained from their phrases and the English engine's heard files, as the
    engine trains them), for the report's needs."""
    from ivr.engine.app import english_engine
    from ivr.flow import FlowLoadError, load_flow
    from ivr.voc import best_intent

    classifiers = []
    flows_dir, engine = config.flows_dir, english_engine(config)
    for path in sorted([*flows_dir.glob("*.yaml"), *flows_dir.glob("*.yml")]):
        try:
            flow = load_flow(path, heard_engine=engine)
        except FlowLoadError:
            continue  # `ivr validate` reports it; the report reads what it can
        if flow.classifier is not None:
            classifiers.append(flow.classifier)
    return best_intent(classifiers) if classifiers else None



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
    add_campaign,  # OUTBOUND: ivr campaign ... (ivr/outbound/cli.py)
    _add_nlu,
    _add_asr,
    _add_prompts,
    _add_dialects,
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
    _add_config,
    _add_init,
    _add_purge,
    _add_token,
    _add_agents,  # SECURITY: ivr agents passwd ID
)


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options accepted anywhere on the command line. A subcommand's copy has no default
    (SUPPRESS), so it only sets the value when given there and never erases one given before it."""
    default: object = None if top else argparse.SUPPRESS
    parser.add_argument("--log-level", default=default, choices=["debug", "info", "warning", "error"],
                        help="log level (default: info; the config key log_level)")
    parser.add_argument("--log-json", action="store_true", default=default,
                        help="JSON log lines even on a terminal (the config key log_json)")


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += [child, *_subparsers(child)]
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ivr", description="Telephony IVR engine for a customer hotline.",
        epilog="Exit codes: 0 ok, 1 checked and found wanting or failed, 2 usage error. "
               "Settings: docs/CONFIG.md.",
    )
    parser.add_argument("--version", action="version", version=f"ivr {__version__}")
    _add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    for child in _subparsers(parser):
        _add_global_options(child, top=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    from ivr.errors import ConfigError, IvrError
    from ivr.logconfig import configure_logging

    level = args.log_level or "info"
    if args.command in QUIET_COMMANDS and args.log_level is None:
        level = "error"  # their own output is the report; engine chatter would bury it
    configure_logging(level, json=args.log_json)
    try:
        return handler(args)
    except ConfigError as exc:  # a bad flag value or config setting: a usage error
        print(f"ivr {args.command}: {exc}", file=sys.stderr, flush=True)
        return 2
    except IvrError as exc:  # a runtime failure the library explained (database unreachable...)
        print(f"ivr {args.command}: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ivr schema | head`: the reader left; no traceback, as other CLIs
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
