"""Provider facts cite public sources, never a reference file that is not in the repository.

Code, cassettes and docs once cited an outside file of provider notes by its name and by
section labels ("(B4)", "A5: ...", "section D"). A reader could not follow such a citation,
so every fact now names its public source by URL. These tests keep it so:

* no tracked file mentions that file or cites its section labels in the forms once used;
* every provider plugin of the workspace has ``docs/providers/<id>.md``, and every section of
  that page cites at least one https source.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

import keyturn

ROOT = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()

#: Mentions of the outside file of provider notes, by name or by place.
FILE_MENTIONS = re.compile(r"providers(?:-catalog)?\.md|shared/reference|reference/providers")

_LABEL = r"[A-E][0-9]"
_LABELS = rf"(?:{_LABEL}|D)"
#: Section labels of that file, in the forms the repository used: "(A5)", "(B2, B3, D)",
#: "(B1: ...", "# A5: ...", "# B4, ...", "A3/A5", "B3 [DOC]", "A5's table", "A5 note",
#: "B1 and B5", "section A", "sections A, B and D", "(GitHub, B3)", "Endpoints: A1". Each
#: form needs the label's context, so hex digests, "%A5" in a URL, "A256GCM" or
#: "RFC 6749 §4.1" do not match.
LABEL_CITATIONS = re.compile(
    "|".join(
        [
            rf"\({_LABELS}(?:(?:, ?| and ){_LABELS})*\)",  # (A5)  (B2, B3, D)  (D)
            rf"\({_LABEL}:",  # (B1: "Forces the account picker ..."
            rf"#:?\s*{_LABEL}\b(?:[:,]|/{_LABEL}| and )",  # # A5: ...   # B4, ...
            rf"(?<![%\w]){_LABEL}/{_LABEL}\b",  # A3/A5
            rf"(?<![%\w]){_LABEL}(?:/{_LABEL})? \[(?:DOC|LIB|REC|OBS|MOCK)",  # B3 [DOC]
            rf"(?<![%\w]){_LABEL}'s\b",  # A5's table
            rf"(?<![%\w]){_LABEL} note\b",  # A5 note
            rf"(?<![%\w]){_LABEL} and {_LABELS}\b",  # B1 and B5, A4 and D
            r"\bsections? [A-E]\b(?!\.\d)",  # section A, sections B and D
            rf"\. {_LABEL}\.",  # "Written from documentation. A5."
            rf", {_LABELS}\)",  # (GitHub, B3)
            rf"(?<=: ){_LABEL}\b(?![.\w/-])",  # Endpoints: A1
        ]
    )
)

#: The provider plugins of this workspace, by distribution name.
WORKSPACE_PLUGINS = frozenset(
    {
        "keyturn-google",
        "keyturn-github",
        "keyturn-gitlab",
        "keyturn-microsoft",
        "keyturn-slack",
        "keyturn-okta",
        "keyturn-auth0",
        "keyturn-keycloak",
        "keyturn-discord",
        "keyturn-apple",
    }
)

PROVIDER_DOCS = ROOT / "docs" / "providers"


def tracked_files() -> list[str]:
    """Every file git tracks, relative to the repository root, outside ``.venv``."""
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [
        name
        for name in out.split("\0")
        if name and not name.startswith(".venv/") and name != THIS_FILE
    ]


def citation_problems(text: str) -> list[str]:
    """The outside-file mentions and section-label citations in ``text``, as found."""
    return [m.group(0) for m in FILE_MENTIONS.finditer(text)] + [
        m.group(0) for m in LABEL_CITATIONS.finditer(text)
    ]


def _read_text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None  # binary
    return data.decode("utf-8", errors="replace")


# -- the patterns themselves ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Errors at 400/401 with JSON bodies (A5), refresh tokens that never rotate (A4)",
        "comma-separated scope and lower-case ``bearer`` (B2, B3, D).",
        "lower-case bearer (D), revocation as a DELETE",
        "* Errors come with HTTP 200 and an ``error`` field (B4, D).",
        '#: ``prompt`` values GitHub documents (B1: "Forces the account picker',
        "    # A5: 400 for grant and request errors, 401 for client errors",
        "            # B4, GitHub's token-request error catalogue",
        "Written from documentation. A3/A5: [OBS] googleworkspace/go-samples#85",
        "Written from documentation. B3 [DOC] refreshing-user-access-tokens.md",
        "Headers: C1 [REC].",
        "# B4's error catalogue, each at HTTP 200 as GitHub sends them",
        "the 400 status follows A5's table",
        "A5 note: [LIB] google-auth",
        "Endpoints: B1 and B5",
        "the old one stays valid (providers.md A4 and D; the",
        "as ``reference/providers.md`` section A describes it.",
        "behave as ``reference/providers.md`` (sections A, B and D) documents",
        "Source: the project's provider reference (shared/reference/providers.md, sections B and",
        "see providers-catalog.md",
        '("Written from documentation. A5.", "# Written by hand from docs, NOT recorded", True)',
        "(GitHub's authorize parameters have no ``response_type``, B1).",
        "no refresh token when access tokens never expire (GitHub, B3).",
        "`refresh_transient`, which models a generic condition. Endpoints: A1",
    ],
)
def test_the_patterns_catch_each_citation_form_once_used(text: str) -> None:
    assert citation_problems(text), text


@pytest.mark.parametrize(
    "text",
    [
        "redacted as REDACTED-682c9652, the start of its SHA-256",
        "sha256:3b0c442a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2",
        'same_origin_target("/café?q=日本") == "/caf%C3%A9?q=%E6%97%A5%E6%9C%AC"',
        "RFC 6749 §4.1 and RFC 7636 §4.2",
        "the JWE algorithm A256GCM",
        "X-GitHub-Request-Id ED9C:7D77:4AD94EB:4B9CB5D:6480DA40",
        "RFC 6749 §5.2: https://www.rfc-editor.org/rfc/rfc6749#section-5.2",
        "access tokens start ``ya29.``; refresh tokens ``1//``",
        "See the section on refresh tokens and the A4 paper size",
        "[web-server page][web], the [discovery document][discovery-doc]",
        "encryption: A256GCM; ids: ED9C:7D77",
        "f(x, y) and Status: 204",
    ],
)
def test_the_patterns_leave_other_text_alone(text: str) -> None:
    assert citation_problems(text) == [], text


# -- the repository ---------------------------------------------------------------------


def test_no_tracked_file_cites_the_outside_reference() -> None:
    found: list[str] = []
    for name in tracked_files():
        path = ROOT / name
        if not path.is_file():
            continue  # deleted in the work tree, not yet in the index
        text = _read_text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for problem in citation_problems(line):
                found.append(f"{name}:{number}: {problem!r} in {line.strip()[:120]!r}")
    assert found == [], "label or file citations remain:\n" + "\n".join(found)


# -- docs/providers ---------------------------------------------------------------------


def workspace_provider_ids() -> list[str]:
    """Provider ids the workspace's plugins register, as keyturn finds them installed."""
    with keyturn.Keyturn(environ={}) as client:
        registered = client.registered_providers
    return sorted(pid for pid, reg in registered.items() if reg.distribution in WORKSPACE_PLUGINS)


def test_every_workspace_plugin_is_installed_and_registers_a_provider() -> None:
    with keyturn.Keyturn(environ={}) as client:
        distributions = {reg.distribution for reg in client.registered_providers.values()}
    assert distributions >= WORKSPACE_PLUGINS


def test_the_workspace_plugins_are_the_ones_its_pyproject_names() -> None:
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    dependencies = set(workspace["project"]["dependencies"])
    assert dependencies >= WORKSPACE_PLUGINS


def _sections(markdown: str) -> list[tuple[str, str]]:
    """``(heading, body)`` for each ``## `` section; deeper headings stay in their section."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)
    return [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts), 2)]


def _cites_https(body: str, definitions: dict[str, str]) -> bool:
    """Whether a section links an https source, inline or through a reference definition."""
    prose = re.sub(r"`[^`\n]*`", "", body)  # a URL in code is a fact, not a source
    if "https://" in prose:
        return True
    labels = re.findall(r"\]\[([^\]]+)\]", prose)
    return any(definitions.get(label, "").startswith("https://") for label in labels)


@pytest.mark.parametrize("provider_id", workspace_provider_ids())
def test_each_provider_has_a_page_citing_https_sources_in_every_section(
    provider_id: str,
) -> None:
    page = PROVIDER_DOCS / f"{provider_id}.md"
    assert page.is_file(), f"docs/providers/{provider_id}.md is missing"
    text = page.read_text("utf-8")
    definitions = dict(re.findall(r"^\[([^\]]+)\]: (\S+)", text, flags=re.MULTILINE))
    sections = _sections(text)
    assert sections, f"{page.name} has no '## ' sections"
    uncited = [heading for heading, body in sections if not _cites_https(body, definitions)]
    assert uncited == [], f"{page.name}: sections without an https source: {uncited}"


def test_the_workspace_registers_the_providers_documented_here() -> None:
    assert workspace_provider_ids() == [
        "apple",
        "auth0",
        "discord",
        "github",
        "gitlab",
        "google",
        "keycloak",
        "microsoft",
        "okta",
        "slack",
    ]


def test_the_section_check_can_fail() -> None:
    definitions = {"doc": "https://example.com/doc", "local": "../README.md"}
    assert _cites_https("See [the page][doc].", definitions)
    assert _cites_https("See https://example.com.", {})
    assert not _cites_https("Endpoint `https://example.com/token` only.", definitions)
    assert not _cites_https("See [the readme][local].", definitions)
    assert not _cites_https("No source at all.", definitions)
