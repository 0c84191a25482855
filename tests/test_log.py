from __future__ import annotations

import json
import logging

import pytest

from openami.log import configure_logging, get_logger, redact


def test_json_lines_carry_fields_and_redact_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    get_logger("test").info(
        "provisioned", extra={"fields": {"meter": 7, "ek_key": "00ff", "password": "x"}}
    )
    line = capsys.readouterr().err.strip()
    record = json.loads(line)
    assert record["msg"] == "provisioned" and record["meter"] == 7 and record["level"] == "info"
    assert record["ek_key"] == "***" and record["password"] == "***"
    assert "00ff" not in line
    assert record["ts"].endswith("+00:00")


def test_console_format_and_level_filter(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING", "console")
    log = get_logger("openami.x")
    log.info("hidden")
    log.warning("shown", extra={"fields": {"token": "abc", "n": 1}})
    err = capsys.readouterr().err
    assert "hidden" not in err and "shown" in err and "n=1" in err and "abc" not in err
    logging.getLogger("openami").handlers.clear()


def test_redact_keeps_ordinary_fields() -> None:
    assert redact({"meter_id": 1, "secret": 2}) == {"meter_id": 1, "secret": "***"}
