"""The vendor's business calendar now lives in core.calendar."""

from core.calendar import vendor_holidays

__all__ = ["vendor_holidays"]
