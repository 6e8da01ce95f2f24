"""Test support for keyturn and its provider plugins: cassette settings and scrubbing."""
