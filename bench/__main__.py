"""Run the benchmarks and print one table: the figure, the target, pass or miss (spec §9).

    python -m bench                          # everything (about 13 min on 2 cores)
    python -m bench --quick                  # small sizes, short load runs (about 4 min)
    python -m bench --only search --sizes 10000,100000 --backends sqlite

Throughput is also given as a ratio to a bare Starlette hello world served the same way and
loaded in turns with the app (common.Context.compare_with_hello; the value reads "rate = ratio
of hello rate"), because absolute rates on a shared machine drift from run to run and even
within one run. The process exits with 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from bench import calendar_feed, registration_burst, search
from bench.common import BACKENDS, Context, Options, Row, count_label, ensure_wrk

BENCHMARKS = ("search", "calendar", "registration", "import", "alerts")


def _csv(kind: type, choices: Sequence[str] | None = None) -> object:
    def parse(raw: str) -> list[object]:
        items = [kind(item.strip()) for item in raw.split(",") if item.strip()]
        if choices is not None and (unknown := set(items) - set(choices)):
            raise argparse.ArgumentTypeError(f"unknown: {', '.join(map(str, unknown))}")
        return items

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", type=_csv(str, BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--backends", type=_csv(str, BACKENDS), default=list(BACKENDS))
    parser.add_argument("--sizes", type=_csv(int), default=None, help="search sizes")
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs")
    parser.add_argument("--duration", type=float, default=None, help="seconds per load run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-requests", type=int, default=None)
    parser.add_argument("--import-events", type=int, default=None)
    parser.add_argument("--alerts", type=int, default=None, help="alerts of the alerts bench")
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [10_000, 50_000] if args.quick else [10_000, 100_000, 1_000_000]
    if args.duration is None:
        args.duration = 3.0 if args.quick else 10.0
    if args.latency_requests is None:
        args.latency_requests = 100 if args.quick else 300
    if args.alerts is None:
        args.alerts = 1_000 if args.quick else 10_000
    if args.import_events is None:
        args.import_events = 10_000 if args.quick else 100_000
    return args


def run_import(ctx: Context, backends: list[str], events: int) -> list[Row]:
    from bench import import_feed

    rows: list[Row] = []
    for backend in backends:
        argv = ["--events", str(events)]
        if backend != "sqlite":
            argv += ["--database-url", ctx.database(backend, "import")]
        figures = import_feed.main(argv)
        found = figures.get("checks")
        checks: dict[str, bool] = found if isinstance(found, dict) else {}
        name = f"import {backend} {count_label(events)}"

        check = checks.get
        rows += [
            Row(
                name,
                "first import",
                f"{figures.get('first_import_s')} s, peak {figures.get('first_import_peak_mb')} MB",
                "< 60 s, < 300 MB",
                _all(check("first import < 60 s"), check("peak memory < 300 MB")),
            ),
            Row(
                name,
                "unchanged re-import",
                f"{figures.get('reimport_s')} s, peak {figures.get('reimport_peak_mb')} MB",
                "< 5 s",
                check("re-import < 5 s"),
            ),
            Row(
                name,
                "events created, then unchanged",
                f"{figures.get('created')} created, {figures.get('unchanged_on_reimport')} "
                "unchanged",
                f"{events}, {events}",
                check("every event created, then unchanged"),
            ),
        ]
    return rows


def run_alerts(ctx: Context, backends: list[str], alerts: int, events: int) -> list[Row]:
    from bench import alerts as alerts_bench

    rows: list[Row] = []
    for backend in backends:
        argv = ["--alerts", str(alerts), "--events", str(events)]
        if backend != "sqlite":
            argv += ["--database-url", ctx.database(backend, "alerts")]
        figures = alerts_bench.main(argv)
        checks = figures["checks"]
        large = figures[str(alerts)]
        name = f"alerts {backend} {count_label(alerts)}"
        rows += [
            Row(
                name,
                f"send_alerts, {events} new events",
                f"{large['first']['seconds']} s, {large['first']['statements']} statements, "
                f"{large['first']['mails']} mails",
            ),
            Row(
                name,
                "ms and statements per alert (1/5 of the alerts, all)",
                f"{figures['ms_per_alert']} ms, {figures['statements_per_alert']}",
                "flat",
                checks["statements per alert stay flat"],
            ),
            Row(
                name,
                "second run, nothing new",
                f"{large['again']['seconds']} s, {large['again']['mails']} mails",
                "0 mails",
                checks["a second run queues nothing"],
            ),
        ]
    return rows


def _all(*checks: bool | None) -> bool | None:
    known = [c for c in checks if c is not None]
    return all(known) if known else None


def _percent(ratio: float) -> str:
    return f"{ratio:.1%}" if ratio < 0.1 else f"{ratio:.0%}"


def render(rows: list[Row], hello_rates: list[float]) -> tuple[str, bool]:
    """The table, and whether every target is met."""
    table: list[tuple[str, str, str, str, str]] = []
    if hello_rates:
        table.append(
            (
                "hello world",
                f"rate under load ({len(hello_rates)} runs)",
                f"{min(hello_rates):,.0f} to {max(hello_rates):,.0f} req/s",
                "(baseline)",
                "",
            )
        )
    for row in rows:
        value, target, ok = row.value, row.target, row.ok
        if row.rate is not None and row.hello:
            ratio = row.rate / row.hello
            value = f"{row.rate:,.0f} req/s = {_percent(ratio)} of {row.hello:,.0f}"
            if row.min_ratio is not None:
                target = f"≥ {row.min_ratio:.0%} of hello"
                ok = ratio >= row.min_ratio
        result = "" if ok is None else ("pass" if ok else "MISS")
        table.append((row.bench, row.figure, value, target, result))
    header = ("benchmark", "figure", "value", "target", "result")
    widths = [max(len(line[i]) for line in [header, *table]) for i in range(5)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    rule = "  ".join("-" * width for width in widths)
    text = "\n".join([line(header), rule, *(line(cells) for cells in table)])
    return text.rstrip(), all(row[4] != "MISS" for row in table)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        workers=args.workers,
        duration_s=args.duration,
        connections=args.connections,
        latency_requests=args.latency_requests,
    )
    needs_load = bool({"search", "calendar"} & set(args.only))
    if needs_load:
        ensure_wrk()
    started = time.monotonic()
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(prefix="events-bench-") as tmp,
        ExitStack() as stack,
    ):
        ctx = Context(options, Path(tmp), stack)
        if "search" in args.only:
            rows += search.run(ctx, args.backends, args.sizes)
        if "calendar" in args.only:
            rows += calendar_feed.run(ctx)
        if "registration" in args.only:
            rows += registration_burst.run(ctx, args.backends)
        if "import" in args.only:
            rows += run_import(ctx, args.backends, args.import_events)
        if "alerts" in args.only:
            rows += run_alerts(ctx, args.backends, args.alerts, 200 if args.quick else 1_000)
        hello_rates = ctx.hello_rates
    table, passed = render(rows, hello_rates)
    minutes = (time.monotonic() - started) / 60
    print()
    print(
        f"{options.workers} workers, load {options.connections} connections for "
        f"{options.duration_s:g} s (wrk), latency over {options.latency_requests} sequential "
        f"requests; {minutes:.1f} min"
    )
    print(table)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
