"""One home per provider plugin: its documented behaviour, its cassette replays, and keyturn's
conformance suite over those cassettes."""
