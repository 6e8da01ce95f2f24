"""Plugin discovery, the provider registry, and the hook contract's traps."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any

import pytest

import keyturn
from keyturn import ProviderSpec, for_provider, hookimpl
from keyturn.plugins import collect_providers, get_plugin_manager
from tests.conftest import CLIENT_ID, CLIENT_SECRET, FakeClock, Recorder

OTHER = ProviderSpec(
    id="other",
    name="Other",
    authorization_endpoint="https://other.example/authorize",
    token_endpoint="https://other.example/token",
    revocation_endpoint="https://other.example/revoke",
)


class RegistersOther:
    @hookimpl
    def keyturn_register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
        register(OTHER)


def test_google_is_found_through_its_entry_point() -> None:
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="keyturn")}
    assert eps["google"].value == "keyturn_google"
    pm = get_plugin_manager(environ={})
    assert pm.distributions["google"][0] == "keyturn-google"
    registered = collect_providers(pm)["google"]
    assert (registered.plugin, registered.distribution) == ("google", "keyturn-google")


@pytest.mark.parametrize("value", ["google", " google , other", "*"])
def test_disable_plugins_by_name_or_all(value: str) -> None:
    pm = get_plugin_manager(environ={"KEYTURN_DISABLE_PLUGINS": value})
    assert "google" not in collect_providers(pm)
    assert not pm.has_plugin("google")


def test_disable_plugins_is_read_from_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEYTURN_DISABLE_PLUGINS", "google")
    assert "google" not in collect_providers(get_plugin_manager())
    monkeypatch.setenv("KEYTURN_DISABLE_PLUGINS", "unrelated")
    assert "google" in collect_providers(get_plugin_manager())


def test_extra_plugins_register_providers() -> None:
    pm = get_plugin_manager(plugins=[RegistersOther()], environ={})
    # Every installed plugin's providers, and the extra plugin's beside them.
    assert set(collect_providers(pm)) >= {
        "google",
        "github",
        "gitlab",
        "spotify",
        "microsoft",
        "slack",
        "okta",
        "auth0",
        "keycloak",
        "discord",
        "apple",
        "other",
    }


def test_duplicate_provider_id_names_both_plugins() -> None:
    class AlsoGoogle:
        @hookimpl
        def keyturn_register_providers(self, register: Callable[[ProviderSpec], None]) -> None:
            register(OTHER.model_copy(update={"id": "google"}))

    pm = get_plugin_manager(plugins=[AlsoGoogle()], environ={})
    with pytest.raises(keyturn.PluginError, match=r"'google' is registered twice.*'google'"):
        collect_providers(pm)
    with pytest.raises(keyturn.PluginError):
        keyturn.Keyturn(plugin_manager=pm)


def test_registering_something_else_is_an_error() -> None:
    class Wrong:
        @hookimpl
        def keyturn_register_providers(self, register: Callable[[Any], None]) -> None:
            register({"id": "dict"})

    pm = get_plugin_manager(plugins=[Wrong()], environ={})
    with pytest.raises(keyturn.PluginError, match="not a ProviderSpec"):
        collect_providers(pm)


def test_misspelt_hook_fails_check_pending() -> None:
    class Typo:
        @hookimpl
        def keyturn_refesh(self, provider: ProviderSpec) -> None:
            return None

    with pytest.raises(keyturn.PluginError, match="keyturn_refesh"):
        get_plugin_manager(plugins=[Typo()], environ={})


def test_hookimpl_with_unknown_argument_is_rejected() -> None:
    class BadArgs:
        @hookimpl
        def keyturn_refresh(self, provider: ProviderSpec, token_set: object) -> None:
            return None

    with pytest.raises(keyturn.PluginError, match="token_set"):
        get_plugin_manager(plugins=[BadArgs()], environ={})


def test_plugin_that_fails_to_import_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = importlib.metadata.EntryPoint(
        name="broken", value="keyturn_no_such_module_xyz", group="keyturn"
    )
    monkeypatch.setattr("keyturn.plugins.importlib.metadata.entry_points", lambda group: [broken])
    with pytest.raises(keyturn.PluginError, match=r"'broken'.*ModuleNotFoundError"):
        get_plugin_manager(environ={})


def test_for_provider_answers_only_for_its_ids() -> None:
    calls: list[str] = []

    @for_provider("other")
    def impl(provider: ProviderSpec, tokens: object) -> str:
        calls.append(provider.id)
        return "mine"

    google = collect_providers(get_plugin_manager(environ={}))["google"].spec
    assert impl(google, None) is None
    assert impl(OTHER, None) == "mine"
    assert impl(tokens=None, provider=OTHER) == "mine"
    assert calls == ["other", "other"]


def test_for_provider_needs_ids_and_a_provider_argument() -> None:
    with pytest.raises(TypeError):
        for_provider()
    with pytest.raises(TypeError, match="provider"):
        for_provider("x")(lambda tokens: None)


def _client(pm: Any, http: Recorder) -> keyturn.Keyturn:
    import httpx

    return keyturn.Keyturn(
        {"other": (CLIENT_ID, CLIENT_SECRET), "google": (CLIENT_ID, CLIENT_SECRET)},
        http_client=httpx.Client(transport=httpx.MockTransport(http)),
        plugin_manager=pm,
        clock=FakeClock(),
        environ={},
    )


def test_a_plugin_override_wins_for_its_provider_and_falls_through_for_others(
    http: Recorder,
) -> None:
    class CustomRefresh:
        @hookimpl
        @for_provider("other")
        def keyturn_refresh(self, provider: ProviderSpec, tokens: keyturn.TokenSet) -> Any:
            def flow() -> keyturn.Flow[keyturn.TokenSet]:
                response = yield keyturn.HttpRequest("POST", "https://other.example/custom")
                assert response.status == 200
                return tokens.model_copy(update={"token_type": "Custom"})

            return flow()

    pm = get_plugin_manager(plugins=[RegistersOther(), CustomRefresh()], environ={})
    client = _client(pm, http)
    other = keyturn.TokenSet(provider="other", access_token="a", refresh_token="r")
    http.queue(200, {})
    assert client.refresh(other).token_type == "Custom"
    assert str(http.requests[-1].url) == "https://other.example/custom"

    google = keyturn.TokenSet(provider="google", access_token="a", refresh_token="r")
    http.queue(200, {"access_token": "b", "expires_in": 10})
    assert client.refresh(google).token_type == "Bearer"
    assert str(http.requests[-1].url) == "https://oauth2.googleapis.com/token"


def test_async_def_hook_is_refused_with_a_clear_error(http: Recorder) -> None:
    class AsyncHook:
        @hookimpl
        async def keyturn_refresh(self, provider: ProviderSpec) -> None:
            return None

    pm = get_plugin_manager(plugins=[AsyncHook()], environ={})
    client = _client(pm, http)
    tokens = keyturn.TokenSet(provider="google", access_token="a", refresh_token="r")
    with pytest.raises(keyturn.PluginError, match="not a flow"):
        client.refresh(tokens)
    assert http.requests == []


def test_default_plugin_manager_is_shared() -> None:
    from keyturn.plugins import default_plugin_manager

    assert default_plugin_manager() is default_plugin_manager()
    assert "google" in keyturn.Keyturn(environ={}).providers
