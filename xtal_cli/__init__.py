"""xtal: powder X-ray diffraction from the command line.

The command-line layer lives in :mod:`xtal_cli.cli`; everything it calls is an importable library
(``xtal_cli.io``, ``xtal_cli.xrd``, ``xtal_cli.symmetry``, ``xtal_cli.refine``, ``xtal_cli.embed``).
"""

__version__ = "0.1.0"
