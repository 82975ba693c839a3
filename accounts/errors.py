"""Domain errors raised by services; views and the API turn them into messages."""


class PortalError(Exception):
    """A request the rules refuse. `field` names the input that is wrong, if one is."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class NotAllowed(PortalError):
    def __init__(self, message: str):
        super().__init__(message, code="permission_denied")


class SeatLimitError(PortalError):
    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message, field=field, code="seat_limit")
