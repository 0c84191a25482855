"""demo: end-to-end reads per second against raw suite 0 crypto on the same machine.

Value: meter-interval reads delivered end to end per second by ``openami demo`` (fleet
generation, DLMS encode + AES-GCM per push, lossy network, head-end verify + decode, bus,
idempotent Parquet ingest, gap finding, re-collection, reconciliation).
Baseline: suite 0 protect + unprotect pairs per second on the same payload size, in the same
run: the least work any implementation of this chain must do per read. The ratio says what
share of the bare crypto speed the whole chain keeps.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from openami.bench import Benchmark, BenchResult, result
from openami.cli.demo_run import DemoParams, run_demo
from openami.errors import BenchmarkError
from openami.protocols.dlms.security import SuiteZero

PUSH_PAYLOAD = 51  # octets of one data-notification carrying a profile entry


def crypto_pairs_per_second(seconds: float = 1.0) -> float:
    suite = SuiteZero(os.urandom(16), os.urandom(16))
    title = b"OAM\x00\x00\x00\x00\x01"
    plaintext = os.urandom(PUSH_PAYLOAD)
    done, counter = 0, 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        for _ in range(1000):
            counter += 1
            suite.unprotect(title, suite.protect(title, counter, plaintext))
        done += 1000
    return done / (time.perf_counter() - began)


def run(params: Mapping[str, str]) -> BenchResult:
    try:
        meters = int(params.get("meters", "10000"))
        days = int(params.get("days", "2"))
        loss = float(params.get("loss", "0.02"))
    except ValueError as exc:
        raise BenchmarkError(f"demo benchmark parameter: {exc}") from None
    baseline = crypto_pairs_per_second()
    with tempfile.TemporaryDirectory(prefix="openami-bench-") as tmp:
        outcome = run_demo(DemoParams(meters=meters, days=days, loss=loss, data_dir=Path(tmp)))
    if outcome.reads_missing or not outcome.reconciled:
        raise BenchmarkError("demo run lost reads or did not reconcile; the figure would be void")
    reads_per_s = outcome.reads_expected / outcome.elapsed_s
    return result(
        "demo",
        round(reads_per_s, 1),
        "reads/s",
        "suite0_protect_unprotect",
        round(baseline, 1),
        meters=meters,
        days=days,
        loss=loss,
        elapsed_s=outcome.elapsed_s,
        reads=outcome.reads_expected,
        reads_recollected=outcome.reads_recollected,
    )


BENCHMARKS = [Benchmark("demo", "end-to-end demo reads/s vs suite 0 crypto pairs/s", run)]
