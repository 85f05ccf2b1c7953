"""Quarters in China Standard Time: what a ``2025Q1`` covers, and when its report is due.

Every quarter starts at 00:00 CST (UTC+8, no daylight saving) on 1 January, April, July or October;
an event belongs to the quarter its instant falls in, in CST. A quarter's report is due by the end of
the 10th day of the quarter's following month one (``due_on``), CST.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")
_PATTERN = re.compile(r"(\d{4})Q([1-4])")
DUE_DAY = 10


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int  # 1..4

    @classmethod
    def parse(cls, text: str) -> Quarter:
        match = _PATTERN.fullmatch(text)
        if match is None or not 2000 <= int(match.group(1)) <= 2999:
            raise ValueError(text)
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, instant: datetime) -> Quarter:
        local = instant.astimezone(CST)
        return cls(local.year, (local.month - 1) // 3 + 1)

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def first_day(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def last_day(self) -> date:
        return self.next().first_day - timedelta(days=1)

    @property
    def start(self) -> datetime:
        """The quarter's first instant, in UTC (its CST midnight)."""
        return datetime.combine(self.first_day, datetime.min.time(), CST).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The next quarter's first instant, in UTC: the quarter is ``[start, end)``."""
        return self.next().start

    @property
    def due_on(self) -> date:
        return self.next().first_day.replace(day=DUE_DAY)

    @property
    def due_at(self) -> datetime:
        """The first instant the report is overdue (after the due day ends, CST), in UTC."""
        return datetime.combine(self.due_on + timedelta(days=1), datetime.min.time(), CST).astimezone(UTC)

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)
