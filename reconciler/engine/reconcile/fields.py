"""Reading back a JSON object Cloned wrote (the status file), checking every field's type, so a
hand-edited or damaged file is a clear error (ValueError naming the field), never a crash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Fields:
    """Typed access to the fields of one JSON object; `where` names it in errors."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: not an object")
        self._data: Mapping[str, Any] = data
        self._where = where

    def _get(self, key: str, kinds: tuple[type, ...], *, optional: bool = False) -> Any:
        value = self._data.get(key)
        if value is None and optional:
            return None
        # bool is an int in Python; a count or a pid written as `true` is not one.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ValueError(f"{self._where}.{key}: missing or of the wrong type")
        return value

    def text(self, key: str) -> str:
        return str(self._get(key, (str,)))

    def optional_text(self, key: str) -> str | None:
        value = self._get(key, (str,), optional=True)
        return None if value is None else str(value)

    def integer(self, key: str) -> int:
        return int(self._get(key, (int,)))

    def optional_integer(self, key: str) -> int | None:
        value = self._get(key, (int,), optional=True)
        return None if value is None else int(value)

    def number(self, key: str) -> float:
        return float(self._get(key, (int, float)))

    def boolean(self, key: str) -> bool:
        return bool(self._get(key, (bool,)))

    def texts(self, key: str) -> list[str]:
        values = self._get(key, (list,))
        if not all(isinstance(value, str) for value in values):
            raise ValueError(f"{self._where}.{key}: not a list of strings")
        return list(values)

    def objects(self, key: str) -> list[Any]:
        return list(self._get(key, (list,)))

    def optional_object(self, key: str) -> Any:
        return self._get(key, (dict,), optional=True)

    def counts(self, key: str) -> dict[str, int]:
        values = self._get(key, (dict,))
        if not all(type(n) is int for n in values.values()):
            raise ValueError(f"{self._where}.{key}: not a map of counts")
        return dict(values)
