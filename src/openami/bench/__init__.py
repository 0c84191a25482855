"""The benchmark harness: every benchmark reports against a baseline measured in the same run.

Benchmarks live in the project's ``benchmarks/`` folder, one ``bench_*.py`` file each, each
defining ``BENCHMARKS: list[Benchmark]``. ``openami bench NAME --json`` runs one and prints one
JSON object with ``name, value, unit, baseline_name, baseline_value, ratio, params``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from openami.errors import BenchmarkError

__all__ = ["BenchResult", "Benchmark", "discover", "find_bench_dir", "stop_child"]


class BenchResult(msgspec.Struct, frozen=True):
    name: str
    value: float
    unit: str
    baseline_name: str
    baseline_value: float
    ratio: float
    params: dict[str, Any]


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    run: Callable[[Mapping[str, str]], BenchResult]


def find_bench_dir(explicit: Path | None = None) -> Path:
    """``--dir``, else ``$OPENAMI_BENCH_DIR``, else ``benchmarks/`` here or in a parent."""
    if explicit is not None:
        candidates = [explicit]
    elif os.environ.get("OPENAMI_BENCH_DIR"):
        candidates = [Path(os.environ["OPENAMI_BENCH_DIR"])]
    else:
        here = Path.cwd().resolve()
        candidates = [p / "benchmarks" for p in (here, *here.parents)]
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("bench_*.py")):
            return candidate
    raise BenchmarkError(
        "no benchmarks/ folder with bench_*.py found; run from the project checkout or pass --dir"
    )


def discover(folder: Path) -> dict[str, Benchmark]:
    found: dict[str, Benchmark] = {}
    for path in sorted(folder.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(f"openami_benchmarks.{path.stem}", path)
        if spec is None or spec.loader is None:
            raise BenchmarkError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for bench in getattr(module, "BENCHMARKS", []):
            if bench.name in found:
                raise BenchmarkError(f"benchmark {bench.name!r} is defined twice")
            found[bench.name] = bench
    return found


def result(
    name: str, value: float, unit: str, baseline_name: str, baseline_value: float, **params: Any
) -> BenchResult:
    ratio = value / baseline_value if baseline_value else float("nan")
    return BenchResult(name, value, unit, baseline_name, baseline_value, round(ratio, 6), params)


def stop_child(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Stop a service a benchmark started in a session of its own: SIGTERM, then, after
    ``timeout`` seconds, SIGKILL to its whole process group. True when SIGTERM sufficed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return False
