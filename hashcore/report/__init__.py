"""The carbon account of a run, and ``hashcore report RUN``.

::

    book = CarbonBook(AccountSettings(grid_intensity_g=380), start)
    book.add(t, dt, power_w, surplus_w=..., battery_w=..., gco2_per_kwh=..., hashes=...)
    book.account().write("run/")                   # account.json, account.csv

Modules: :mod:`account` (energy by source, Scope 2 emissions), :mod:`run` (a run folder),
:mod:`plots` (every picture of a run, simulated or live), :mod:`html` (the page),
:mod:`render` (the page and its pictures written: ``hashcore report``). Only the account
is imported here: the throttle books into it while it runs. Nothing here imports the
throttle.
"""

from hashcore.report.account import AccountSettings, CarbonAccount, CarbonBook

__all__ = ["AccountSettings", "CarbonAccount", "CarbonBook"]
