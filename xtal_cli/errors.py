"""The one exception type the command line turns into a one-line message and exit code 2."""


class XtalError(Exception):
    """An expected problem with the user's input or environment.

    The message names the file (when there is one), says what is wrong and, where it helps,
    what to do: ``"<file>: <what is wrong>; <what to do>"``. The CLI prints it as one line and
    exits with status 2; it never shows a traceback for it.
    """
