"""The conformance suite checks a plugin against the refresh-token rotation it declares.

``ProviderSpec.rotation`` says what a provider does with a used refresh token: ``none``,
``rotate``, ``keep_old`` or ``detect_reuse`` (with ``refresh_reuse_grace``), or, with a
``rotation`` deployment setting, what each tenant chose. Each test writes a small provider
plugin ("acme") with its cassettes, from :mod:`tests.tools.test_testing_plugin`, and runs the
suite on it in a nested pytest session, or asks the suite's own helpers in-process. The last
test checks that the emulator can play every kind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, get_args

import pytest
import yaml

import keyturn
from keyturn import RefreshRotation
from pytest_keyturn import ProviderConformance
from tests.tools.test_testing_plugin import (
    OPTIONS,
    SKIPPED,
    SUITE_SIZE,
    TOKEN_URL,
    standard_cassettes,
)

pytest_plugins = ["pytester"]

#: The fields of acme's spec that the standard cassettes were written for.
BASE: dict[str, Any] = {
    "id": "acme",
    "name": "Acme",
    "authorization_endpoint": "https://auth.example.com/authorize",
    "token_endpoint": TOKEN_URL,
    "default_scopes": ("read", "write"),
    "authorize_params": {"access_type": "offline"},
    "pkce_method": "S256",
}

PLUGIN = """
import keyturn

ACME = keyturn.ProviderSpec(**{fields!r})


@keyturn.hookimpl
def keyturn_register_providers(register):
    register(ACME)


@keyturn.hookimpl
def keyturn_deploy(provider, settings):
    if settings.get("rotation") in {refused!r}:
        raise keyturn.ConfigurationError("acme tenants cannot choose " + settings["rotation"])
    return None
"""

TEST_MODULE = """
from pathlib import Path

import keyturn
from pytest_keyturn import ProviderConformance

import acme_plugin


class TestAcme(ProviderConformance):
    provider = "acme"
    cassettes = Path(__file__).parent / "cassettes"
    plugin_manager_factory = staticmethod(
        lambda: keyturn.get_plugin_manager(entry_points=False, plugins=[acme_plugin])
    )
    settings = {settings!r}
"""

ROTATION_SETTING = {
    "name": "rotation",
    "kind": "rotation",
    "description": "Refresh token behavior of the tenant's application",
    "default": "none",
}
GRACE_SETTING = {
    "name": "refresh_reuse_grace",
    "kind": "seconds",
    "description": "Grace period of the tenant's refresh token rotation",
    "default": "30",
}


def cassettes_for(*, ok_rotates: bool, rotated: bool) -> dict[str, dict[str, Any]]:
    """The standard cassettes; ``refresh_ok`` from a tenant that rotates or not, and
    ``refresh_rotated`` (which rotates) or none."""
    cassettes = standard_cassettes(rotate=ok_rotates)
    if rotated:
        cassettes["refresh_rotated"] = standard_cassettes(rotate=True)["refresh_rotated"]
    else:
        cassettes.pop("refresh_rotated", None)
    return cassettes


def write(
    pytester: pytest.Pytester,
    fields: Mapping[str, Any],
    cassettes: Mapping[str, Any],
    *,
    refused: frozenset[str] = frozenset(),
    settings: Mapping[str, str] | None = None,
) -> None:
    pytester.syspathinsert()
    pytester.makepyfile(
        acme_plugin=PLUGIN.format(fields={**BASE, **fields}, refused=set(refused)),
        test_acme=TEST_MODULE.format(settings=dict(settings or {})),
    )
    folder = pytester.path / "cassettes"
    folder.mkdir()
    for name, data in cassettes.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")


def run(pytester: pytest.Pytester, *, failed: int = 0) -> pytest.RunResult:
    result = pytester.runpytest(*OPTIONS, "-rfs")
    result.assert_outcomes(passed=SUITE_SIZE - SKIPPED - failed, failed=failed, skipped=SKIPPED)
    return result


# -- each kind --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"rotation": "rotate"},
        {"rotation": "keep_old"},
        {"rotation": "detect_reuse", "refresh_reuse_grace": 30},
        {"rotation": "detect_reuse", "settings": (GRACE_SETTING,)},
    ],
    ids=["rotate", "keep_old", "detect_reuse", "detect_reuse-grace-setting"],
)
def test_a_rotating_plugin_with_a_rotated_cassette_passes(
    pytester: pytest.Pytester, fields: dict[str, Any]
) -> None:
    write(pytester, fields, cassettes_for(ok_rotates=True, rotated=True))
    run(pytester)


def test_keep_old_whose_refresh_keeps_the_token_fails_naming_the_kind(
    pytester: pytest.Pytester,
) -> None:
    cassettes = cassettes_for(ok_rotates=True, rotated=True)
    body = {"access_token": "REDACTED-access-3", "expires_in": 3600}  # no new refresh token
    cassettes["refresh_rotated"]["interactions"][0]["response"]["body"]["string"] = json.dumps(body)
    write(pytester, {"rotation": "keep_old"}, cassettes)
    result = run(pytester, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*refresh_rotated.yaml: the spec declares rotation='keep_old', so each refresh "
            "returns a new refresh token, but the refresh left the refresh token that was "
            "sent in place. If the provider does not rotate, declare rotation='none'*"
        ]
    )


def test_a_rotating_kind_without_refresh_rotated_says_how_to_record_it(
    pytester: pytest.Pytester,
) -> None:
    write(pytester, {"rotation": "keep_old"}, cassettes_for(ok_rotates=True, rotated=False))
    result = run(pytester, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*refresh_rotated.yaml is missing (the spec declares rotation='keep_old', so a "
            "refresh returns a new refresh token). Record it against the real provider with "
            "`keyturn record acme refresh_rotated --cassette-dir cassettes --flat`*"
        ]
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"rotation": "detect_reuse"},
            "*rotation='detect_reuse', but no refresh_reuse_grace: a provider that detects "
            "reuse revokes the whole grant*declare a refresh_reuse_grace setting "
            "(kind='seconds')",
        ),
        (
            {
                "rotation": "detect_reuse",
                "refresh_reuse_grace": 30,
                "settings": ({**GRACE_SETTING, "kind": "text"},),
            },
            "*the refresh_reuse_grace setting is of kind 'text'; declare it with "
            "kind='seconds' so keyturn reads and checks its value",
        ),
    ],
    ids=["no grace", "grace setting of another kind"],
)
def test_reuse_detection_needs_its_grace_window(
    pytester: pytest.Pytester, fields: dict[str, Any], message: str
) -> None:
    write(pytester, fields, cassettes_for(ok_rotates=True, rotated=True))
    result = run(pytester, failed=1)
    result.stdout.fnmatch_lines(["*the spec's refresh-token rotation is incomplete:", message])
    result.stdout.fnmatch_lines(["FAILED *test_spec_rotation_is_complete*"])


# -- the tenant chooses -------------------------------------------------------------------------


def test_a_tenant_setting_is_checked_against_every_kind_and_passes_with_both_cassettes(
    pytester: pytest.Pytester,
) -> None:
    """refresh_ok from a tenant that does not rotate, refresh_rotated from one that does."""
    fields = {"settings": (ROTATION_SETTING, GRACE_SETTING)}
    write(pytester, fields, cassettes_for(ok_rotates=False, rotated=True))
    run(pytester)


def test_a_tenant_setting_fails_for_the_kind_its_cassettes_contradict(
    pytester: pytest.Pytester,
) -> None:
    """Both refresh cassettes rotate, but tenants may choose none: refresh_ok must show it."""
    fields = {"settings": (ROTATION_SETTING, GRACE_SETTING)}
    write(pytester, fields, cassettes_for(ok_rotates=True, rotated=True))
    result = run(pytester, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*refresh_ok.yaml: the spec declares the deployment setting rotation='none', but "
            "the TokenSet's refresh token is not the one that was sent*"
        ]
    )


def test_a_tenant_setting_without_refresh_rotated_fails_for_the_rotating_kinds(
    pytester: pytest.Pytester,
) -> None:
    fields = {"settings": (ROTATION_SETTING, GRACE_SETTING)}
    write(pytester, fields, cassettes_for(ok_rotates=False, rotated=False))
    result = run(pytester, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*refresh_rotated.yaml is missing (the spec declares the deployment setting "
            "rotation='rotate', so a refresh returns a new refresh token)*"
        ]
    )


# -- which kinds are checked, in-process ------------------------------------------------------


class AcmePlugin:
    """acme's spec, and a keyturn_deploy that refuses some rotation values."""

    def __init__(self, spec: keyturn.ProviderSpec, refused: frozenset[str] = frozenset()):
        self.spec = spec
        self.refused = refused

    @keyturn.hookimpl
    def keyturn_register_providers(self, register: Any) -> None:
        register(self.spec)

    @keyturn.hookimpl
    def keyturn_deploy(
        self, provider: keyturn.ProviderSpec, settings: Mapping[str, str]
    ) -> keyturn.ProviderSpec | None:
        if settings.get("rotation") in self.refused:
            raise keyturn.ConfigurationError("acme tenants cannot choose that rotation")
        return None


def suite(
    fields: Mapping[str, Any],
    *,
    refused: frozenset[str] = frozenset(),
    values: Mapping[str, str] | None = None,
) -> ProviderConformance:
    plugin = AcmePlugin(keyturn.ProviderSpec(**{**BASE, **fields}), refused)

    class Suite(ProviderConformance):
        provider = "acme"
        cassettes = Path("unused")
        plugin_manager_factory = staticmethod(
            lambda: keyturn.get_plugin_manager(entry_points=False, plugins=[plugin])
        )
        settings: ClassVar[Mapping[str, str]] = dict(values or {})

    return Suite()


def kinds(conformance: ProviderConformance) -> list[tuple[str, dict[str, str]]]:
    return conformance._rotation_kinds()


def test_a_fixed_kind_is_checked_alone() -> None:
    assert kinds(suite({"rotation": "keep_old"})) == [("keep_old", {})]
    assert kinds(suite({})) == [("none", {})]


def test_a_tenant_setting_is_checked_for_each_value_the_plugin_accepts() -> None:
    fields = {"settings": (ROTATION_SETTING,)}
    assert [kind for kind, _ in kinds(suite(fields))] == list(get_args(RefreshRotation))
    accepted = kinds(suite(fields, refused=frozenset({"rotate", "keep_old"})))
    assert accepted == [
        ("none", {"rotation": "none"}),
        ("detect_reuse", {"rotation": "detect_reuse"}),
    ]


def test_a_tenant_setting_that_accepts_nothing_fails_with_the_reasons() -> None:
    refuse_all = frozenset(get_args(RefreshRotation))
    with pytest.raises(pytest.fail.Exception, match="accepts none of none, rotate, keep_old"):
        kinds(suite({"settings": (ROTATION_SETTING,)}, refused=refuse_all))


def test_a_template_spec_is_deployed_with_the_class_settings() -> None:
    domain = {"name": "domain", "kind": "host", "description": "The tenant's domain"}
    fields = {
        "settings": (domain, {**ROTATION_SETTING, "default": None}),
        "token_endpoint": "https://{domain}/oauth/token",
        "rotation": "rotate",
    }
    with pytest.raises(pytest.fail.Exception, match=r"Set the class attribute settings = \{"):
        suite(fields)._spec()
    deployed = suite(fields, values={"domain": "acme.example.com"})._spec()
    assert deployed.token_endpoint == "https://acme.example.com/oauth/token"
    # The rotation setting has no default: the template's own kind stands in for it.
    assert deployed.rotation == "rotate"
    with pytest.raises(pytest.fail.Exception, match="is not a host name"):
        suite(fields, values={"domain": "not a host/"})._spec()


# -- the emulator -------------------------------------------------------------------------------


#: Kinds whose emulator profile is still being written, and where it comes from. The
#: marker is strict: the test fails once the profile lands, to be removed from here.
PENDING: dict[str, str] = {}


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(kind, marks=pytest.mark.xfail(reason=PENDING[kind], strict=True))
        if kind in PENDING
        else kind
        for kind in get_args(RefreshRotation)
    ],
)
def test_the_emulator_plays_every_rotation_kind(kind: str) -> None:
    """keyturn demo and the provider tests run each plugin against its emulator profile, so
    every kind a spec can declare needs a profile that behaves so."""
    from keyturn_emulator import profiles

    assert kind in get_args(profiles.Rotation)
    assert any(behaviour.rotation == kind for behaviour in profiles.PROFILES.values())
