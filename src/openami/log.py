"""Structured logging: one JSON object per line, or a readable console form.

Extra fields passed with ``logger.info("...", extra={"fields": {...}})`` are emitted as keys.
Any field whose name looks like a secret (key, secret, password, token) is redacted, so a
careless call cannot leak a meter key into the logs.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["configure_logging", "get_logger", "redact"]

_SECRET = re.compile(r"(key|secret|password|passwd|token)", re.IGNORECASE)
REDACTED = "***"


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    """Return ``fields`` with every secret-looking value replaced."""
    return {k: (REDACTED if _SECRET.search(k) else v) for k, v in fields.items()}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(redact(fields))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += " " + " ".join(f"{k}={v}" for k, v in redact(fields).items())
        return line


def configure_logging(level: str = "WARNING", fmt: Literal["console", "json"] = "console") -> None:
    """Send openami's logs to stderr in the chosen format (idempotent)."""
    root = logging.getLogger("openami")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith("openami") else f"openami.{name}")
