"""One module per subcommand; each defines ``register(app)``.

Modules here are thin: they parse options, call the library and print. Heavy libraries (pymatgen,
torch, sklearn) are imported inside the command functions so that ``xtal --help`` stays fast.
Shared helpers for all commands live in :mod:`xtal_cli.commands._common`.
"""
