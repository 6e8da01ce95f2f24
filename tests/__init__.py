"""keyturn's tests, one folder per area of the repository.

- ``core``: the client (keyturn), its callbacks, lifecycle, token parsing, secrets,
  single-flight, plugins and CLI, against in-memory fakes (``conftest.py``).
- ``providers``: one home per provider plugin (Google, GitHub, GitLab, and the tutorial's
  example, Spotify from examples/keyturn-spotify): its behaviour, its cassette replays, the
  conformance suite.
- ``stores``: the token stores and the token manager, over memory, SQLite and Redis.
- ``web``: keyturn.web, module by module, and keyturn.starlette; attacks; several instances.
- ``e2e``: whole runs against the emulator: in Chromium, in the Flask example, under stress,
  the benchmarks.
- ``tools``: the tool distributions: the emulator and the demo, pytest-keyturn (recorder,
  scaffold, pytest plugin, cassette hygiene).
- ``packaging``: the wheels, built and installed into fresh virtual environments.
- ``docs``: the README and docs agree with the code.

Markers (pyproject.toml): ``browser``, ``redis``, ``slow``, ``packaging``.
"""
