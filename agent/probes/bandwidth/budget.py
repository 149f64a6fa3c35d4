"""The test-traffic budget: how many bytes bandwidth tests may move per day and month.

A school on a metered 4G backup line, or on a 20 Mbit/s ADSL line during lessons,
must not lose its capacity to our tests. The ledger lives in the state directory, so a
restart does not reset it; days and months are the agent's local calendar.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

LEDGER_FILE = "bandwidth-budget.json"


class BudgetExhausted(Exception):
    """The day's or the month's test traffic is used up; the message says which."""


class Budget:
    def __init__(self, state_dir: Path, daily: int, monthly: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = state_dir / LEDGER_FILE
        self.daily = daily
        self.monthly = monthly
        self.clock = clock

    def _keys(self) -> tuple[str, str]:
        day = time.strftime("%Y-%m-%d", time.localtime(self.clock()))
        return day, day[:7]

    def _read(self) -> dict[str, dict[str, int]]:
        try:
            document = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {"days": {}, "months": {}}
        if not isinstance(document, dict):
            return {"days": {}, "months": {}}
        return {part: {k: int(v) for k, v in document.get(part, {}).items()
                       if isinstance(v, int | float)}
                for part in ("days", "months")}

    def used(self) -> tuple[int, int]:
        """Bytes moved today and this month."""
        ledger, (day, month) = self._read(), self._keys()
        return ledger["days"].get(day, 0), ledger["months"].get(month, 0)

    def allowance(self) -> int:
        """What the next test may move at most; BudgetExhausted when nothing is left."""
        today, this_month = self.used()
        left = min(self.daily - today, self.monthly - this_month)
        if left <= 0:
            which = ("daily", self.daily, today) if self.daily - today <= self.monthly - this_month \
                else ("monthly", self.monthly, this_month)
            raise BudgetExhausted(f"the {which[0]} test-traffic budget of {which[1] / 1e9:.1f} GB "
                                  f"is used ({which[2] / 1e9:.2f} GB moved)")
        return left

    def spend(self, moved: int) -> None:
        ledger, (day, month) = self._read(), self._keys()
        ledger["days"][day] = ledger["days"].get(day, 0) + moved
        ledger["months"][month] = ledger["months"].get(month, 0) + moved
        # Only the current month's days matter: the ledger stays small for ever.
        ledger["days"] = {k: v for k, v in ledger["days"].items() if k.startswith(month)}
        ledger["months"] = {k: v for k, v in ledger["months"].items() if k >= month[:4]}
        temporary = self.path.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps(ledger))
            os.replace(temporary, self.path)
        except OSError:
            # Without a writable state directory (measure before enrolment) there is
            # no schedule whose budget to keep.
            pass
