"""Which price terms fit which kind of product. Pure rules, used by the console and services."""

from decimal import Decimal

ONE_OFF_KINDS = {
    "credit_pack",
    "quota_addon",
    "perpetual_license",
    "plugin",
    "service",
    "support_incident",
    "app_one_time",
}
RECURRING_KINDS = {"subscription", "premium_feature", "support_contract", "app_subscription"}
# Usage is priced per unit consumed and billed at the end of each period.
USAGE_KINDS = {"usage", "app_usage"}
# Per-user pricing: plans, per-user features, licences for N users and their
# support (1CRM terms: "support is an additional amount per user annually").
PER_SEAT_KINDS = {
    "subscription",
    "premium_feature",
    "perpetual_license",
    "support_contract",
    "app_subscription",
}


def price_terms_refusal(
    *, kind: str, edition: str, interval: str, scheme: str, amount
) -> str | None:
    """Why a price with these terms cannot be sold for a product of this kind, or None."""
    if kind in RECURRING_KINDS and interval not in ("month", "year"):
        return "A recurring product is priced monthly or yearly."
    if kind in USAGE_KINDS and interval != "month":
        return "Usage is priced per unit and billed monthly."
    if kind in ONE_OFF_KINDS and interval != "one_off":
        return "This kind of product is paid once (one-off)."
    if scheme == "per_seat" and kind not in PER_SEAT_KINDS:
        return "Only plans, per-user features, licences and support contracts are priced per seat."
    if kind == "app_external":
        return "An app paid outside the portal has no price here."
    if edition == "startup" and Decimal(amount) != 0:
        return "The Startup Edition is a free download: its price is 0."
    return None
