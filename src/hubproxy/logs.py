"""Logging set-up: readable lines by default, one JSON object per line with `log_format: json`.

Access records (logger `hubproxy.access`, one per request) carry their fields as `extra`
attributes; the JSON formatter emits them as keys, the text formatter appends them.

Log lines are plain text in both formats: uvicorn attaches a terminal-coloured copy of some
messages as the `color_message` extra, which is never emitted, and ANSI escape sequences are
removed from every message and field, so a log shipper or `grep` sees what was meant.
"""

import json
import logging
import re
import time

ACCESS_LOGGER = "hubproxy.access"
# Attributes every LogRecord has; anything else was passed in `extra`.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
# Extras that are presentation, not data: uvicorn's coloured duplicate of the message.
_DROPPED_EXTRAS = frozenset({"color_message"})
# CSI sequences (colours, cursor moves) and the two-byte escapes; enough for what libraries emit.
_ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    """`text` without ANSI escape sequences."""
    return _ANSI_ESCAPE.sub("", text)


def _plain(value: object) -> object:
    return strip_ansi(value) if isinstance(value, str) else value


def _extra(record: logging.LogRecord) -> dict[str, object]:
    return {
        key: _plain(value)
        for key, value in record.__dict__.items()
        if key not in _STANDARD and key not in _DROPPED_EXTRAS
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": strip_ansi(record.getMessage()),
            **_extra(record),
        }
        if record.exc_info:
            document["exception"] = strip_ansi(self.formatException(record.exc_info))
        return json.dumps(document, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = _extra(record)
        if extra:
            line += " " + " ".join(f"{key}={value}" for key, value in extra.items())
        # The whole line, tracebacks included: escapes may come from arguments or exceptions.
        return strip_ansi(line)


def configure_logging(level: str, log_format: str) -> None:
    """Route hubproxy's and uvicorn's loggers through one handler in the chosen format."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
