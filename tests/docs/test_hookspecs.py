"""The hook contract is documented, exactly, in the code and in docs/hooks.md."""

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
#: The tutorial's closing reference section (its examples above define hooks too).
TUTORIAL_REFERENCE = TUTORIAL.split("\n## Hook reference\n", 1)[-1]


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
        "keyturn_authorize_url",
        "keyturn_exchange_code",
        "keyturn_refresh",
        "keyturn_userinfo",
        "keyturn_revoke",
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


def test_the_tutorial_has_a_hook_reference_section() -> None:
    assert TUTORIAL_REFERENCE != TUTORIAL, "the tutorial lost its '## Hook reference' section"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_in_the_tutorials_reference_with_its_exact_signature(name: str) -> None:
    assert signature(HOOKS[name]) in TUTORIAL_REFERENCE, (
        f"the hook reference of docs/writing-a-provider-plugin.md lacks or misstates {name}"
    )
    assert f"### {name}\n" in TUTORIAL_REFERENCE, f"no heading for {name} in the reference"


def test_tutorials_reference_names_no_hook_that_does_not_exist() -> None:
    documented = set(re.findall(r"^def (keyturn_\w+)\(", TUTORIAL_REFERENCE, flags=re.MULTILINE))
    headings = set(re.findall(r"^### (keyturn_\w+)$", TUTORIAL_REFERENCE, flags=re.MULTILINE))
    assert documented == headings == set(HOOKS)


def test_every_hook_the_tutorials_examples_implement_exists() -> None:
    implemented = set(re.findall(r"^def (keyturn_\w+)\(", TUTORIAL, flags=re.MULTILINE))
    assert implemented <= set(HOOKS)
