"""The conformance suite on a spec that is a template (deployment settings, docs/deployment.md).

The suite checks the spec as an app's client deploys it: with the test class's ``settings`` and
the settings' defaults. A setting with neither fails with what to add, naming the setting.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest

import keyturn
from keyturn import DeploymentSetting, ProviderSpec
from keyturn.plugins import KeyturnPluginManager
from pytest_keyturn import ProviderConformance

TENANTED = ProviderSpec(
    id="tenanted",
    name="Tenanted",
    authorization_endpoint="https://{domain}/authorize",
    token_endpoint="https://{domain}/token",
    settings=(DeploymentSetting(name="domain", kind="host", description="the tenant's host"),),
)


def _manager() -> KeyturnPluginManager:
    @keyturn.hookimpl
    def keyturn_register_providers(register):
        register(TENANTED)

    plugin = SimpleNamespace(keyturn_register_providers=keyturn_register_providers)
    return keyturn.get_plugin_manager(entry_points=False, plugins=[plugin])


class _Base(ProviderConformance):
    provider = "tenanted"
    cassettes = Path(__file__).parent
    plugin_manager_factory = staticmethod(_manager)


class _WithSettings(_Base):
    settings: ClassVar[dict[str, str]] = {"domain": "acme.example.com"}


def test_the_suite_checks_the_template_deployed_with_the_class_settings() -> None:
    spec = _WithSettings()._spec()
    assert spec.token_endpoint == "https://acme.example.com/token"
    _WithSettings().test_spec_endpoints_are_absolute_https_urls()


def test_a_setting_without_value_or_default_fails_naming_it() -> None:
    with pytest.raises(pytest.fail.Exception) as caught:
        _Base()._spec()
    message = str(caught.value)
    assert "tenanted: the spec is a template" in message
    assert "domain" in message and "settings = {...}" in message
