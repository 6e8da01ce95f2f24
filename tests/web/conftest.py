"""Fixtures of the web tests: the emulator (one per module, its knobs reset for every test),
the app factory, and the session strategy each test runs over."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ._site import KINDS, MakeSite, World, fresh, sites, start_world


@pytest.fixture(scope="module")
def shared_world() -> Iterator[World]:
    yield from start_world()


@pytest.fixture
def world(shared_world: World) -> World:
    return fresh(shared_world)


@pytest.fixture
async def make_site(world: World, tmp_path: Path) -> AsyncIterator[MakeSite]:
    async with sites(world, tmp_path) as make:
        yield make


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)
