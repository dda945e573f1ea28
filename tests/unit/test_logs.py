"""The log formatters: uvicorn's coloured duplicates and ANSI escapes never reach the output."""

import json
import logging

from hubproxy.logs import JsonFormatter, TextFormatter, strip_ansi


def coloured_record() -> logging.LogRecord:
    # What uvicorn logs at start: a plain message plus a coloured copy as an extra.
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, "Started server process [%d] %s", (42, "\x1b[1mbold\x1b[0m"), None
    )  # fmt: skip
    record.color_message = "Started server process [\x1b[36m%d\x1b[0m]"
    record.route = "\x1b[31mresolve\x1b[0m"
    return record


def test_text_lines_have_no_colour_and_no_color_message() -> None:
    line = TextFormatter().format(coloured_record())
    assert "\x1b" not in line
    assert "color_message" not in line
    assert line.endswith("Started server process [42] bold route=resolve")


def test_json_lines_have_no_colour_and_no_color_message() -> None:
    document = json.loads(JsonFormatter().format(coloured_record()))
    assert "color_message" not in document
    assert document["message"] == "Started server process [42] bold"
    assert document["route"] == "resolve"


def test_strip_ansi_keeps_plain_text() -> None:
    assert strip_ansi("a \x1b[1;32mgreen\x1b[0m b\x1b[2K") == "a green b"
    assert strip_ansi("no escapes [1m here") == "no escapes [1m here"
