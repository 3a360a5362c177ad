"""The error type raised for bad problem or solver input, and checks that raise it."""

import functools
import inspect
import math
from collections.abc import Callable


class ProblemError(ValueError):
    """Raised when a problem, solver or config field is out of its allowed range.

    The message always names the field and the allowed values.
    """


def require(condition: bool, message: str) -> None:
    """Raise [`ProblemError`][mfgnet.problems.validation.ProblemError] with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ProblemError(message)


def argument_count(fn: Callable, default: int) -> int:
    """How many parameters ``fn`` declares (``default`` when Python cannot tell, e.g. a builtin)."""
    try:
        return len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return default


def finite_parameters(builder: Callable) -> Callable:
    """Decorate a problem builder: every float argument must be finite.

    NaN or inf in a parameter (``aversion=nan``, ``kappa=inf``) would otherwise surface as a
    FloatingPointError deep inside the first residual; this names the parameter instead.
    """
    signature = inspect.signature(builder)

    @functools.wraps(builder)
    def checked(*args, **kwargs):
        for name, value in signature.bind(*args, **kwargs).arguments.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ProblemError(f"{builder.__name__}: {name} must be a finite number, got {value!r}")
        return builder(*args, **kwargs)

    return checked
