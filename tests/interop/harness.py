"""Run the Gurux peers as separate processes. Imports nothing from Gurux.

Both peers are started with the interpreter running the tests (the venv's python), from the
repository root, bounded in time, and killed in ``finally`` blocks whatever happens.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.interop import lab_data

__all__ = [
    "CLIENT_SCRIPT",
    "REPO_ROOT",
    "ClientRun",
    "gurux_available",
    "hls_gmac_args",
    "read_trace",
    "run_client",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
CLIENT_SCRIPT = REPO_ROOT / "tests" / "interop" / "gurux_client.py"
CLIENT_TIMEOUT = 30.0  # seconds for one whole client run (each wait inside is 5 s)


def gurux_available() -> bool:
    """True when gurux-dlms is installed, without importing it into this process."""
    return importlib.util.find_spec("gurux_dlms") is not None


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@dataclass(frozen=True, slots=True)
class ClientRun:
    """Outcome of one gurux_client.py run."""

    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        assert self.returncode == 0, self.stderr
        lines = self.stdout.splitlines()
        assert len(lines) == 1, self.stdout
        value = json.loads(lines[0])
        assert isinstance(value, dict)
        return value


def run_client(args: Sequence[str], timeout: float = CLIENT_TIMEOUT) -> ClientRun:
    """Run gurux_client.py with ``args``; never outlives ``timeout``."""
    proc = subprocess.Popen(
        [sys.executable, str(CLIENT_SCRIPT), *args],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        _kill(proc)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    return ClientRun(proc.returncode, stdout, stderr)


def hls_gmac_args(invocation_counter: int = 100) -> list[str]:
    """Client options for the lab's management client: HLS-GMAC, suite 0, auth + encryption."""
    return [
        "--client-address",
        str(lab_data.MANAGEMENT_CLIENT),
        "--server-address",
        str(lab_data.SERVER_ADDRESS),
        "--authentication",
        "high-gmac",
        "--security",
        "authentication-encryption",
        "--system-title",
        lab_data.CLIENT_SYSTEM_TITLE.hex(),
        "--block-cipher-key",
        lab_data.EK.hex(),
        "--authentication-key",
        lab_data.AK.hex(),
        "--invocation-counter",
        str(invocation_counter),
    ]


def read_trace(path: Path) -> list[dict[str, str]]:
    """The frames gurux_client.py wrote with --trace-frames."""
    frames: list[dict[str, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        frame = json.loads(line)
        assert set(frame) == {"dir", "hex"} and frame["dir"] in ("tx", "rx"), frame
        frames.append({"dir": str(frame["dir"]), "hex": str(frame["hex"])})
    return frames
