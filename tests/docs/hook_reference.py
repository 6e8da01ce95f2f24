"""docs/hooks.md's hook reference, rendered from the hookspecs' signatures and docstrings.

The hookspecs (``core/src/keyturn/hookspecs.py``) are the one source of the hook contract;
the page's reference section is this rendering of them, and a test keeps the two equal.
After changing a hookspec, write the section again with::

    python -m tests.docs.hook_reference
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keyturn import hookspecs

PAGE = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"
BEGIN = "<!-- rendered from keyturn/hookspecs.py by tests/docs/hook_reference.py -->"
END = "<!-- end of the hook reference -->"

#: Where each hook is listed, in the order the page lists them.
SECTIONS = {
    "Providers": ("keyturn_register_providers", "keyturn_deploy"),
    "Provider operations": (
        "keyturn_authorize_url",
        "keyturn_exchange_code",
        "keyturn_refresh",
        "keyturn_userinfo",
        "keyturn_revoke",
    ),
    "Client authentication": ("keyturn_client_secret",),
    "Callbacks": ("keyturn_jwt", "keyturn_session"),
}


def hooks() -> dict[str, Callable[..., Any]]:
    """Every hookspec by name."""
    return {
        name: func
        for name, func in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("keyturn_")
    }


def signature(func: Callable[..., Any]) -> str:
    """The hook's signature as written in its source (annotations are strings)."""
    annotations = func.__annotations__
    params = ", ".join(
        f"{name}: {annotations[name]}" for name in inspect.signature(func).parameters
    )
    return f"def {func.__name__}({params}) -> {annotations['return']}"


_ROLE = re.compile(r":(?:class|func|meth|data|mod|attr):`(~?)([^`]+)`")


def markdown(text: str) -> str:
    """reStructuredText roles and literals as Markdown code spans (``~a.b.C`` shows ``C``)."""
    text = _ROLE.sub(
        lambda match: (
            f"`{match.group(2).rsplit('.', 1)[-1] if match.group(1) else match.group(2)}`"
        ),
        text,
    )
    return text.replace("``", "`")


def _fields(doc: str) -> tuple[str, list[tuple[str, str]]]:
    """The docstring's prose, and its ``:param x:`` / ``:return:`` fields in order."""
    body, _, rest = doc.partition("\n:")
    fields: list[tuple[str, str]] = []
    for chunk in re.split(r"\n(?=:)", ":" + rest if rest else ""):
        match = re.match(r":(param (\w+)|return):\s*(.*)", chunk, flags=re.DOTALL)
        if match:
            label = match.group(2) or "returns"
            fields.append((label, " ".join(match.group(3).split())))
    return body.strip(), fields


def _prose(body: str) -> str:
    """Paragraphs as Markdown; an indented ``::`` block becomes a Python code block."""
    out: list[str] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.endswith("::"):
            out.append(markdown(line[:-1]))
            i += 1
            block: list[str] = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                block.append(lines[i][4:])
                i += 1
            out += ["", "```python", *"\n".join(block).strip("\n").splitlines(), "```"]
            continue
        out.append(markdown(line))
        i += 1
    return "\n".join(out).strip()


def render_hook(func: Callable[..., Any]) -> str:
    """One hook's entry: heading, signature, description and parameters."""
    body, fields = _fields(inspect.getdoc(func) or "")
    lines = [f"#### {func.__name__}", "", "```python", signature(func), "```", "", _prose(body), ""]
    for label, text in fields:
        name = "returns" if label == "returns" else f"`{label}`"
        lines.append(f"- {name}: {markdown(text)}")
    return "\n".join(lines).rstrip() + "\n"


def render() -> str:
    """The whole reference section, markers included."""
    found = hooks()
    listed = [name for names in SECTIONS.values() for name in names]
    if sorted(listed) != sorted(found):
        raise ValueError(f"SECTIONS lists {sorted(listed)}, the hookspecs are {sorted(found)}")
    parts = [BEGIN, ""]
    for title, names in SECTIONS.items():
        parts += [f"### {title}", ""]
        parts += [render_hook(found[name]) for name in names]
    parts.append(END)
    return "\n".join(parts)


def current(page: str) -> str:
    """The reference section of ``page`` as it stands, markers included."""
    start = page.index(BEGIN)
    end = page.index(END) + len(END)
    return page[start:end]


def write() -> None:
    """Render the section into docs/hooks.md."""
    page = PAGE.read_text(encoding="utf-8")
    PAGE.write_text(page.replace(current(page), render()), encoding="utf-8")


if __name__ == "__main__":
    write()
    sys.stdout.write(f"wrote the hook reference into {PAGE}\n")
