"""keyturn's conformance suite, run on this plugin's cassettes."""

from pathlib import Path

from pytest_keyturn import ProviderConformance


class TestConformance(ProviderConformance):
    provider = "spotify"
    cassettes = Path(__file__).parent.parent / "cassettes"
