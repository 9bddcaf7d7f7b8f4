"""Durations given on the command line (`--older-than 30d`, `--timestamp-expires 1d`): one
spelling for every flag that takes one."""

from __future__ import annotations

import re
from datetime import timedelta

from reconciler.errors import UsageError

_DURATION = re.compile(r"([0-9]{1,6})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, flag: str, *, zero: bool = False) -> timedelta:
    """`30d`, `12h`, `2w`, `45m` or `30s` as a timedelta (`0d` too when `zero`); anything
    else is a `UsageError` naming `flag`."""
    match = _DURATION.fullmatch(text)
    if match is None or (int(match.group(1)) == 0 and not zero):
        raise UsageError(
            f"{flag} {text!r}: give a duration like 30d (days), 12h (hours) or 2w (weeks)"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
