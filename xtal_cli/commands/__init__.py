"""One module per subcommand; each defines ``register(app)``.

Modules here are thin: they parse options, call the library and print. Heavy libraries
(pymatgen, torch, sklearn) are imported inside the command functions so that ``xtal --help``
stays fast. Option declarations and ``register`` share one shape in every command, which
``duplicates`` lists as same-shape pairs: deliberate.
Shared helpers for all commands live in :mod:`xtal_cli.commands._common`.
"""
