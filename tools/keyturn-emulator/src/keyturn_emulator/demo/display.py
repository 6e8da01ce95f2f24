"""The demo on screen: a timeline with one line per step, countdowns, and a summary.

On a terminal, with rich: colours, a progress bar counting down each wait, a summary table.
When stdout is not a terminal (a pipe, a file, CI logs): the same lines in plain text, no
colour, no bars, no wrapping, and a plain summary. ``NO_COLOR`` is honoured, as rich does.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from .observer import Observer
from .report import DemoReport, Event, ProviderSummary

__all__ = ["Display"]

#: How each step is labelled on its line, and its colour.
_LABELS: dict[str, tuple[str, str]] = {
    "authorize": ("authorize", "cyan"),
    "sign_in": ("sign-in", "green"),
    "keys": ("keys", "yellow"),
    "refresh": ("refresh", "green"),
    "rotation_check": ("old token", "yellow"),
    "concurrent": ("concurrent", "magenta"),
    "revoke": ("revoke", "red"),
    "refresh_refused": ("refresh", "red"),
    "no_retry": ("jwt() again", "yellow"),
    "sign_in_again": ("sign-in again", "green"),
}
_LABEL_WIDTH = max(len(label) for label, _ in _LABELS.values())


def _requests(requests: dict[str, int]) -> str:
    if not requests:
        return "no request"
    return ", ".join(f"{name} {count}" for name, count in requests.items())


def _summary_cells(item: ProviderSummary) -> list[str]:
    return [
        item.provider,
        "ok" if item.sign_in else "failed",
        str(item.refreshes),
        "yes" if item.rotation else "no (kept)",
        str(item.concurrent_callers),
        str(item.concurrent_refresh_requests),
        str(item.error) if item.revocation_detected else "not detected",
        "ok" if item.re_sign_in else "failed",
        f"{item.elapsed:.1f} s",
    ]


_SUMMARY_HEADERS = [
    "provider",
    "sign-in",
    "refreshes",
    "rotation",
    "concurrent callers",
    "refresh requests",
    "after revocation",
    "re-sign-in",
    "time",
]


class Display(Observer):
    """Shows the demo as it runs.

    :param console: where to write; a console on stdout by default (rich decides from it
        whether this is a terminal).
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)

    @property
    def live(self) -> bool:
        """Whether bars and colours are used (stdout is a terminal)."""
        return self.console.is_terminal

    def _line(self, text: Text | str, style: str = "") -> None:
        self.console.print(text, style=style, soft_wrap=True, highlight=False)

    def begin(self, report: DemoReport) -> None:
        settings = report.settings
        self._line(
            Text.assemble(
                ("keyturn demo", "bold"),
                f": a local OAuth provider at {report.emulator}; access tokens live "
                f"{settings['access_token_lifetime']} s and count as due "
                f"{settings['leeway']:g} s before expiry (leeway). Tokens are shown by "
                "fingerprint (first 8 hex of their SHA-256), never in clear.",
            )
        )

    def provider(self, provider: str, name: str, origin: str) -> None:
        self._line("")
        self._line(Text.assemble((f"{name}", "bold"), f" ({provider}): {origin}"))

    def event(self, event: Event) -> None:
        label, colour = _LABELS.get(event.step, (event.step, ""))
        line = Text()
        line.append(f"{event.at:7.2f}s  ", style="dim")
        line.append(f"{label:<{_LABEL_WIDTH}}  ", style=f"bold {colour}".strip())
        line.append(event.text)
        line.append(f"  [{_requests(event.requests)}]", style="dim")
        self._line(line)

    def wait(self, seconds: float, reason: str) -> None:
        if not self.live:
            self._line(f"{'':9}waiting {seconds:.1f} s for {reason}")
            time.sleep(seconds)
            return
        end = time.monotonic() + seconds
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[left]}"))
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(f"{'':9}waiting for {reason}", total=seconds, left="")
            while (left := end - time.monotonic()) > 0:
                progress.update(task, completed=seconds - left, left=f"{left:4.1f} s left")
                time.sleep(min(0.1, left))

    def end(self, report: DemoReport) -> None:
        self._line("")
        if self.live:
            table = Table(title="summary", title_justify="left")
            for header in _SUMMARY_HEADERS:
                table.add_column(header)
            for item in report.summaries:
                table.add_row(*_summary_cells(item))
            self.console.print(table)
        else:
            self._line("summary")
            for item in report.summaries:
                cells = _summary_cells(item)
                pairs = zip(_SUMMARY_HEADERS[1:], cells[1:], strict=True)
                self._line(f"  {cells[0]}: " + "; ".join(f"{k} {v}" for k, v in pairs))
        self._line(
            Text.assemble(
                ("every check passed", "bold green"),
                f" in {report.elapsed:.1f} s",
            )
        )
