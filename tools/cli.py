"""`kam-dev`: the developer tools, kept out of the runtime package (Airflow never loads them).

kam-dev generate --scale N --seed S     synthetic ERP landing files + ground truth
kam-dev demo                            the whole pipeline on the embedded default (make demo)
kam-dev bench --scale N                 measure the pipeline and print the figures
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kam.cli import _date, _refused_future, _say, _yesterday, run_command
from kam.settings import Settings


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from tools.synthetic import generate

    out = Path(args.out) if args.out else settings.landing_dir
    counts = generate(out, args.scale, args.seed, args.end_date or _yesterday(settings), progress=_say)
    _say(
        f"wrote {sum(counts.values())} rows in {len(counts)} tables under {out} (ground truth: {out / 'ground_truth.json'})"
    )
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from tools.bench import run_bench

    run_bench(settings, args.scale, progress=_say)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from tools.demo import run_demo

    if args.date and _refused_future(args.date, settings):
        return 2
    return run_demo(settings, args.scale, args.seed, args.date or _yesterday(settings), progress=_say)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kam-dev", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="write synthetic ERP landing files")
    p.add_argument("--scale", type=float, default=1.0, help="1 = about 500 customers and 50,000 invoices")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--end-date", type=_date, help="last day of history (default: yesterday)")
    p.add_argument("--out", help="folder (default: KAM_HOME/landing)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("bench", help="measure the pipeline on a fresh instance and print the figures")
    p.add_argument("--scale", type=float, default=1.0)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="the whole pipeline on the embedded default")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--date", type=_date, help="as-of date (default: yesterday)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
