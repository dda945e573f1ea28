"""`LruMap`: bounded, forgets the least recently used item first; reads count as use."""

from hubproxy.lru import LruMap


def test_the_least_recently_used_item_goes_first() -> None:
    items: LruMap[str, int] = LruMap(2)
    items.put("a", 1)
    items.put("b", 2)
    assert items.get("a") == 1  # "a" is now the most recently used
    items.put("c", 3)
    assert items.get("b") is None
    assert items.get("a") == 1
    assert items.get("c") == 3
    assert len(items) == 2


def test_put_replaces_and_pop_forgets() -> None:
    items: LruMap[str, int] = LruMap(3)
    items.put("a", 1)
    items.put("a", 2)
    assert items.get("a") == 2
    items.pop("a")
    items.pop("missing")
    assert items.get("a") is None
    assert len(items) == 0


def test_pop_where_forgets_every_matching_key() -> None:
    items: LruMap[tuple[str, int], str] = LruMap(10)
    for number in range(4):
        items.put(("repo", number), "x")
    items.put(("other", 0), "y")
    items.pop_where(lambda key: key[0] == "repo")
    assert len(items) == 1
    assert items.get(("other", 0)) == "y"
