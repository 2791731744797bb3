"""The one exception type the command line turns into a one-line message and exit code 2."""


class XtalError(Exception):
    """An expected problem with the user's input or environment.

    The message names the file (when there is one), says what is wrong and, where it helps,
    what to do: ``"<file>: <what is wrong>; <what to do>"``. The CLI prints it as one line and
    exits with status 2; it never shows a traceback for it.
    """


class ParameterError(XtalError, ValueError):
    """A setting with a value it cannot take, named by its Python parameter name.

    Library users read ``negatives='all': use one of random, hardest``; the command line swaps
    the name for its flag (:func:`xtal_cli.commands._common.handle_errors`), so a user of
    ``xtal`` reads ``--negatives all: ...`` instead.
    """

    def __init__(self, parameter: str, value, problem: str):
        self.parameter, self.value, self.problem = parameter, value, problem
        super().__init__(f"{parameter}={value!r}: {problem}")

    def __reduce__(self):  # a worker process's error must survive the trip back (pickle)
        return (type(self), (self.parameter, self.value, self.problem))

    def with_flag(self, flag: str) -> str:
        """The message as the command line prints it, naming *flag* instead of the parameter."""
        values = self.value if isinstance(self.value, (tuple, list)) else (self.value,)
        shown = " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
        return f"{flag} {shown}: {self.problem}"
