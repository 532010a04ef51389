from pathlib import Path

import pytest

from common.resolutions import Resolution
from common.settings import DEFAULT_SYMBOLS, Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.symbols == DEFAULT_SYMBOLS
    assert settings.source.kind == "synthetic"
    assert settings.fetch_interval == 1.0
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.window_minutes == 7 * 24 * 60


def test_values_are_read_and_cast() -> None:
    settings = Settings.from_env(
        {
            "RTPLOT_SYMBOLS": "aapl, ril.ns,,AAPL",
            "RTPLOT_FETCH_INTERVAL": "2.5",
            "RTPLOT_PORT": "9000",
            "RTPLOT_LOG_JSON": "1",
            "RTPLOT_KEY_PREFIX": "demo:",
        }
    )
    assert settings.symbols == ("AAPL", "RIL.NS")
    assert settings.fetch_interval == 2.5
    assert settings.port == 9000
    assert settings.log_json is True
    assert settings.key_prefix == "demo:"


def test_yfinance_defaults_to_a_polite_interval() -> None:
    assert Settings.from_env({"RTPLOT_SOURCE": "yfinance"}).fetch_interval == 60.0


def test_csv_source_needs_an_existing_file(tmp_path: Path) -> None:
    bars = tmp_path / "bars.csv"
    bars.write_text("time,open,high,low,close,volume\n")
    assert Settings.from_env({"RTPLOT_SOURCE": f"csv:{bars}"}).source.path == bars
    with pytest.raises(SettingsError, match=r"RTPLOT_SOURCE.*no such file"):
        Settings.from_env({"RTPLOT_SOURCE": f"csv:{tmp_path / 'missing.csv'}"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RTPLOT_REDIS_URL", "http://localhost"),
        ("RTPLOT_SYMBOLS", "AAPL,not a symbol"),
        ("RTPLOT_SOURCE", "bloomberg"),
        ("RTPLOT_FETCH_INTERVAL", "0"),
        ("RTPLOT_FETCH_INTERVAL", "soon"),
        ("RTPLOT_PORT", "70000"),
        ("RTPLOT_PORT", "eighty"),
        ("RTPLOT_WINDOW_MINUTES", "-5"),
        ("RTPLOT_MAX_SYMBOLS", "1.5"),
        ("RTPLOT_LOG_JSON", "maybe"),
        ("RTPLOT_LOG_LEVEL", "LOUD"),
        ("RTPLOT_HOST", " "),
        ("RTPLOT_STREAM", "bloomberg"),
        ("RTPLOT_STREAM_URL", "https://streamer.finance.yahoo.com/"),
        ("RTPLOT_STREAM_WRITE_EVERY", "0"),
        ("RTPLOT_HISTORY_DAYS", "1w=10"),
        ("RTPLOT_HISTORY_DAYS", "1d=a year"),
        ("RTPLOT_HISTORY_REFRESH", "0"),
        ("RTPLOT_VIEW_BARS", "10"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({name: value})
    assert str(error.value).startswith(f"{name}=")


def test_history_depths_are_read_per_resolution_and_can_be_turned_off() -> None:
    assert Settings.from_env({}).history_days == (
        (Resolution.M5, 60),
        (Resolution.H1, 730),
        (Resolution.D1, 7300),
    )
    given = Settings.from_env({"RTPLOT_HISTORY_DAYS": " 1d=3650, 5m=30,1h=0"})
    assert given.history_days == ((Resolution.M5, 30), (Resolution.D1, 3650))  # 0: none
    assert Settings.from_env({"RTPLOT_HISTORY_DAYS": "off"}).history_days == ()
    assert Settings.from_env({"RTPLOT_VIEW_BARS": "50"}).view_bars == 50


def test_more_configured_symbols_than_the_cap_is_refused() -> None:
    with pytest.raises(SettingsError, match="RTPLOT_MAX_SYMBOLS"):
        Settings.from_env({"RTPLOT_SYMBOLS": "A,B,C", "RTPLOT_MAX_SYMBOLS": "2"})


def test_a_shared_token_and_a_jwt_key_together_are_refused() -> None:
    secret = "s" * 40
    with pytest.raises(SettingsError, match="choose one") as error:
        Settings.from_env({"RTPLOT_AUTH_TOKEN": "t0ken-xyz", "RTPLOT_JWT_KEY": secret})
    assert secret not in str(error.value) and "t0ken-xyz" not in str(error.value)
    assert Settings.from_env({"RTPLOT_JWT_KEY": secret}).jwt_key == secret


def test_each_celery_process_makes_its_app_from_the_settings_it_was_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fetcher.celery_app
    from fetcher.celery_app import FETCH_TASK, make_app
    from fetcher.sources import make_source
    from fetcher.tasks import fetch_task

    # What the environment says is read by rtplot.cli, once, and by nothing else.
    monkeypatch.setenv("RTPLOT_FETCH_INTERVAL", "99")
    monkeypatch.setenv("RTPLOT_MARKET_HOURS", "always")
    assert not hasattr(fetcher.celery_app, "app")  # nothing is made at import
    settings = Settings.from_env({"RTPLOT_FETCH_INTERVAL": "7", "RTPLOT_MARKET_HOURS": "exchange"})
    beat = make_app(settings)
    assert beat.conf.beat_schedule["fetch-bars"]["schedule"] == 7.0
    assert FETCH_TASK not in beat.tasks  # the beat sends it by name
    worker = make_app(settings, fetch_task(settings))
    assert FETCH_TASK in worker.tasks
    assert make_source(settings.source, settings.market_hours).market_hours == "exchange"  # type: ignore[attr-defined]


def test_the_stream_is_off_by_default_and_rides_on_the_yfinance_poll() -> None:
    assert Settings.from_env({}).stream is None
    on = Settings.from_env({"RTPLOT_SOURCE": "yfinance", "RTPLOT_STREAM": "yahoo"})
    assert (on.stream, on.stream_url) == ("yahoo", "wss://streamer.finance.yahoo.com/?version=2")
    assert on.stream_write_every == 0.2
    # Renders come with the stream's writes: a page away 5 minutes still resumes.
    assert on.resume_length == 300 / 0.2 and Settings.from_env({}).resume_length == 300
    with pytest.raises(SettingsError, match=r"^RTPLOT_STREAM=yahoo .*RTPLOT_SOURCE=yfinance"):
        Settings.from_env({"RTPLOT_STREAM": "yahoo"})  # on the synthetic market
