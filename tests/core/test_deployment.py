"""Deployment settings: a spec written as a template, filled with the app's tenant or domain.

The convention (keyturn.deployment): ``settings={"<id>": {...}}`` in code, else
``KEYTURN_<ID>_<NAME>`` in the environment, else the setting's default; a missing value is a
ConfigurationError naming both ways to give it; values are checked by kind before they reach
a URL. Also the refresh-rotation kind, which a tenant setting may choose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

import keyturn
from keyturn import (
    ConfigurationError,
    DeploymentSetting,
    Keyturn,
    PluginError,
    ProviderSpec,
    UnknownProviderError,
)
from keyturn.flows import deploy
from keyturn.plugins import KeyturnPluginManager, get_plugin_manager

DOMAIN = DeploymentSetting(name="domain", kind="host", description="the tenant's domain")
SERVER = DeploymentSetting(
    name="server", kind="segment", description="the authorization server", default="default"
)
ROTATION = DeploymentSetting(
    name="rotation", kind="rotation", description="the tenant's choice", default="rotate"
)
GRACE = DeploymentSetting(
    name="refresh_reuse_grace", kind="seconds", description="the leeway", default="0"
)

TEMPLATE = ProviderSpec(
    id="tenanted",
    name="Tenanted",
    authorization_endpoint="https://{domain}/oauth2/{server}/v1/authorize",
    token_endpoint="https://{domain}/oauth2/{server}/v1/token",
    revocation_endpoint="https://{domain}/oauth2/{server}/v1/revoke",
    issuer="https://{domain}/oauth2/{server}",
    settings=(DOMAIN, SERVER, ROTATION, GRACE),
)


def client(
    settings: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    pm: KeyturnPluginManager | None = None,
    spec: ProviderSpec = TEMPLATE,
) -> Keyturn:
    return Keyturn(
        {"tenanted": ("cid", "secret")},
        providers=[spec],
        settings={"tenanted": settings} if settings is not None else {},
        environ=environ or {},
        plugin_manager=pm or get_plugin_manager(environ={}),
        http_client=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500))),
    )


def test_settings_in_code_fill_every_url() -> None:
    spec = client({"domain": "acme.okta.com"}).provider("tenanted")
    assert spec.authorization_endpoint == "https://acme.okta.com/oauth2/default/v1/authorize"
    assert spec.token_endpoint == "https://acme.okta.com/oauth2/default/v1/token"
    assert spec.revocation_endpoint == "https://acme.okta.com/oauth2/default/v1/revoke"
    assert spec.issuer == "https://acme.okta.com/oauth2/default"
    assert spec.deployment == {
        "domain": "acme.okta.com",
        "server": "default",
        "rotation": "rotate",
        "refresh_reuse_grace": "0",
    }
    assert not spec.needs_deployment
    assert TEMPLATE.needs_deployment


def test_the_environment_gives_what_code_does_not_and_code_wins() -> None:
    environ = {"KEYTURN_TENANTED_DOMAIN": "env.example.com", "KEYTURN_TENANTED_SERVER": "aus1"}
    spec = client(environ=environ).provider("tenanted")
    assert spec.token_endpoint == "https://env.example.com/oauth2/aus1/v1/token"
    spec = client({"domain": "code.example.com"}, environ=environ).provider("tenanted")
    assert spec.token_endpoint == "https://code.example.com/oauth2/aus1/v1/token"


def test_a_missing_setting_names_both_ways_to_give_it() -> None:
    kt = client()
    with pytest.raises(ConfigurationError) as caught:
        kt.authorize_url("tenanted", "http://127.0.0.1/cb")
    message = str(caught.value)
    assert "domain" in message
    assert "KEYTURN_TENANTED_DOMAIN" in message
    assert "settings={'tenanted': {'domain': ...}}" in message


@pytest.mark.parametrize(
    "value",
    [
        "evil.com/steal?x=",
        "evil.com#",
        "user@evil.com",
        "https://acme.okta.com",
        "acme okta.com",
        "",
        "-acme.com",
        "acme.com:99999999",
    ],
)
def test_a_host_cannot_carry_a_path_a_query_or_another_host(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        client({"domain": value}).provider("tenanted")
    assert "host domain" in str(caught.value)
    if value:
        assert value not in str(caught.value)


@pytest.mark.parametrize("value", ["../admin", "a/b", "a?b", "..", "a b", "x" * 201])
def test_a_segment_is_one_path_segment(value: str) -> None:
    with pytest.raises(ConfigurationError, match="segment server"):
        client({"domain": "acme.okta.com", "server": value}).provider("tenanted")


def test_a_host_may_carry_a_port_and_is_lower_cased() -> None:
    spec = client({"domain": "ACME.example.com:8443"}).provider("tenanted")
    assert spec.token_endpoint == "https://acme.example.com:8443/oauth2/default/v1/token"


def test_a_url_setting_is_https_or_loopback_and_loses_its_trailing_slash() -> None:
    base = DeploymentSetting(name="base", kind="url", description="the server")
    spec = ProviderSpec(
        id="tenanted",
        name="Tenanted",
        authorization_endpoint="{base}/auth",
        token_endpoint="{base}/token",
        settings=(base,),
    )
    kt = client({"base": "https://sso.example.com/auth/"}, spec=spec)
    assert kt.provider("tenanted").token_endpoint == "https://sso.example.com/auth/token"
    kt = client({"base": "http://127.0.0.1:8080"}, spec=spec)
    assert kt.provider("tenanted").token_endpoint == "http://127.0.0.1:8080/token"
    for bad in ("http://sso.example.com", "https://sso.example.com/?q=1", "ftp://x", "x"):
        with pytest.raises(ConfigurationError, match="url base"):
            client({"base": bad}, spec=spec).provider("tenanted")


def test_a_tenant_states_its_rotation_and_grace() -> None:
    spec = client(
        {"domain": "acme.okta.com", "rotation": "detect_reuse", "refresh_reuse_grace": 30}
    ).provider("tenanted")
    assert spec.rotation == "detect_reuse"
    assert spec.rotates_refresh_tokens is True
    assert spec.refresh_reuse_grace == 30.0
    spec = client({"domain": "acme.okta.com", "rotation": "none"}).provider("tenanted")
    assert spec.rotation == "none"
    assert spec.rotates_refresh_tokens is False
    # a grace means nothing without reuse detection, so it is not kept
    spec = client({"domain": "a.b", "rotation": "keep_old", "refresh_reuse_grace": "30"}).provider(
        "tenanted"
    )
    assert spec.refresh_reuse_grace == 0.0
    for bad in ({"rotation": "sometimes"}, {"refresh_reuse_grace": "forever"}):
        with pytest.raises(ConfigurationError):
            client({"domain": "acme.okta.com", **bad}).provider("tenanted")
    with pytest.raises(ConfigurationError, match="between 0 and 3600"):
        client({"domain": "a.b", "refresh_reuse_grace": "1e300"}).provider("tenanted")


def test_settings_for_an_unknown_provider_or_setting_are_refused_early() -> None:
    with pytest.raises(UnknownProviderError):
        Keyturn(settings={"nope": {"domain": "x"}}, plugin_manager=get_plugin_manager(environ={}))
    with pytest.raises(ConfigurationError, match="has no deployment settings"):
        Keyturn(settings={"google": {"domain": "x"}}, plugin_manager=get_plugin_manager(environ={}))
    with pytest.raises(ConfigurationError, match="tenent"):
        client({"domain": "acme.okta.com", "tenent": "x"}).provider("tenanted")


def test_a_spec_without_settings_is_used_as_registered() -> None:
    kt = Keyturn(plugin_manager=get_plugin_manager(environ={}))
    assert kt.provider("google") is kt.provider("google")
    assert kt.provider("google").deployment == {}


def test_the_spec_is_made_once_per_client() -> None:
    kt = client({"domain": "acme.okta.com"})
    assert kt.provider("tenanted") is kt.provider("tenanted")


def test_a_plugin_can_make_its_own_spec_from_the_settings() -> None:
    class Plugin:
        @keyturn.hookimpl
        @keyturn.for_provider("tenanted")
        def keyturn_deploy(self, provider: ProviderSpec, settings: Mapping[str, str]) -> Any:
            spec = deploy(provider, settings)
            return spec.model_copy(update={"name": f"Tenanted ({settings['domain']})"})

    pm = get_plugin_manager(environ={})
    pm.register(Plugin())
    spec = client({"domain": "acme.okta.com"}, pm=pm).provider("tenanted")
    assert spec.name == "Tenanted (acme.okta.com)"
    assert spec.token_endpoint == "https://acme.okta.com/oauth2/default/v1/token"


@pytest.mark.parametrize(
    "result",
    [
        lambda provider: "not a spec",
        lambda provider: provider.model_copy(update={"id": "other"}),
        lambda provider: provider,  # placeholders left
    ],
)
def test_a_plugin_that_returns_an_unusable_spec_is_a_plugin_error(result: Any) -> None:
    class Plugin:
        @keyturn.hookimpl
        @keyturn.for_provider("tenanted")
        def keyturn_deploy(self, provider: ProviderSpec, settings: Mapping[str, str]) -> Any:
            return result(provider)

    pm = get_plugin_manager(environ={})
    pm.register(Plugin())
    with pytest.raises(PluginError, match="keyturn_deploy"):
        client({"domain": "acme.okta.com"}, pm=pm).provider("tenanted")


def test_the_flows_of_a_deployed_spec_go_to_the_tenant() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"access_token": "at", "token_type": "Bearer"})

    kt = Keyturn(
        {"tenanted": ("cid", "secret")},
        providers=[TEMPLATE],
        settings={"tenanted": {"domain": "acme.okta.com"}},
        environ={},
        plugin_manager=get_plugin_manager(environ={}),
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    kt.refresh(keyturn.TokenSet(provider="tenanted", access_token="old", refresh_token="rt"))
    assert seen == ["https://acme.okta.com/oauth2/default/v1/token"]


class TestRotationKind:
    def test_either_field_gives_the_other(self) -> None:
        base: dict[str, Any] = {"id": "p", "name": "P", "authorization_endpoint": "https://a"}
        base["token_endpoint"] = "https://t"
        assert ProviderSpec(**base).rotation == "none"
        assert ProviderSpec(**base, rotates_refresh_tokens=True).rotation == "rotate"
        assert ProviderSpec(**base, rotates_refresh_tokens=False).rotation == "none"
        for kind in ("rotate", "keep_old", "detect_reuse"):
            assert ProviderSpec(**base, rotation=kind).rotates_refresh_tokens is True
        assert ProviderSpec(**base, rotation="none").rotates_refresh_tokens is False
        spec = ProviderSpec(**base, rotation="detect_reuse", refresh_reuse_grace=30)
        assert spec.refresh_reuse_grace == 30

    def test_contradictions_are_refused(self) -> None:
        base: dict[str, Any] = {"id": "p", "name": "P", "authorization_endpoint": "https://a"}
        base["token_endpoint"] = "https://t"
        with pytest.raises(ValidationError, match="contradicts"):
            ProviderSpec(**base, rotation="none", rotates_refresh_tokens=True)
        with pytest.raises(ValidationError, match="contradicts"):
            ProviderSpec(**base, rotation="keep_old", rotates_refresh_tokens=False)
        with pytest.raises(ValidationError, match="refresh_reuse_grace"):
            ProviderSpec(**base, rotation="rotate", refresh_reuse_grace=5)
        with pytest.raises(ValidationError):
            ProviderSpec(**base, rotation="sometimes")
        with pytest.raises(ValidationError):
            ProviderSpec(**base, rotation="detect_reuse", refresh_reuse_grace=-1)

    def test_the_shipped_providers_state_their_kind(self) -> None:
        kt = Keyturn(plugin_manager=get_plugin_manager(environ={}))
        assert kt.provider("google").rotation == "none"
        assert kt.provider("github").rotation == "rotate"

    def test_settings_names_must_be_unique(self) -> None:
        with pytest.raises(ValidationError, match="twice"):
            TEMPLATE.model_copy().model_validate(
                {**TEMPLATE.model_dump(), "settings": [DOMAIN.model_dump(), DOMAIN.model_dump()]}
            )


def test_a_spec_pointed_elsewhere_needs_no_host_but_still_its_other_settings() -> None:
    team = DeploymentSetting(name="team_id", kind="text", description="the team")
    pointed = TEMPLATE.model_copy(
        update={
            "authorization_endpoint": "http://127.0.0.1:9/authorize",
            "token_endpoint": "http://127.0.0.1:9/token",
            "revocation_endpoint": None,
            "issuer": "http://127.0.0.1:9",
            "settings": (*TEMPLATE.settings, team),
        }
    )
    with pytest.raises(ConfigurationError, match="team_id"):
        client({}, spec=pointed).provider("tenanted")
    spec = client({"team_id": "T1"}, spec=pointed).provider("tenanted")
    assert spec.token_endpoint == "http://127.0.0.1:9/token"
    assert spec.deployment == {
        "server": "default",
        "rotation": "rotate",
        "refresh_reuse_grace": "0",
        "team_id": "T1",
    }


def test_the_template_is_there_for_whoever_points_it_elsewhere() -> None:
    kt = client()
    assert kt.provider("tenanted", deployed=False) is kt.provider("tenanted", deployed=False)
    assert kt.provider("tenanted", deployed=False).token_endpoint == TEMPLATE.token_endpoint
    with pytest.raises(ConfigurationError):
        kt.provider("tenanted")
