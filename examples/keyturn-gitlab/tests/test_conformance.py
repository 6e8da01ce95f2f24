"""keyturn's conformance suite, run on this plugin's cassettes."""

from pathlib import Path

from keyturn.testing import ProviderConformance


class TestConformance(ProviderConformance):
    provider = "gitlab"
    cassettes = Path(__file__).parent.parent / "cassettes"
