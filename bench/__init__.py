"""Benchmarks: each ``bench/bench_*.py`` module has ``run(quick: bool) -> list[Figure]``."""
