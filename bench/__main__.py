"""``make bench``: run every benchmark under bench/ and print one table of figures and ratios.

``python -m bench [--quick] [name ...]`` runs a subset (module names without ``bench_``)."""

import argparse
import importlib
import pkgutil
import sys
import time

from bench.figures import Figure


def _modules(selected: list[str]) -> list[str]:
    import bench  # run as ``python -m bench``, this module has no ``__path__`` of its own

    # The load run last: a minute of 50 researchers leaves PostgreSQL vacuuming and checkpointing,
    # which made the sync bench's PostgreSQL push read 3.5x its baseline instead of ~2.5x.
    names = sorted(
        (m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")),
        key=lambda name: (name == "bench_load", name),
    )
    if selected:
        names = [n for n in names if n.removeprefix("bench_") in selected]
    return names


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="smaller data, for CI")
    parser.add_argument("only", nargs="*")
    args = parser.parse_args()
    figures: list[Figure] = []
    for name in _modules(args.only):
        started = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"bench.{name}")
        figures += module.run(quick=args.quick)
        print(f"  {name} took {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    header = ("area", "figure", "value", "unit", "baseline", "ratio", "target", "met")
    rows = [
        (
            f.area,
            f.name,
            _fmt(f.value),
            f.unit,
            f"{_fmt(f.baseline)} {f.baseline_name}".strip() if f.baseline is not None else "-",
            f"{f.ratio:.2f}" if f.ratio is not None else "-",
            f.target or "-",
            {True: "yes", False: "NO", None: "-"}[f.met],
        )
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
