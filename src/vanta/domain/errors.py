"""Domain errors.

DomainError
├── ValidationFailed      bad input; carries a stable ``code`` and the offending ``field``
├── NotFound              an entity the caller named does not exist (or is not theirs)
├── Conflict              the request contradicts current state (e.g. vault in maintenance)
├── InvalidTransition     a state table refused a move
└── NotEntitled           the tenant's plan does not include the feature
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises; ``code`` is stable and machine-readable."""

    code: str = "domain_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ValidationFailed(DomainError):
    code = "validation_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class InvalidTransition(DomainError):
    code = "invalid_transition"


class NotEntitled(DomainError):
    code = "plan_lacks_feature"
