"""The steps of one provider's tour, one module each, in the order they run.

1. :mod:`.sign_in`: sign in through the real authorize URL (and, last,
   sign in again after revocation);
2. :mod:`.refresh`: refresh a due token, rotation or keeping checked;
3. :mod:`.concurrent`: many callers at one due token, one refresh;
4. :mod:`.revocation`: the grant revoked, ``RefreshAccessTokenError``.

Each step takes the :class:`..tour.Tour` and the token so far, writes its events,
and raises :class:`..failure.DemoFailure` when what it shows is not so.
:func:`..scenario.run_demo` runs them.
"""
