"""GET /v1/leaderboard: credits earned this week (from Monday) or month, in China Standard Time,
against a board computed here from the claims made; on Redis, a lost board is rebuilt identical."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.credits.leaderboard import Leaderboard
from tests.api.credit_flow import CreditFlow
from tests.api.test_credit_trips import CHINA, Clock, at, grams, in_db

# A Wednesday (4 November 2026, noon in Beijing): the week began on Monday 2 November, 00:00 in
# Beijing, which is Sunday 1 November 16:00 UTC; the month on 1 November 00:00 Beijing, 31 October
# 16:00 UTC.
NOW = datetime(2026, 11, 4, 4, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Credit:
    sub: str
    grams: int
    at: datetime


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """The oracle's own calendar: Monday-to-Monday or the calendar month, in Beijing."""
    day = now.astimezone(CHINA).date()
    if period == "week":
        first = day - timedelta(days=day.weekday())
        following = first + timedelta(days=7)
    else:
        first = date(day.year, day.month, 1)
        following = date(day.year + day.month // 12, day.month % 12 + 1, 1)

    def midnight(d: date) -> datetime:
        return datetime.combine(d, time(0), tzinfo=CHINA).astimezone(UTC)

    return midnight(first), midnight(following)


def expected_board(credits: list[Credit], period: str, now: datetime, erased: set[str] = frozenset()
                   ) -> list[tuple[str, int]]:
    start, end = period_bounds(period, now)
    totals: dict[str, int] = {}
    for c in credits:
        if start <= c.at < end and c.grams > 0 and c.sub not in erased:
            totals[c.sub] = totals.get(c.sub, 0) + c.grams
    board = sorted(totals.items(), key=lambda kv: -kv[1])
    assert len({g for _, g in board}) == len(board), "the scenario avoids ties"
    return board


class Scenario:
    def __init__(self, flow: CreditFlow, clock: Clock) -> None:
        self.flow, self.clock = flow, clock
        self.credits: list[Credit] = []

    def earn(self, sub: str, mode: str, km: str, when: datetime, expected: int | None = None) -> int:
        self.clock.set(when)
        out = self.flow.ok(self.flow.trip(self.flow.consumer(sub), at(when - timedelta(hours=3), mode, km)), 201)
        assert out["credited_g"] == (grams(mode, km) if expected is None else expected)
        self.credits.append(Credit(sub, out["credited_g"], when))
        self.clock.set(NOW)
        return out["credited_g"]

    def board(self, sub: str, period: str) -> dict[str, Any]:
        response = self.flow.client.get("/v1/leaderboard", params={"period": period},
                                        headers=self.flow.consumer(sub))
        return self.flow.ok(response)

    def check(self, period: str, subs: list[str], erased: set[str] = frozenset(), size: int | None = None) -> None:
        """Every sub's view of the board equals the oracle's."""
        expected = expected_board(self.credits, period, self.clock.at, erased)
        size = size or self.flow.client.app.state.leaderboard.size
        start, _ = period_bounds(period, self.clock.at)
        for sub in subs:
            out = self.board(sub, period)
            assert out["period"] == period
            assert datetime.fromisoformat(out["starts_at"]) == start
            assert [(i["rank"], i["credited_g"]) for i in out["items"]] == [
                (rank, g) for rank, (_, g) in enumerate(expected[:size], start=1)], (period, sub)
            names = [i["display_name"] for i in out["items"]]
            assert len(set(names)) == len(names) and not any(s in n for n in names for s in subs)
            mine = next(((rank, g) for rank, (who, g) in enumerate(expected, start=1) if who == sub), None)
            if mine is None:
                assert out["me"] is None, (period, sub, out["me"])
            else:
                assert (out["me"]["rank"], out["me"]["credited_g"]) == mine, (period, sub)
                if mine[0] <= size:
                    assert out["items"][mine[0] - 1]["credited_g"] == mine[1]


@pytest.fixture
def flow(client, auth) -> CreditFlow:
    return CreditFlow(client, auth)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, NOW)


EVERYONE = ["ann", "ben", "cat", "dan", "eve", "fay"]


@pytest.fixture
def scenario(flow: CreditFlow, clock: Clock) -> Scenario:
    s = Scenario(flow, clock)
    # Saturday 31 October 23:30 in Beijing: last month and last week.
    s.earn("ann", "bike", "19", datetime(2026, 10, 31, 15, 30, tzinfo=UTC))
    # Sunday 1 November 00:30 in Beijing (still 31 October in UTC): this month, last week.
    s.earn("ben", "bike", "17", datetime(2026, 10, 31, 16, 30, tzinfo=UTC))
    # Monday 2 November 00:30 in Beijing (still Sunday in UTC): this week.
    s.earn("cat", "walk", "6", datetime(2026, 11, 1, 16, 30, tzinfo=UTC))
    s.earn("dan", "bike", "11", datetime(2026, 11, 3, 4, 0, tzinfo=UTC))
    s.earn("ann", "walk", "2", datetime(2026, 11, 3, 5, 0, tzinfo=UTC))
    # Eve's metro ride was not attested: she has an account but earned nothing.
    s.earn("eve", "metro", "10", datetime(2026, 11, 3, 6, 0, tzinfo=UTC), expected=0)
    return s


def test_the_oracle_reads_the_calendar_in_beijing() -> None:
    assert period_bounds("week", NOW) == (datetime(2026, 11, 1, 16, tzinfo=UTC), datetime(2026, 11, 8, 16, tzinfo=UTC))
    assert period_bounds("month", NOW) == (datetime(2026, 10, 31, 16, tzinfo=UTC),
                                           datetime(2026, 11, 30, 16, tzinfo=UTC))
    assert period_bounds("month", datetime(2026, 12, 31, 17, tzinfo=UTC))[0] == datetime(2026, 12, 31, 16, tzinfo=UTC)


@pytest.mark.parametrize("period", ["week", "month"])
def test_the_board_ranks_what_was_earned_in_the_period(scenario, period) -> None:
    board = expected_board(scenario.credits, period, NOW)
    # The scenario means something: last month's credit and the CST edges count as they should.
    assert [s for s, _ in board] == (["dan", "cat", "ann"] if period == "week" else ["ben", "dan", "cat", "ann"])
    scenario.check(period, EVERYONE)


def test_week_is_the_default_period(scenario) -> None:
    out = scenario.flow.ok(scenario.flow.client.get("/v1/leaderboard", headers=scenario.flow.consumer("ann")))
    assert out["period"] == "week"
    assert [i["credited_g"] for i in out["items"]] == [g for _, g in expected_board(scenario.credits, "week", NOW)]


def test_last_weeks_board_is_last_weeks(scenario) -> None:
    # Sunday 1 November, 01:00 in Beijing: Saturday's and Sunday's credits are this week's; only
    # Sunday's is this month's.
    scenario.clock.set(datetime(2026, 10, 31, 17, 0, tzinfo=UTC))
    assert [s for s, _ in expected_board(scenario.credits, "week", scenario.clock.at)] == ["ann", "ben"]
    scenario.check("week", ["ann", "ben", "cat"])
    scenario.check("month", ["ann", "ben", "cat"])


def test_the_board_shows_the_top_n_and_me_below_it(flow, scenario, monkeypatch, settings) -> None:
    board = flow.client.app.state.leaderboard
    assert board.size == settings.leaderboard_size
    monkeypatch.setattr(board, "size", 2)
    scenario.check("month", EVERYONE, size=2)
    out = scenario.board("ann", "month")
    assert len(out["items"]) == 2 and out["me"]["rank"] == 4


def test_redeeming_does_not_lower_the_rank(flow, scenario) -> None:
    dan = flow.consumer("dan")
    flow.ok(flow.redeem(dan, flow.reward(400, 1)), 201)
    assert flow.wallet(dan)["balance_g"] < sum(c.grams for c in scenario.credits if c.sub == "dan")
    scenario.check("week", EVERYONE)
    scenario.check("month", EVERYONE)
    assert scenario.board("dan", "week")["me"]["rank"] == 1


def test_new_credits_move_the_board(scenario) -> None:
    scenario.check("week", EVERYONE)  # built (on Redis) before the next credits: those are added to it
    scenario.earn("fay", "bike", "23", NOW - timedelta(hours=1))
    scenario.earn("cat", "bike", "9", NOW - timedelta(minutes=30))
    assert [s for s, _ in expected_board(scenario.credits, "week", NOW)][:2] == ["fay", "cat"]
    scenario.check("week", EVERYONE)
    scenario.check("month", EVERYONE)


def test_an_erased_person_leaves_the_board(flow, scenario) -> None:
    scenario.check("week", EVERYONE)
    assert flow.client.delete("/v1/me", headers=flow.consumer("cat")).status_code == 204
    scenario.check("week", EVERYONE, erased={"cat"})
    scenario.check("month", EVERYONE, erased={"cat"})
    assert scenario.board("cat", "week")["me"] is None
    # She may start again, under a new pseudonym, with only what she earns from now on.
    scenario.earn("cat", "walk", "1", NOW - timedelta(minutes=10))
    after = [c for c in scenario.credits if c.sub != "cat" or c.at == NOW - timedelta(minutes=10)]
    scenario.credits[:] = after
    scenario.check("week", EVERYONE)


def test_only_consumers_see_the_board(flow, clock) -> None:
    assert flow.client.get("/v1/leaderboard", headers=flow.shop).status_code == 403
    assert flow.client.get("/v1/leaderboard").status_code == 401
    response = flow.client.get("/v1/leaderboard", params={"period": "year"}, headers=flow.consumer("ann"))
    assert response.status_code in (400, 422)


def _rebuild_and_read(flow: CreditFlow, sub_account: str | None, now: datetime) -> tuple[dict[str, int], Any]:
    settings = flow.client.app.state.settings

    async def job(session: AsyncSession) -> tuple[dict[str, int], Any]:
        board = Leaderboard(flow.client.app.state.stores, settings.leaderboard_size)
        counts = await board.rebuild(session, now)
        return counts, {p: await board.board(session, p, sub_account, now) for p in ("week", "month")}

    return in_db(flow, job)


def test_rebuilding_gives_the_same_board(flow, scenario) -> None:
    before = {p: scenario.board("ann", p) for p in ("week", "month")}
    ann = flow.ok(flow.client.get("/v1/me/export", headers=flow.consumer("ann")))["account"]["id"]
    counts, boards = _rebuild_and_read(flow, ann, NOW)
    assert counts == {p: len(expected_board(scenario.credits, p, NOW)) for p in ("week", "month")}
    for period in ("week", "month"):
        assert [(i.rank, i.display_name, i.credited_g) for i in boards[period].items] == [
            (i["rank"], i["display_name"], i["credited_g"]) for i in before[period]["items"]]
        assert (boards[period].me.rank, boards[period].me.credited_g) == (before[period]["me"]["rank"],
                                                                         before[period]["me"]["credited_g"])
        assert scenario.board("ann", period) == before[period]
    scenario.check("week", EVERYONE)


def _flush(settings) -> int:
    import redis

    client = redis.Redis.from_url(settings.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{settings.redis_namespace}:leaderboard:*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


@pytest.fixture
def on_redis(settings):
    if not settings.redis_url:
        pytest.skip("the board is kept in Redis only with CARBONPUHUI_TEST_REDIS_URL")
    return settings


def test_a_flushed_board_is_rebuilt_from_the_ledger_identical(flow, scenario, on_redis) -> None:
    before = {(sub, p): scenario.board(sub, p) for sub in EVERYONE for p in ("week", "month")}
    assert _flush(on_redis) >= 4, "both boards and their markers were in Redis"
    assert {(sub, p): scenario.board(sub, p) for sub in EVERYONE for p in ("week", "month")} == before
    # A credit while the board is gone is counted once: from the ledger, not also as a bump.
    assert _flush(on_redis) >= 4
    scenario.earn("eve", "bike", "3", NOW - timedelta(minutes=20))
    scenario.check("week", EVERYONE)
    scenario.check("month", EVERYONE)
    # And one after the rebuild, by the bump.
    scenario.earn("eve", "walk", "1", NOW - timedelta(minutes=5))
    scenario.check("week", EVERYONE)
    # The CLI's rebuild leaves it as it is.
    eve = flow.ok(flow.client.get("/v1/me/export", headers=flow.consumer("eve")))["account"]["id"]
    _rebuild_and_read(flow, eve, NOW)
    scenario.check("week", EVERYONE)
    scenario.check("month", EVERYONE)


def test_without_redis_the_board_is_the_ledgers(flow, scenario, settings) -> None:
    if settings.redis_url:
        pytest.skip("runs without Redis")
    assert flow.client.app.state.stores.redis is None
    scenario.check("week", EVERYONE)
    scenario.check("month", EVERYONE)
