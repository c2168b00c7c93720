"""The working-day calendar on real dates: national holidays, the patron saint, closures, weekends,
the cut-off hour, daylight saving; and the round-trip property of adding and counting working days."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config import Config, ConfigError, load_config
from daemon.workcalendar import WorkingCalendar, calendars_from_config
from tests.support.paths import ROOT

ROME = ZoneInfo("Europe/Rome")
D = dt.date


def at(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=ROME)


@pytest.fixture
def cals(shipped_config: Config) -> dict[str, WorkingCalendar]:
    return calendars_from_config(shipped_config)


@pytest.fixture
def fe(cals: dict[str, WorkingCalendar]) -> WorkingCalendar:
    return cals["FE"]


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (D(2026, 4, 6), "Lunedì dell'Angelo"),  # Easter Monday 2026
        (D(2027, 3, 29), "Lunedì dell'Angelo"),  # Easter Monday 2027
        (D(2025, 4, 25), "Anniversario della Liberazione"),  # a Friday
        (D(2026, 6, 2), "Festa della Repubblica"),  # a Tuesday
        (D(2025, 8, 15), "Assunzione della Beata Vergine"),  # a Friday
        (D(2026, 12, 8), "Immacolata Concezione"),  # a Tuesday
        (D(2026, 4, 23), "San Giorgio"),  # Ferrara's patron saint, a Thursday
        (D(2026, 1, 1), "Capodanno"),
        (D(2026, 12, 25), "Natale"),
    ],
)
def test_national_holidays_and_the_patron_saint_are_not_working_days(
    fe: WorkingCalendar, day: dt.date, name: str
) -> None:
    assert day.weekday() < 5
    assert not fe.is_working_day(day)
    assert name.lower() in (fe.holiday_name(day) or "").lower()


def test_the_patron_saint_is_only_the_office_province_s(cals: dict[str, WorkingCalendar]) -> None:
    # San Giorgio is Ferrara's; the regional directorate is in Bologna (San Petronio, 4 October).
    assert not cals["FE"].is_working_day(D(2026, 4, 23))
    assert cals["ER"].is_working_day(D(2026, 4, 23))
    assert cals["ER"].subdiv == "BO" and cals["FE"].subdiv == "FE"
    # 4 October 2027 is a Monday: San Petronio in Bologna (and, from 2026, San Francesco nationally).
    assert not cals["ER"].is_working_day(D(2027, 10, 4))
    # Rome's patron saints, 29 June 2026 (a Monday), for the national office only.
    assert not cals["DG"].is_working_day(D(2026, 6, 29))
    assert cals["FE"].is_working_day(D(2026, 6, 29))


def test_weekends_are_not_working_days(fe: WorkingCalendar) -> None:
    assert not fe.is_working_day(D(2026, 11, 21))  # Saturday
    assert not fe.is_working_day(D(2026, 11, 22))  # Sunday
    assert fe.is_working_day(D(2026, 11, 23))
    assert fe.holiday_name(D(2026, 11, 23)) is None


def test_closures_from_config_for_their_offices(cals: dict[str, WorkingCalendar]) -> None:
    # 24 December 2026: closure for FE only; 31 December 2026: every office.
    assert not cals["FE"].is_working_day(D(2026, 12, 24))
    assert cals["FE"].holiday_name(D(2026, 12, 24)) == "chiusura dell'ufficio"
    assert cals["ER"].is_working_day(D(2026, 12, 24))
    assert not cals["ER"].is_working_day(D(2026, 12, 31))
    assert not cals["FE"].is_working_day(D(2026, 12, 31))


@pytest.mark.parametrize(
    ("office", "start", "n", "expected"),
    [
        # Easter: Thursday 2 April 2026 + 2 = Tuesday 7 (Friday 3, weekend, Easter Monday 6).
        ("FE", D(2026, 4, 2), 2, D(2026, 4, 7)),
        # San Giorgio: Wednesday 22 April 2026 + 1 = Friday 24 in Ferrara, Thursday 23 in Bologna.
        ("FE", D(2026, 4, 22), 1, D(2026, 4, 24)),
        ("ER", D(2026, 4, 22), 1, D(2026, 4, 23)),
        # A bridge across the weekend: Friday 24 April 2026 + 1 = Monday 27 (25 April is a Saturday).
        ("FE", D(2026, 4, 24), 1, D(2026, 4, 27)),
        # 2 June 2026 (Tuesday): Monday 1 + 1 = Wednesday 3.
        ("FE", D(2026, 6, 1), 1, D(2026, 6, 3)),
        # Ferragosto 2025 (Friday): Thursday 14 August + 1 = Monday 18.
        ("FE", D(2025, 8, 14), 1, D(2025, 8, 18)),
        # Immacolata 2026 (Tuesday): Monday 7 December + 1 = Wednesday 9.
        ("FE", D(2026, 12, 7), 1, D(2026, 12, 9)),
        # Christmas with the FE closure of the 24th: Wednesday 23 + 1 = Monday 28 (24, 25, 26, 27 off).
        ("FE", D(2026, 12, 23), 1, D(2026, 12, 28)),
        ("ER", D(2026, 12, 23), 1, D(2026, 12, 24)),
        # Year end: 31 December closure, 1 January, weekend, 6 January.
        ("FE", D(2026, 12, 30), 1, D(2027, 1, 4)),
        ("FE", D(2027, 1, 5), 1, D(2027, 1, 7)),
        # Backwards over Easter: Tuesday 7 April 2026 - 2 = Thursday 2.
        ("FE", D(2026, 4, 7), -2, D(2026, 4, 2)),
        # From a holiday: Easter Monday + 1 = Tuesday 7; Saturday 25 April - 1 = Friday 24.
        ("FE", D(2026, 4, 6), 1, D(2026, 4, 7)),
        ("FE", D(2026, 4, 25), -1, D(2026, 4, 24)),
    ],
)
def test_adding_working_days_over_holidays_and_bridges(
    cals: dict[str, WorkingCalendar], office: str, start: dt.date, n: int, expected: dt.date
) -> None:
    cal = cals[office]
    assert cal.add_working_day_count(start, n) == expected
    assert cal.count_working_days(start, expected) == n


def test_counting_working_days(fe: WorkingCalendar) -> None:
    # November 2026: 21 weekdays, no holidays (1 November is a Sunday).
    assert fe.count_working_days(D(2026, 10, 31), D(2026, 11, 30)) == 21
    # December 2026 in Ferrara: 23 weekdays minus 8, 24 (closure), 25, 31 (closure).
    assert fe.count_working_days(D(2026, 11, 30), D(2026, 12, 31)) == 19
    # Backwards the interval is [b, a): 1 to 30 December.
    assert fe.count_working_days(D(2026, 12, 31), D(2026, 12, 1)) == -19
    assert fe.count_working_days(D(2026, 4, 1), D(2026, 4, 1)) == 0
    assert list(fe.working_days_in(D(2026, 4, 2), D(2026, 4, 8))) == [
        D(2026, 4, 2),
        D(2026, 4, 3),
        D(2026, 4, 7),
        D(2026, 4, 8),
    ]


def test_cut_off_hour_and_non_working_days_move_the_receipt(fe: WorkingCalendar) -> None:
    assert fe.receipt_day(at(2026, 11, 16, 13, 59)) == D(2026, 11, 16)
    assert fe.receipt_day(at(2026, 11, 16, 14, 0)) == D(2026, 11, 17)
    assert fe.receipt_day(at(2026, 11, 21, 9)) == D(2026, 11, 23)  # Saturday -> Monday
    assert fe.receipt_day(at(2026, 4, 22, 16)) == D(2026, 4, 24)  # after the cut-off before San Giorgio
    assert fe.receipt_day(at(2026, 4, 24, 15)) == D(2026, 4, 27)  # Friday afternoon, 25 April on Saturday
    # The instant is read in Rome's time, whatever zone it is given in.
    assert fe.receipt_day(dt.datetime(2026, 11, 16, 12, 59, tzinfo=dt.UTC)) == D(2026, 11, 16)
    assert fe.receipt_day(dt.datetime(2026, 11, 16, 13, 0, tzinfo=dt.UTC)) == D(2026, 11, 17)
    with pytest.raises(ValueError, match="fuso"):
        fe.receipt_day(dt.datetime(2026, 11, 16, 10, 0))


def test_deadlines_of_ten_working_days(fe: WorkingCalendar) -> None:
    # Monday 16 November 2026, before the cut-off: the 10th working day after is Monday 30.
    assert fe.deadline(at(2026, 11, 16, 10), 10) == dt.datetime(2026, 11, 30, 23, 59, 59, tzinfo=ROME)
    # After the cut-off it counts from Tuesday 17: Tuesday 1 December.
    assert fe.deadline_day(at(2026, 11, 16, 15), 10) == D(2026, 12, 1)
    # Over Christmas in Ferrara: received Wednesday 23 December after 14:00 -> Monday 28; ten working
    # days skip 31 (closure), 1 and 6 January: Thursday 14 January 2027.
    assert fe.deadline_day(at(2026, 12, 23, 15), 10) == D(2027, 1, 14)


def test_opening_hour_follows_daylight_saving(fe: WorkingCalendar) -> None:
    assert fe.opening(D(2026, 3, 27)).astimezone(dt.UTC).hour == 7  # CET
    assert fe.opening(D(2026, 3, 30)).astimezone(dt.UTC).hour == 6  # CEST
    assert fe.add_working_days(at(2026, 3, 27, 9), 1) == at(2026, 3, 30, 9)


def test_invalid_calendar_settings_are_reported_in_italian_with_file_line_and_key(tmp_path: Path) -> None:
    # Any file name: the lines are those of the file given, not of a config.yaml beside it.
    path = tmp_path / "produzione.yaml"
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    text = text.replace("cutoff_hour: 14", "cutoff_hour: 30")
    text = text.replace("timezone: Europe/Rome", "timezone: Europe/Atlantide\n  orario: 3")
    text = text.replace("      uffici: [FE]\n", "      uffici: [XX]\n")
    path.write_text(text, encoding="utf-8")

    def line(marker: str) -> int:
        return next(i for i, row in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if marker in row)

    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    problems = str(info.value)
    assert f"{path}:{line('cutoff_hour: 30')}: calendar.cutoff_hour: valore troppo grande" in problems
    assert (
        f"{path}:{line('Europe/Atlantide')}: calendar.timezone: fuso orario sconosciuto: Europe/Atlantide" in problems
    )
    assert f"{path}:{line('orario: 3')}: calendar.orario: chiave sconosciuta" in problems

    # Offices are checked against the offices of the same file.
    path.write_text(
        (ROOT / "config.yaml").read_text(encoding="utf-8").replace("      uffici: [FE]\n", "      uffici: [XX]\n"),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert f"{path}:{line('uffici: [XX]')}: calendar.closures[0].uffici: ufficio sconosciuto: XX" in str(info.value)


# -- properties ---------------------------------------------------------------------------------

_FE = WorkingCalendar(subdiv="FE", closures=frozenset({D(2026, 12, 24), D(2026, 12, 31)}))
_days = st.dates(min_value=D(2020, 1, 1), max_value=D(2035, 12, 31))


@settings(max_examples=300, deadline=None)
@given(_days, st.integers(min_value=-80, max_value=80))
def test_adding_then_counting_round_trips(day: dt.date, n: int) -> None:
    moved = _FE.add_working_day_count(day, n)
    assert _FE.count_working_days(day, moved) == n
    if n != 0:
        assert _FE.is_working_day(moved)


@settings(max_examples=300, deadline=None)
@given(_days, _days)
def test_counting_then_adding_round_trips_to_a_working_day(a: dt.date, b: dt.date) -> None:
    n = _FE.count_working_days(a, b)
    if _FE.is_working_day(b):
        assert _FE.add_working_day_count(a, n) == b
    if _FE.is_working_day(a) and _FE.is_working_day(b):
        assert _FE.count_working_days(b, a) == -n
    if b >= a:
        assert n == sum(1 for _ in _FE.working_days_in(a + dt.timedelta(days=1), b))


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 12, 31), timezones=st.just(dt.UTC)),
    st.integers(min_value=1, max_value=30),
)
def test_a_deadline_is_the_end_of_a_working_day_n_days_after_the_receipt(received: dt.datetime, n: int) -> None:
    receipt = _FE.receipt_day(received)
    assert _FE.is_working_day(receipt) and receipt >= _FE.local_date(received)
    end = _FE.deadline(received, n)
    assert _FE.is_working_day(end.date()) and end.time() == dt.time(23, 59, 59)
    assert _FE.count_working_days(receipt, end.date()) == n
