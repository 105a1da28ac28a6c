"""Errors of a training run, with the stable codes a job's `error.code` shows.

The worker reports them to the server through the worker protocol; they are never HTTP
errors. A `UserError` is caused by what the user asked for and is never retried; any other
exception ends the attempt as a system error, which the server retries.
"""

from __future__ import annotations


class TrainerError(Exception):
    """An error with a stable machine-readable code and a message meant for people."""

    code = "trainer_error"
    retryable = True

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class UserError(TrainerError):
    """A job failure caused by what the user asked for (bad data, missing model): never retried."""

    code = "user_error"
    retryable = False
