"""The `ivr` command: parses arguments, configures logging, calls one library function per subcommand.

No logic lives here that a test would need. Exit codes as linters use them: 0 ok, 1 checked and found
wanting (or a runtime failure), 2 usage error. Library imports are inside the handlers so
`ivr --help` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ivr import __version__

Handler = Callable[[argparse.Namespace], int]


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


COMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (_add_serve,)


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

    configure_logging(args.log_level, json=args.log_json)
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
