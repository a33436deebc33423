"""One exception type for user mistakes.

Anything a user can cause (bad argument, missing file, wrong checksum) raises
`UserError`; the CLI prints its message as one line and exits with code 2.
Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem the user can fix; its message is the whole explanation."""
