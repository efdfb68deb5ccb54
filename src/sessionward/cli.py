"""The ``sessionward`` command: serve | demo | report | simulate | audit verify | db upgrade."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from sessionward.service.config import ConfigError, Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sessionward", description=__doc__)
    parser.add_argument("--config", type=Path, help="a TOML settings file (see service/config.py)")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the WaaS HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    commands.add_parser("demo", help="play the three actors end to end on embedded defaults")
    simulate = commands.add_parser(
        "simulate", help="simulate days of delegated traffic for `report`"
    )
    simulate.add_argument("--days", type=int, default=7)
    simulate.add_argument("--seed", type=int, default=1)
    report = commands.add_parser("report", help="the weekly delegation-health report")
    report.add_argument(
        "--since", type=_time, help="start (unix s, YYYY-MM-DD or ISO; default: until - 7 days)"
    )
    report.add_argument("--until", type=_time, help="end, exclusive (default: now)")
    report.add_argument("--format", choices=_formats(), default="html")
    report.add_argument("--output", type=Path, help="file to write (default: stdout)")
    audit = commands.add_parser("audit", help="audit log tools")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="verify every audit hash chain")
    verify.add_argument("--stream", help="only this stream (a wallet id or 'global')")
    db = commands.add_parser("db", help="database tools")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply the migrations")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    if args.command == "demo":
        from sessionward.demo import run_demo

        return run_demo()
    try:
        settings = Settings.load(file=args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "simulate":
        from sessionward.simulate import SimulationError, run_simulation

        try:
            run_simulation(settings, days=args.days, seed=args.seed)
        except SimulationError as exc:
            print(f"simulate: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "report":
        from sessionward.service.report import run_report

        return run_report(settings, args.since, args.until, args.format, args.output)
    if args.command == "serve":
        from sessionward.server import serve_forever
        from sessionward.service.waas import Waas

        serve_forever(Waas.from_settings(settings), host=args.host, port=args.port)
        return 0
    from sessionward.store import open_store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(
        settings.database_url, data_dir=settings.data_dir, schema=settings.database_schema
    )
    try:
        if args.command == "db":
            store.upgrade()
            print(f"database at revision {store.current_revision()}")
            return 0
        verdict = store.audit.verify(args.stream)
        for problem in verdict.problems:
            print(f"{problem.kind}: stream {problem.stream} seq {problem.seq}: {problem.detail}")
        streams = [args.stream] if args.stream else store.audit.streams()
        print(f"{len(streams)} stream(s) checked: {'OK' if verdict.ok else 'TAMPERED'}")
        return 0 if verdict.ok else 1
    finally:
        store.close()


def _time(text: str) -> int:
    from sessionward.service.report import parse_time

    return parse_time(text)


def _formats() -> tuple[str, ...]:
    from sessionward.service.report import FORMATS

    return tuple(FORMATS)


if __name__ == "__main__":
    raise SystemExit(main())
