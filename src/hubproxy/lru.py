"""`LruMap`: a bounded in-memory map that forgets its least recently used items.

For what is cheap to load again but hot to read: immutable file entries and documents of the
cache, the file lists of hosted commits.
"""

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class LruMap(Generic[Key, Value]):
    """A dict that keeps at most `capacity` items, dropping the least recently used first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[Key, Value] = OrderedDict()

    def get(self, key: Key) -> Value | None:
        """The value of `key` (now the most recently used), or None."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Key, value: Value) -> None:
        """Set `key`, then drop the least recently used items beyond `capacity`."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def pop(self, key: Key) -> None:
        """Forget `key` (nothing happens if it is not there)."""
        self._items.pop(key, None)

    def pop_where(self, condition: Callable[[Key], bool]) -> None:
        """Forget every key for which `condition` holds."""
        for key in [key for key in self._items if condition(key)]:
            del self._items[key]

    def __len__(self) -> int:
        return len(self._items)
