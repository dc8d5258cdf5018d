"""Money in minor units and settings from the environment."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from kindly.errors import ConfigError
from kindly.infra.config import load_settings
from kindly.money import MoneyError, format_minor, from_minor, parse_amount, to_minor


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [("1234.56", "EUR", 123456), ("1200", "JPY", 1200), ("0.005", "BHD", 5), ("10", "EUR", 1000)],
)
def test_amounts_become_exact_minor_units(text, currency, minor):
    assert to_minor(parse_amount(text, currency), currency) == minor


def test_minor_units_round_trip_with_the_currency_places():
    assert from_minor(123456, "EUR") == Decimal("1234.56")
    assert from_minor(1200, "JPY") == Decimal("1200")


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("de-DE", "1.234,56\xa0€"), ("en-GB", "€1,234.56"), ("it-IT", "1.234,56\xa0€")],
)
def test_amounts_are_formatted_for_the_locale(locale, expected):
    assert format_minor(123456, "EUR", locale) == expected


def test_comma_decimal_gets_a_specific_message():
    with pytest.raises(MoneyError, match=re.escape("write amounts with '.'")):
        parse_amount("1.234,56", "EUR")


def test_defaults_are_embedded(tmp_path):
    settings = load_settings({"KINDLY_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'kindly.db'}"
    assert settings.storage_url == (tmp_path / "storage").as_uri()
    assert settings.jobs_in_process and settings.payments_sandbox
    assert settings.base_url == "http://127.0.0.1:5000"
    # the generated secret is kept, so sessions survive restarts
    again = load_settings({"KINDLY_DATA_DIR": str(tmp_path)})
    assert again.secret_key == settings.secret_key and len(settings.secret_key) >= 32


def test_bare_postgresql_url_uses_psycopg3(tmp_path):
    settings = load_settings(
        {"KINDLY_DATA_DIR": str(tmp_path), "KINDLY_DATABASE_URL": "postgresql://u@h/db"}
    )
    assert settings.database_url == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("KINDLY_DATABASE_URL", "mysql://x", "must start with sqlite"),
        ("KINDLY_STORAGE_URL", "ftp://x", "file:// folder or s3://"),
        ("KINDLY_BASE_URL", "example.org", "http(s) origin"),
        ("KINDLY_SECRET_KEY", "short", "at least 16"),
        ("KINDLY_FAST_LANE", "maybe", "KINDLY_FAST_LANE must be on or off, got 'maybe'"),
    ],
)
def test_bad_settings_are_refused_with_the_variable_named(tmp_path, name, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings({"KINDLY_DATA_DIR": str(tmp_path), name: value})


@pytest.mark.parametrize(("value", "expected"), [("", True), ("on", True), ("OFF", False)])
def test_the_fast_lane_can_be_switched_off(tmp_path, value, expected):
    from web import create_app

    settings = load_settings({"KINDLY_DATA_DIR": str(tmp_path), "KINDLY_FAST_LANE": value})
    assert settings.fast_lane is expected
    assert create_app(settings).config["KINDLY_FAST_LANE"] is expected


@pytest.mark.parametrize("text", ["1E+999999999", "1e15", "1000000000000000.00"])
def test_amounts_too_large_to_store_are_refused(text):
    # "1E+999999999" overflowed Decimal.scaleb in the importer (found by hypothesis)
    with pytest.raises(MoneyError, match="too large"):
        parse_amount(text, "EUR")
    assert to_minor(parse_amount("999999999999999.99", "EUR"), "EUR") == 99999999999999999
