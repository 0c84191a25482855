"""The fleet's load curve as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt

__all__ = ["write_load_curve"]

JST = timezone(timedelta(hours=9))


def write_load_curve(curve: dict[str, Any], meters: int, interval_s: int, path: Path) -> Path:
    """Plot fleet import, export and net demand (kW averaged over each interval)."""
    ends = mdates.date2num(  # type: ignore[no-untyped-call]
        [datetime.fromtimestamp(t, tz=UTC).astimezone(JST) for t in curve["interval_end"]]
    )
    to_kw = 3600.0 / interval_s / 1000.0
    imp = [v * to_kw for v in curve["import_wh"]]
    exp = [v * to_kw for v in curve["export_wh"]]
    net = [i - e for i, e in zip(imp, exp, strict=True)]
    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=110)
    ax.step(ends, imp, where="pre", label="import from grid", color="#c0392b")
    ax.step(ends, [-e for e in exp], where="pre", label="export to grid (PV)", color="#27ae60")
    ax.plot(ends, net, label="net demand", color="#2c3e50", linewidth=1.0, alpha=0.7)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_title(
        f"Fleet load curve: {meters:,} household meters, 30-minute reads as stored by the MDMS"
    )
    ax.set_ylabel("kW (interval average)")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=JST))  # type: ignore[no-untyped-call]
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
