"""One row of the benchmark table: a measured figure, its baseline from the same run, the target."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    area: str
    name: str
    value: float
    unit: str
    baseline: float | None = None  # measured in the same run, same machine
    baseline_name: str = ""
    target: str = ""  # e.g. ">= 0.5 x baseline", "<= 50 ms"
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        assert self.baseline is not None
        return self.value / self.baseline
