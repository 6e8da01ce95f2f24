"""The distributions as users get them: wheels built and installed into fresh venvs."""
