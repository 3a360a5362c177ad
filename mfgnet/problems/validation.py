"""The error type raised for bad problem or solver input."""


class ProblemError(ValueError):
    """Raised when a problem, solver or config field is out of its allowed range.

    The message always names the field and the allowed values.
    """


def require(condition: bool, message: str) -> None:
    """Raise :class:`ProblemError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ProblemError(message)
