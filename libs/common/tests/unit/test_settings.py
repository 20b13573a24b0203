import msgspec
import pytest

from till_auth.settings import AuthSettings
from till_common.errors import ConfigError
from till_common.settings import CATALOGUE, env_name, load_settings
from till_gateway.settings import GatewaySettings
from till_tools.settings import ToolsSettings

GOOD = {"TILL_INTERNAL_TOKEN": "i" * 32}


def test_defaults_follow_spec() -> None:
    s = load_settings(GatewaySettings, GOOD)
    assert s.public_url == "http://127.0.0.1:8000"
    assert s.redis_url is None
    assert s.rate_limit_per_minute == 600
    assert s.origins == {"http://127.0.0.1:8000", "https://claude.ai", "https://claude.com"}


def test_values_are_converted_from_strings() -> None:
    s = load_settings(GatewaySettings, {**GOOD, "TILL_RATE_LIMIT_PER_MINUTE": "42",
                                        "TILL_ALLOWED_ORIGINS": "https://a.example, https://b.example"})
    assert s.rate_limit_per_minute == 42
    assert s.allowed_origins == ("https://a.example", "https://b.example")


def test_bad_value_names_the_variable_in_one_line() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(GatewaySettings, {**GOOD, "TILL_RATE_LIMIT_PER_MINUTE": "abc"})
    assert e.value.description.startswith("TILL_RATE_LIMIT_PER_MINUTE='abc' is invalid")
    assert "\n" not in e.value.description


def test_missing_required_setting_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^TILL_INTERNAL_TOKEN is required but not set$"):
        load_settings(ToolsSettings, {})


def test_unknown_till_variable_is_reported() -> None:
    with pytest.raises(ConfigError, match="unknown setting TILL_PUBLC_URL"):
        load_settings(ToolsSettings, {**GOOD, "TILL_PUBLC_URL": "http://x"})


def test_public_url_with_trailing_slash_is_refused() -> None:
    with pytest.raises(ConfigError, match="TILL_PUBLIC_URL"):
        load_settings(ToolsSettings, {**GOOD, "TILL_PUBLIC_URL": "https://till.example/"})


def test_short_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="TILL_INTERNAL_TOKEN must be at least 32"):
        load_settings(ToolsSettings, {"TILL_INTERNAL_TOKEN": "short"})


@pytest.mark.parametrize("cls", [AuthSettings, GatewaySettings, ToolsSettings])
def test_every_setting_a_service_reads_is_in_the_catalogue(cls: type[msgspec.Struct]) -> None:
    for f in msgspec.structs.fields(cls):
        assert env_name(f.name) in CATALOGUE, f"{env_name(f.name)} missing from CATALOGUE"
