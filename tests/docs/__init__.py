"""The README and the docs agree with the code."""
