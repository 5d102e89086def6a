"""The ``hashcore`` command line: one module per subcommand (parsing and printing only;
the work is :mod:`hashcore.app`'s), :mod:`~hashcore.cli.common` for what they share and
:mod:`~hashcore.cli.main` assembling them."""

from hashcore.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
