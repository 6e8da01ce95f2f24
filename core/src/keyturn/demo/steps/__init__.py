"""The steps of one provider's tour, one module each, in the order they run.

1. :mod:`~keyturn.demo.steps.sign_in`: sign in through the real authorize URL (and, last,
   sign in again after revocation);
2. :mod:`~keyturn.demo.steps.refresh`: refresh a due token, rotation or keeping checked;
3. :mod:`~keyturn.demo.steps.concurrent`: many callers at one due token, one refresh;
4. :mod:`~keyturn.demo.steps.revocation`: the grant revoked, ``RefreshAccessTokenError``.

Each step takes the :class:`~keyturn.demo.tour.Tour` and the token so far, writes its events,
and raises :class:`~keyturn.demo.failure.DemoFailure` when what it shows is not so.
:func:`~keyturn.demo.scenario.run_demo` runs them.
"""
