"""The tool distributions: keyturn-emulator (the emulator, the demo) and pytest-keyturn (the
recorder, the new-provider scaffold, the pytest plugin, cassette hygiene)."""
