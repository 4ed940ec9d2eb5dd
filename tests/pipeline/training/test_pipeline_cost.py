"""Cost of a run: wall time x GPU_HOURLY_USD x USD-BRLT from a fake AwesomeAPI on loopback."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from pipeline.training.cost import cost_report, run_cost, usd_brl_quote
from pipeline.settings import Settings
from storage import repository
from storage.db import Database
from tests.fakes.awesomeapi_server import TIMESTAMP, FakeAwesomeAPI


def _settings(tmp_path, url, **extra) -> Settings:
    return Settings(DATA_DIR=tmp_path / "data", AWESOMEAPI_URL=url, AWESOMEAPI_TIMEOUT_S=2, **extra)


def test_live_quote_prices_the_run_and_is_cached(tmp_path):
    with FakeAwesomeAPI(rate=5.5) as fake:
        settings = _settings(tmp_path, fake.url, GPU_HOURLY_USD=2.0)
        cost = run_cost(settings, seconds=1800)
    assert fake.requests == ["/json/last/USD-BRLT"]
    assert cost.quote.source == "live" and cost.quote.rate == pytest.approx(5.5)
    assert cost.quote.at == datetime.fromtimestamp(TIMESTAMP, tz=timezone.utc)
    assert cost.usd == pytest.approx(1.0) and cost.brl == pytest.approx(5.5)
    assert (settings.data_dir / "cache" / "usd_brlt.json").is_file()


@pytest.mark.parametrize("mode", ["down", "malformed", "absurd", "future"])
def test_a_broken_api_falls_back_to_the_last_known_quote_and_says_so(tmp_path, mode):
    with FakeAwesomeAPI(rate=5.25) as fake:
        settings = _settings(tmp_path, fake.url, GPU_HOURLY_USD=1.0)
        assert usd_brl_quote(settings).source == "live"
        fake.mode = mode
        cost = run_cost(settings, seconds=3600)
    assert len(fake.requests) == 2
    assert cost.quote.source == "cache" and "unavailable" in cost.quote.note
    assert cost.quote.rate == pytest.approx(5.25) and cost.brl == pytest.approx(5.25)


@pytest.mark.parametrize("mode", ["down", "malformed", "absurd", "future"])
def test_without_a_cache_the_configured_fallback_is_used(tmp_path, mode):
    with FakeAwesomeAPI(mode=mode) as fake:
        quote = usd_brl_quote(_settings(tmp_path, fake.url, USD_BRL_FALLBACK=6.0))
        bare = usd_brl_quote(_settings(tmp_path / "other", fake.url))
    assert quote.source == "fallback" and quote.rate == 6.0 and "USD_BRL_FALLBACK" in quote.note
    assert bare is None  # nothing known: the cost in reais stays unknown rather than invented


def test_nothing_listens_counts_as_down(tmp_path):
    with FakeAwesomeAPI() as fake:
        url = fake.url
    quote = usd_brl_quote(_settings(tmp_path, url, USD_BRL_FALLBACK=5.0))
    assert quote.source == "fallback"


def test_a_free_machine_costs_nothing_without_asking_the_api(tmp_path):
    with FakeAwesomeAPI() as fake:
        cost = run_cost(_settings(tmp_path, fake.url), seconds=7200)
    assert fake.requests == [] and cost.brl == 0.0 and cost.quote is None


def test_report_has_the_last_run_and_the_month_total(tmp_path):
    settings = _settings(tmp_path, "http://127.0.0.1:9/none", TIMEZONE="UTC")
    database = Database(settings.database_url)
    database.upgrade()
    with database.session() as session:
        for started, brl in ((datetime(2026, 10, 31, 12, tzinfo=timezone.utc), 100.0),
                             (datetime(2026, 11, 2, 3, tzinfo=timezone.utc), 10.0),
                             (datetime(2026, 11, 20, 3, tzinfo=timezone.utc), 2.5)):
            run = repository.create_training_run(session, base_model="embedded", started_at=started)
            repository.finish_training_run(session, run_id=run.id, status="succeeded", cost_usd=brl / 5,
                                           cost_brl=brl, usd_brl=5.0, metrics={"quote_source": "live"})
    database.dispose()
    report = cost_report(settings, now=datetime(2026, 11, 25, tzinfo=timezone.utc))
    assert report["month"] == "2026-11" and report["month_runs"] == 2
    assert report["month_brl"] == pytest.approx(12.5) and report["month_usd"] == pytest.approx(2.5)
    assert report["last"]["cost_brl"] == pytest.approx(2.5) and report["last"]["quote_source"] == "live"


def test_cli_cost_prints_the_last_run_and_the_month(tmp_path, monkeypatch, capsys):
    from bot.cli import main as cli_main
    from pipeline.settings import get_settings

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    assert cli_main(["cost"]) == 0
    assert "no training run yet" in capsys.readouterr().out
    database = Database(get_settings().database_url)
    database.upgrade()
    with database.session() as session:
        run = repository.create_training_run(session, base_model="embedded")
        repository.finish_training_run(session, run_id=run.id, status="succeeded", cost_usd=0.5, cost_brl=2.75,
                                       usd_brl=5.5, metrics={"quote_source": "cache", "quote_note": "API fora"})
    database.dispose()
    assert cli_main(["cost", "--json"]) == 0
    out = capsys.readouterr().out
    assert "R$ 2.75" in out and "(cache): API fora" in out
    assert json.loads(out.strip().splitlines()[-1])["month_brl"] == pytest.approx(2.75)


def test_a_quote_stamped_in_the_future_is_never_live(tmp_path):
    with FakeAwesomeAPI(rate=5.5, mode="future") as fake:
        settings = _settings(tmp_path, fake.url, GPU_HOURLY_USD=1.0)
        assert usd_brl_quote(settings) is None  # refused, and nothing known to fall back on
    cache = settings.data_dir / "cache" / "usd_brlt.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"rate": 5.0, "at": "2100-01-01T00:00:00+00:00"}), encoding="utf-8")
    with FakeAwesomeAPI(mode="down") as fake:
        assert usd_brl_quote(_settings(tmp_path, fake.url, USD_BRL_FALLBACK=6.0)).source == "fallback"


def _runs(settings, *specs):
    database = Database(settings.database_url)
    database.upgrade()
    ids = []
    with database.session() as session:
        for started, usd, brl in specs:
            run = repository.create_training_run(session, base_model="embedded", started_at=started)
            repository.finish_training_run(session, run_id=run.id, status="succeeded", cost_usd=usd, cost_brl=brl,
                                           usd_brl=None if brl is None else brl / usd)
            ids.append(run.id)
    database.dispose()
    return ids


def test_the_month_total_says_which_runs_lack_a_rate(tmp_path, monkeypatch, capsys):
    from bot.cli import main as cli_main
    from pipeline.settings import get_settings

    settings = _settings(tmp_path, "http://127.0.0.1:9/none", TIMEZONE="UTC")
    now = datetime.now(timezone.utc)
    priced, unpriced = _runs(settings, (now, 1.0, 5.0), (now, 2.0, None))
    report = cost_report(settings)
    assert report["month_brl"] == pytest.approx(5.0) and report["month_usd"] == pytest.approx(3.0)
    assert report["month_runs_without_rate"] == [unpriced]
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TIMEZONE", "UTC")
    get_settings.cache_clear()
    assert cli_main(["cost"]) == 0
    assert f"only the runs with a USD->BRL rate; without one: {unpriced}" in capsys.readouterr().out
