"""The hook contract is documented, exactly, in the hookspecs (docs/hooks.md renders them)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest

from keyturn import hookspecs
from tests.conftest import ROOT

HOOKS: dict[str, Callable[..., Any]] = {
    name: func
    for name, func in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("keyturn_")
}
DOC = (ROOT / "docs" / "hooks.md").read_text()
TUTORIAL = (ROOT / "docs" / "writing-a-provider-plugin.md").read_text()


def signature(func: Callable[..., Any]) -> str:
    """The hook's signature as written in its source (annotations are strings)."""
    annotations = func.__annotations__
    params = ", ".join(
        f"{name}: {annotations[name]}" for name in inspect.signature(func).parameters
    )
    return f"def {func.__name__}({params}) -> {annotations['return']}"


def test_the_expected_hooks_exist() -> None:
    assert set(HOOKS) == {
        "keyturn_register_providers",
        "keyturn_deploy",
        "keyturn_authorize_url",
        "keyturn_exchange_code",
        "keyturn_refresh",
        "keyturn_userinfo",
        "keyturn_revoke",
        "keyturn_client_secret",
        "keyturn_jwt",
        "keyturn_session",
    }


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_in_the_reference_with_its_exact_signature(name: str) -> None:
    assert signature(HOOKS[name]) in DOC, f"docs/hooks.md lacks or misstates {name}"


def test_reference_names_no_hook_that_does_not_exist() -> None:
    documented = set(re.findall(r"^def (keyturn_\w+)\(", DOC, flags=re.MULTILINE))
    assert documented == set(HOOKS)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_docstring_documents_every_parameter_and_the_return(name: str) -> None:
    func = HOOKS[name]
    doc = inspect.getdoc(func) or ""
    for param in inspect.signature(func).parameters:
        assert f":param {param}:" in doc, f"{name} does not document {param}"
    assert ":return:" in doc


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_firstresult_is_stated_where_it_applies(name: str) -> None:
    func = HOOKS[name]
    opts = vars(func)["keyturn_spec"]
    doc = inspect.getdoc(func) or ""
    assert bool(opts["firstresult"]) == ("first result wins" in doc.lower())


def test_every_hook_the_tutorials_examples_implement_exists() -> None:
    implemented = set(re.findall(r"^def (keyturn_\w+)\(", TUTORIAL, flags=re.MULTILINE))
    assert implemented <= set(HOOKS)
