"""Working-day calendar of an office: Monday to Friday, minus Italian national holidays, the patron
saint of the office's province (the `holidays` package, Italy with the province subdivision) and the
closures the admin lists in config.yaml (`calendar:` section). Time zone Europe/Rome by default.

Day arithmetic uses half-open intervals so that adding and then counting always round-trips:
`count_working_days(a, b)` counts the working days d with a < d <= b when b >= a, and minus the
working days with b <= d < a when b < a; `add_working_day_count(a, n)` is the n-th working day after
`a` (before it when n < 0). So `count_working_days(a, add_working_day_count(a, n)) == n` for every
day `a` and every n, working day or not.

Instants: a message counts as received on its local day if that is a working day and it arrived
before the cut-off hour, else on the next working day (`receipt_day`). A term of N working days from
a receipt day ends at the end of the N-th working day after it (`deadline`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from daemon.config import Config  # config.yaml embeds the calendar settings defined here

__all__ = [
    "CalendarSettings",
    "Closure",
    "WorkingCalendar",
    "calendars_from_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Closure(_Strict):
    """A day the office is closed although it is a working day (e.g. a bridge decided by the directorate)."""

    data: dt.date
    descrizione: str = Field(min_length=1)
    # Offices concerned; empty means every office.
    uffici: tuple[str, ...] = ()


class CalendarSettings(_Strict):
    """The `calendar:` section of config.yaml."""

    timezone: str = "Europe/Rome"
    # A message received at or after this hour (local time) counts as received the next working day.
    cutoff_hour: int = Field(default=14, ge=0, le=24)
    # Working-day morning hour at which reminders, escalations and digests go out.
    opening_hour: int = Field(default=8, ge=0, le=23)
    # Province subdivision of the `holidays` package per office, when it differs from office.province.
    patron_subdivision: dict[str, str] = Field(default_factory=dict)
    closures: tuple[Closure, ...] = ()
    sweep_seconds: int = Field(default=60, ge=5, le=3600)
    sweep_batch: int = Field(default=200, ge=1, le=10000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"fuso orario sconosciuto: {value}") from None
        return value

    @field_validator("patron_subdivision")
    @classmethod
    def _known_subdivisions(cls, value: dict[str, str]) -> dict[str, str]:
        for office, subdiv in value.items():
            if subdiv not in holidays.Italy.subdivisions:
                raise ValueError(f"ufficio {office}: provincia sconosciuta per il santo patrono: {subdiv}")
        return value


@lru_cache(maxsize=256)
def _holiday_days(subdiv: str | None, year: int) -> frozenset[dt.date]:
    # Building a holidays table costs (Easter computation, names): cache per (province, year).
    return frozenset(holidays.Italy(subdiv=subdiv, years=year).keys())


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _require_aware(when: dt.datetime) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("data e ora senza fuso orario: usare datetime con fuso")


_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class WorkingCalendar:
    """One office's calendar. Aware datetimes in, aware datetimes (in the office's zone) out."""

    subdiv: str | None = None
    closures: frozenset[dt.date] = frozenset()
    timezone: str = "Europe/Rome"
    cutoff_hour: int = 14
    opening_hour: int = 8

    @property
    def tz(self) -> ZoneInfo:
        return _zone(self.timezone)

    # -- days ---------------------------------------------------------------------------------

    def is_holiday(self, day: dt.date) -> bool:
        return day in _holiday_days(self.subdiv, day.year)

    def is_working_day(self, day: dt.date | dt.datetime) -> bool:
        if isinstance(day, dt.datetime):
            day = self.local_date(day)
        return day.weekday() < 5 and day not in self.closures and day not in _holiday_days(self.subdiv, day.year)

    def holiday_name(self, day: dt.date) -> str | None:
        """Why a weekday is not worked ("Festa della Liberazione", "chiusura dell'ufficio"), or None."""
        if day in self.closures:
            return "chiusura dell'ufficio"
        if not self.is_holiday(day):
            return None
        return str(holidays.Italy(subdiv=self.subdiv, years=day.year, language="it_IT").get(day))

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day strictly after `day`."""
        day += _ONE_DAY
        while not self.is_working_day(day):
            day += _ONE_DAY
        return day

    def previous_working_day(self, day: dt.date) -> dt.date:
        """The last working day strictly before `day`."""
        day -= _ONE_DAY
        while not self.is_working_day(day):
            day -= _ONE_DAY
        return day

    def add_working_day_count(self, day: dt.date, n: int) -> dt.date:
        """The n-th working day after `day` (before it when n < 0); n == 0 leaves `day` unchanged."""
        step = self.next_working_day if n > 0 else self.previous_working_day
        for _ in range(abs(n)):
            day = step(day)
        return day

    def count_working_days(self, a: dt.date, b: dt.date) -> int:
        """Working days in (a, b] if b >= a, else minus those in [b, a)."""
        if b >= a:
            start, end, sign = a + _ONE_DAY, b, 1
        else:
            start, end, sign = b, a - _ONE_DAY, -1
        total = 0
        day = start
        while day <= end:
            # Whole weeks at once: the working days among the five weekdays of the week.
            if day.weekday() == 0 and (end - day).days >= 6:
                total += sum(1 for i in range(5) if self.is_working_day(day + dt.timedelta(days=i)))
                day += dt.timedelta(days=7)
                continue
            if self.is_working_day(day):
                total += 1
            day += _ONE_DAY
        return sign * total

    def working_days_in(self, a: dt.date, b: dt.date) -> Iterator[dt.date]:
        """The working days d with a <= d <= b, in order."""
        day = a
        while day <= b:
            if self.is_working_day(day):
                yield day
            day += _ONE_DAY

    # -- instants -----------------------------------------------------------------------------

    def local(self, when: dt.datetime) -> dt.datetime:
        _require_aware(when)
        return when.astimezone(self.tz)

    def local_date(self, when: dt.datetime) -> dt.date:
        return self.local(when).date()

    def at_local(self, day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
        """That wall-clock time in the office's zone (DST handled by zoneinfo)."""
        if hour >= 24:
            return dt.datetime.combine(day + _ONE_DAY, dt.time(0), tzinfo=self.tz)
        return dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=self.tz)

    def opening(self, day: dt.date) -> dt.datetime:
        """The office's opening hour on `day`: when reminders, escalations and digests go out."""
        return self.at_local(day, self.opening_hour)

    def end_of_day(self, day: dt.date) -> dt.datetime:
        """The last second of a day: a term ends "by the end of that working day"."""
        return self.at_local(day, 23, 59, 59)

    def add_working_days(self, start: dt.datetime, n: int) -> dt.datetime:
        """`start` moved by n working days, keeping its local wall-clock time."""
        local = self.local(start)
        day = self.add_working_day_count(local.date(), n)
        return dt.datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=self.tz)

    def working_days_between(self, a: dt.datetime, b: dt.datetime) -> int:
        """`count_working_days` on the local dates of two instants."""
        return self.count_working_days(self.local_date(a), self.local_date(b))

    def receipt_day(self, received_at: dt.datetime) -> dt.date:
        """The working day a message counts as received: its own day if that is a working day and it
        arrived before the cut-off hour, else the next working day."""
        local = self.local(received_at)
        day = local.date()
        if not self.is_working_day(day) or local.hour >= self.cutoff_hour:
            return self.next_working_day(day)
        return day

    def deadline_day(self, received_at: dt.datetime, working_days: int) -> dt.date:
        """The last day of a term of `working_days` working days from the receipt (which is not counted)."""
        return self.add_working_day_count(self.receipt_day(received_at), working_days)

    def deadline(self, received_at: dt.datetime, working_days: int) -> dt.datetime:
        """The end of the last day of the term."""
        return self.end_of_day(self.deadline_day(received_at, working_days))


# -- configuration ----------------------------------------------------------------------------


def calendars_from_config(config: Config) -> dict[str, WorkingCalendar]:
    """One calendar per office of the configuration."""
    settings: CalendarSettings = config.calendar
    out: dict[str, WorkingCalendar] = {}
    for office in config.offices:
        subdiv: str | None = settings.patron_subdivision.get(office.id, office.province)
        if subdiv not in holidays.Italy.subdivisions:
            subdiv = None
        closures = frozenset(c.data for c in settings.closures if not c.uffici or office.id in c.uffici)
        # An office's own time zone wins only if config.yaml sets it explicitly.
        zone = office.timezone if "timezone" in office.model_fields_set else settings.timezone
        out[office.id] = WorkingCalendar(
            subdiv=subdiv,
            closures=closures,
            timezone=zone,
            cutoff_hour=settings.cutoff_hour,
            opening_hour=settings.opening_hour,
        )
    return out
