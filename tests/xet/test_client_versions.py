"""The second Xet pass (`scripts/xet-oldest-client.sh`) tests what it says: its pin is the lower
bound huggingface_hub itself declares for hf_xet, so a huggingface_hub that raises its floor
makes this test say the pin must move."""

import importlib.metadata
import re
from pathlib import Path

PIN_FILE = Path(__file__).with_name("oldest-client.txt")


def pinned() -> str:
    lines = [line for line in PIN_FILE.read_text().splitlines() if not line.startswith("#")]
    [line] = [line for line in lines if line.strip()]
    found = re.fullmatch(r"hf_xet==(\S+)", line.strip())
    assert found, line
    return found.group(1)


def declared_floor() -> str:
    requirements = importlib.metadata.requires("huggingface_hub") or []
    floors = {
        found.group(1)
        for requirement in requirements
        if re.match(r"hf[-_]xet\b", requirement, re.IGNORECASE)
        if (found := re.search(r">=\s*([0-9][^,;\s]*)", requirement))
    }
    assert len(floors) == 1, requirements
    return floors.pop()


def test_the_pin_is_the_floor_huggingface_hub_declares() -> None:
    assert pinned() == declared_floor()


def test_this_run_has_the_pinned_or_a_newer_client() -> None:
    installed = tuple(int(part) for part in importlib.metadata.version("hf_xet").split(".")[:3])
    assert installed >= tuple(int(part) for part in pinned().split("."))
