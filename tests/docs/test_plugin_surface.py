"""What a plugin may rely on is stated once, in docs/hooks.md, and held to.

* The surface tables name exactly what the modules export: every name of ``keyturn.flows``,
  and names of ``keyturn`` that exist and are in its ``__all__``.
* The plugins of this repository (and the template ``keyturn new-provider`` writes) import
  nothing of keyturn outside those tables.
* The hook reference is the rendering of the hookspecs' own docstrings, so it is never typed
  twice; the tutorial links to it instead of repeating it.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import keyturn
from keyturn import flows

from . import hook_reference

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
TUTORIAL = (ROOT / "docs" / "writing-a-provider-plugin.md").read_text(encoding="utf-8")
TEMPLATE = ROOT / "tools/pytest-keyturn/src/pytest_keyturn/scaffold/templates/package_init.py.tmpl"


def surface(module: str) -> list[str]:
    """The names listed in the page's table for ``module``, in order."""
    marker = f"<!-- surface: {module} -->\n"
    assert marker in PAGE, f"docs/hooks.md has no surface table for {module}"
    table = PAGE.split(marker, 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return [re.match(r"\| `([^`]+)`", row).group(1) for row in rows]  # type: ignore[union-attr]


KEYTURN = surface("keyturn")
FLOWS = surface("keyturn.flows")


def test_the_flows_table_lists_exactly_what_flows_exports() -> None:
    assert sorted(FLOWS) == sorted(flows.__all__)
    assert len(FLOWS) == len(set(FLOWS))
    for name in FLOWS:
        assert hasattr(flows, name), name


def test_the_keyturn_table_lists_only_exported_names() -> None:
    assert len(KEYTURN) == len(set(KEYTURN))
    for name in KEYTURN:
        assert name in keyturn.__all__, f"{name} is in the table but not in keyturn.__all__"
        assert hasattr(keyturn, name), name


def test_the_plugin_surface_covers_what_a_flow_and_a_hook_need() -> None:
    needed = {"hookimpl", "for_provider", "ProviderSpec", "TokenSet", "Flow", "HttpRequest"}
    assert needed <= set(KEYTURN)


def _plugin_sources() -> list[tuple[str, str]]:
    files = sorted(ROOT.glob("plugins/*/src/**/*.py")) + sorted(ROOT.glob("examples/*/src/**/*.py"))
    found = [(str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")) for path in files]
    template = TEMPLATE.read_text(encoding="utf-8")
    found.append((str(TEMPLATE.relative_to(ROOT)), re.sub(r"\$\{\w+\}", "acme", template)))
    return found


def outside_the_surface(source: str) -> list[str]:
    """Every use of keyturn in ``source`` that the surface tables do not name."""
    allowed = {"keyturn": {*KEYTURN, "flows"}, "keyturn.flows": set(FLOWS)}
    problems: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keyturn"):
            module = node.module or ""
            if module not in allowed:
                problems.append(f"from {module} import ...")
                continue
            problems += [
                f"from {module} import {alias.name}"
                for alias in node.names
                if alias.name not in allowed[module]
            ]
        elif isinstance(node, ast.Import):
            problems += [
                f"import {alias.name}"
                for alias in node.names
                if alias.name.startswith("keyturn") and alias.name not in allowed
            ]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = {"keyturn": "keyturn", "flows": "keyturn.flows"}.get(node.value.id)
            if owner is not None and node.attr not in allowed[owner]:
                problems.append(f"{node.value.id}.{node.attr}")
    return problems


@pytest.mark.parametrize(("path", "source"), _plugin_sources(), ids=lambda value: value[:60])
def test_the_repositorys_plugins_use_only_the_stated_surface(path: str, source: str) -> None:
    assert outside_the_surface(source) == [], f"{path} reaches past the plugin surface"


def test_the_surface_check_catches_each_way_of_reaching_past_it() -> None:
    source = (
        "import keyturn\n"
        "import keyturn.client\n"
        "from keyturn import flows, Keyturn\n"
        "from keyturn.models import TokenSet\n"
        "from keyturn.flows import _secret\n"
        "keyturn.get_plugin_manager()\n"
        "flows.log\n"
        "keyturn.hookimpl\n"
    )
    assert sorted(outside_the_surface(source)) == sorted(
        [
            "import keyturn.client",
            "from keyturn import Keyturn",
            "from keyturn.models import ...",
            "from keyturn.flows import _secret",
            "keyturn.get_plugin_manager",
            "flows.log",
        ]
    )


# -- the hook reference ----------------------------------------------------------------------


def test_the_hook_reference_is_the_rendering_of_the_hookspecs() -> None:
    assert hook_reference.current(PAGE) == hook_reference.render(), (
        "docs/hooks.md's hook reference differs from keyturn/hookspecs.py: "
        "run `python -m tests.docs.hook_reference`"
    )


def test_the_rendering_shows_each_hook_with_its_exact_signature() -> None:
    rendered = hook_reference.render()
    for name, func in hook_reference.hooks().items():
        assert f"#### {name}\n" in rendered
        assert f"```python\n{hook_reference.signature(func)}\n```" in rendered


@pytest.mark.parametrize("name", sorted(hook_reference.hooks()))
def test_every_parameter_and_the_return_reach_the_page(name: str) -> None:
    func = hook_reference.hooks()[name]
    entry = hook_reference.render_hook(func)
    for param in inspect.signature(func).parameters:
        assert f"- `{param}`: " in entry, f"{name} does not document {param}"
    assert "- returns: " in entry


def test_the_tutorial_links_to_the_reference_instead_of_repeating_it() -> None:
    assert "hooks.md#hook-reference" in TUTORIAL
    for name, func in hook_reference.hooks().items():
        assert f"{hook_reference.signature(func)}\n" not in TUTORIAL, f"the tutorial retypes {name}"
        assert f"### {name}\n" not in TUTORIAL
