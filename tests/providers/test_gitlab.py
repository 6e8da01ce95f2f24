"""GitLab (plugins/gitlab, keyturn-gitlab): the spec, its deployment setting, the expiry it
derives when ``expires_in`` is absent, and keyturn's conformance suite on cassettes/gitlab/.

The cassette replays, four ways each, are in test_gitlab_cassettes.py.
"""

from __future__ import annotations

import logging

import pytest

import keyturn
from keyturn import ConfigurationError
from keyturn_gitlab import CREATED_AT_TOLERANCE, DEFAULT_LIFETIME, GITLAB, derived_expiry
from pytest_keyturn import ProviderConformance
from pytest_keyturn.cassettes import make_vcr
from tests.conftest import CASSETTES, START

GITLAB_CASSETTES = CASSETTES / "gitlab"
VCR = make_vcr(GITLAB_CASSETTES)
#: The client id the cassettes were written for.
GITLAB_CLIENT_ID = "example-gitlab-application-id"
NOW = float(START)


class TestGitLabConformance(ProviderConformance):
    provider = "gitlab"
    cassettes = GITLAB_CASSETTES


# -- the spec and its instance ------------------------------------------------------------


def test_the_spec_rotates_and_authenticates_in_the_form() -> None:
    assert GITLAB.rotation == "rotate"
    assert GITLAB.rotates_refresh_tokens is True
    assert (GITLAB.client_auth, GITLAB.pkce_method) == ("client_secret_post", "S256")
    assert GITLAB.discovery_url is None  # typed endpoints: no request for the document


def test_gitlab_com_is_the_default_instance() -> None:
    with keyturn.Keyturn(environ={}) as kt:
        spec = kt.provider("gitlab")
    assert spec.authorization_endpoint == "https://gitlab.com/oauth/authorize"
    assert spec.token_endpoint == "https://gitlab.com/oauth/token"
    assert spec.userinfo_endpoint == "https://gitlab.com/oauth/userinfo"
    assert spec.revocation_endpoint == "https://gitlab.com/oauth/revoke"
    assert spec.issuer == "https://gitlab.com"
    # GitLab.com's discovery document (cassettes/gitlab/discovery.yaml): ID tokens are verified.
    assert spec.jwks_uri == "https://gitlab.com/oauth/discovery/keys"
    assert spec.id_token_signing_algs == frozenset({"RS256"})


@pytest.mark.parametrize(
    ("options", "base"),
    [
        (
            {"settings": {"gitlab": {"base_url": "https://gitlab.example.com/"}}, "environ": {}},
            "https://gitlab.example.com",
        ),
        (
            {"environ": {"KEYTURN_GITLAB_BASE_URL": "https://code.example.org/gitlab"}},
            "https://code.example.org/gitlab",
        ),
    ],
    ids=["in-code", "environment"],
)
def test_a_self_managed_instance_moves_every_endpoint_and_the_issuer(
    options: dict[str, object], base: str
) -> None:
    with keyturn.Keyturn(**options) as kt:  # type: ignore[arg-type]
        spec = kt.provider("gitlab")
    assert spec.authorization_endpoint == f"{base}/oauth/authorize"
    assert spec.token_endpoint == f"{base}/oauth/token"
    assert spec.userinfo_endpoint == f"{base}/oauth/userinfo"
    assert spec.revocation_endpoint == f"{base}/oauth/revoke"
    assert spec.issuer == base
    assert spec.jwks_uri == f"{base}/oauth/discovery/keys"
    assert spec.rotation == "rotate"


@pytest.mark.parametrize(
    "value",
    [
        "http://gitlab.example.com",  # plain http off loopback
        "https://gitlab.example.com/?next=evil",
        "https://gitlab.example.com/#x",
        "gitlab.example.com",
    ],
)
def test_a_bad_base_url_is_a_configuration_error_that_does_not_quote_it(value: str) -> None:
    with (
        keyturn.Keyturn(settings={"gitlab": {"base_url": value}}, environ={}) as kt,
        pytest.raises(ConfigurationError) as caught,
    ):
        kt.provider("gitlab")
    assert "base_url" in str(caught.value)
    assert value not in str(caught.value)


# -- the expiry when expires_in is absent ---------------------------------------------------


@pytest.mark.parametrize(
    ("created_at", "expires_at"),
    [
        (NOW, NOW + DEFAULT_LIFETIME),
        (NOW - 10, NOW - 10 + DEFAULT_LIFETIME),  # a little older: expires that much sooner
        (str(int(NOW) - 10), NOW - 10 + DEFAULT_LIFETIME),  # a numeric string
        (NOW - CREATED_AT_TOLERANCE, NOW - CREATED_AT_TOLERANCE + DEFAULT_LIFETIME),
        # Far past: never expired at once, at most the tolerance older.
        (NOW - 86400, NOW - CREATED_AT_TOLERANCE + DEFAULT_LIFETIME),
        (0, NOW - CREATED_AT_TOLERANCE + DEFAULT_LIFETIME),
        (-1e300, NOW - CREATED_AT_TOLERANCE + DEFAULT_LIFETIME),
        # Future: never valid for longer than the lifetime from now.
        (NOW + 86400, NOW + DEFAULT_LIFETIME),
        (1e300, NOW + DEFAULT_LIFETIME),
        # Absent or unreadable: issued now.
        (None, NOW + DEFAULT_LIFETIME),
        ("yesterday", NOW + DEFAULT_LIFETIME),
        ("", NOW + DEFAULT_LIFETIME),
        (True, NOW + DEFAULT_LIFETIME),
        (float("nan"), NOW + DEFAULT_LIFETIME),
        (float("inf"), NOW + DEFAULT_LIFETIME),
        ("1e999", NOW + DEFAULT_LIFETIME),
        ([NOW], NOW + DEFAULT_LIFETIME),
        ({"at": NOW}, NOW + DEFAULT_LIFETIME),
    ],
)
def test_derived_expiry_trusts_created_at_only_within_reason(
    created_at: object, expires_at: float
) -> None:
    result = derived_expiry(created_at, NOW)
    assert isinstance(result, int)
    assert result == int(expires_at)
    assert NOW + DEFAULT_LIFETIME - CREATED_AT_TOLERANCE <= result <= NOW + DEFAULT_LIFETIME


def test_an_implausible_created_at_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="keyturn"):
        derived_expiry(NOW + 86400, NOW)
        derived_expiry(NOW - 86400, NOW)
        derived_expiry(NOW - 1, NOW)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "later" in messages[0] and "earlier" in messages[1]
