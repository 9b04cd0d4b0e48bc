"""The one exception class that separates a request the runtime refuses from a bug.

The server answers ``RequestError`` (and its subclasses, e.g. core.retarget.rig.RigError) with an
error of kind ``bad_request``: the user can fix the input (a rig description, arrays, weights,
options, a request too large to run: core.runtime.check_request). Anything else raised while a
request runs, and a result holding NaN or infinite values, is a bug in the runtime or a stylizer
and is answered with kind ``internal`` and its traceback. It subclasses ValueError so callers that caught
ValueError for bad input (the command line, model config loading) keep working.
"""

from __future__ import annotations


class RequestError(ValueError):
    """Input the runtime rejects; the message says what is wrong and how to fix it."""
