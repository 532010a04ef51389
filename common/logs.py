"""Logging set-up shared by every service: plain lines, or one JSON object per line.

Fields passed with ``extra=`` (symbol, seq, timings) become JSON keys, so a log
pipeline can filter on them.
"""

import logging
import re
import sys
from typing import Any

import orjson

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


TEXT_FORMAT = "%(asctime)s {service} %(levelname)s %(name)s: %(message)s"
# A line TextFormatter starts, a Python warning, an uncaught exception: what
# ``line_level`` recognises (group 1: the level's name).
_TEXT_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \S+ ([A-Z]+) ")
_WARNING = re.compile(r"^\S.*:\d+: [A-Za-z]*Warning: ")
_LIBRARY_RECORD = re.compile(r"^([A-Z]+):\s")  # uvicorn's own format, before ours is set
_TRACEBACK = "Traceback (most recent call last):"
_LEVELS = logging.getLevelNamesMapping()


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__(TEXT_FORMAT.format(service=service))

    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        line = super().format(record)
        return line + "".join(f" {k}={v}" for k, v in extra.items())


def configure_logging(service: str, level: str = "INFO", as_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if as_json else TextFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def line_level(line: str) -> int | None:
    """The level of a line a service wrote, in either format, or None for a line that
    continues the one before it (a traceback's, a message's second line) or that no
    logger wrote. Python's warnings count as WARNING, an uncaught exception as ERROR."""
    if line.startswith("{"):
        try:
            name = orjson.loads(line).get("level")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return _LEVELS.get(str(name))
    if match := _TEXT_RECORD.match(line):
        return _LEVELS.get(match.group(1))
    if (match := _LIBRARY_RECORD.match(line)) and match.group(1) in _LEVELS:
        return _LEVELS[match.group(1)]
    if _WARNING.match(line):
        return logging.WARNING
    if line.startswith(_TRACEBACK):
        return logging.ERROR
    return None
