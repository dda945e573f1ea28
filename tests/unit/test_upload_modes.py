"""The preupload rules of huggingface.co, as git reads patterns (`hub/upload_modes.py`)."""

import pytest

from hubproxy.hub.upload_modes import (
    ignore_rules,
    ignored,
    lfs_patterns,
    looks_binary,
    matches,
    tracked_by_lfs,
)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.bin", "model.bin", True),
        ("*.bin", "sub/dir/model.bin", True),
        ("*.bin", "model.bin.txt", False),
        ("saved_model/**/*", "saved_model/a/b.pb", True),
        ("saved_model/**/*", "other/saved_model/a.pb", False),
        ("/top.txt", "top.txt", True),
        ("/top.txt", "sub/top.txt", False),
        ("*tfevents*", "logs/events.out.tfevents.1", True),
        ("*.tar.*", "a.tar.gz", True),
        ("data/*.csv", "data/a.csv", True),
        ("data/*.csv", "data/x/a.csv", False),
        ("file[0-9].txt", "file3.txt", True),
        ("file[!0-9].txt", "file3.txt", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[ab", "[ab", True),  # an unclosed bracket is literal
    ],
)
def test_patterns_match_as_git_matches_them(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected


def test_the_last_gitattributes_line_for_a_path_wins() -> None:
    rules = lfs_patterns(
        "# comment\n*.bin filter=lfs diff=lfs merge=lfs -text\nsmall.bin -filter\n"
        "*.json text\n*.dat filter=lfs\n"
    )
    assert tracked_by_lfs(rules, "weights.bin")
    assert not tracked_by_lfs(rules, "small.bin")
    assert tracked_by_lfs(rules, "x/y.dat")
    assert not tracked_by_lfs(rules, "config.json")


def test_gitignore_rules_follow_git() -> None:
    rules = ignore_rules("*.log\n!keep.log\nbuild/\n/secret.txt\n# comment\n\ncache\n")
    assert ignored(rules, "debug.log")
    assert ignored(rules, "sub/debug.log")
    assert not ignored(rules, "keep.log")
    assert ignored(rules, "build/out.bin")
    assert not ignored(rules, "build")  # a file named like a directory-only pattern
    assert ignored(rules, "secret.txt")
    assert not ignored(rules, "sub/secret.txt")
    assert ignored(rules, "cache/x.txt")
    assert ignored(rules, "a/cache")
    assert not ignored(rules, "model.safetensors")


def test_a_directory_ignored_cannot_be_reincluded() -> None:
    rules = ignore_rules("logs/\n!logs/keep.txt\n")
    assert ignored(rules, "logs/keep.txt")


def test_binary_samples_have_a_nul_byte() -> None:
    assert looks_binary(b"\x89PNG\r\n\x1a\n\0\0")
    assert not looks_binary("plain text, ünïcode".encode())
