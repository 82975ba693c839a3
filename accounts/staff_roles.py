"""The vendor's staff roles, as groups with matching permissions.

Later apps add their permissions here; `sync_staff_roles` runs after every
migrate, so the groups always match this table.
"""

STAFF_ROLES = {
    "Administrator": [
        "accounts.view_user",
        "accounts.change_user",
        "accounts.view_account",
        "accounts.change_account",
        "accounts.add_account",
        "accounts.view_membership",
        "accounts.change_membership",
        "accounts.view_invitation",
        "accounts.view_reseller",
        "accounts.add_reseller",
        "accounts.change_reseller",
        "accounts.view_auditevent",
        "auth.view_group",
        "billing.view_ledgerentry",
        "billing.add_ledgerentry",
        "billing.view_product",
        "billing.add_product",
        "billing.change_product",
        "billing.view_price",
        "billing.add_price",
        "billing.change_price",
        "billing.view_order",
        "billing.change_order",
        "billing.view_payment",
        "billing.change_payment",
        "billing.view_linerefund",
        "billing.view_subscription",
        "billing.view_licence",
        "billing.change_licence",
        "billing.view_usagerecord",
        "billing.view_credituse",
        "billing.view_invoice",
        "billing.view_creditnote",
        "billing.view_billingdetails",
        "refunds.view_refundsimulation",
        "refunds.view_refundrequest",
        "refunds.change_refundrequest",
        "refunds.view_refundpayout",
        "refunds.view_inboundmail",
        "refunds.change_inboundmail",
        "support.view_incident",
        "support.change_incident",
        "support.view_maintenancenotice",
        "support.add_maintenancenotice",
        "support.change_maintenancenotice",
        "marketplace.view_developer",
        "marketplace.add_developer",
        "marketplace.change_developer",
        "marketplace.view_app",
        "marketplace.add_app",
        "marketplace.change_app",
        "marketplace.view_plan",
        "marketplace.add_plan",
        "marketplace.change_plan",
        "marketplace.view_installation",
        "marketplace.view_appusage",
        "marketplace.view_webhookdelivery",
        "marketplace.change_webhookdelivery",
        "marketplace.view_earning",
        "marketplace.view_developerpayout",
        "marketplace.add_developerpayout",
    ],
    "Billing reviewer": [
        "accounts.view_user",
        "accounts.view_account",
        "accounts.view_membership",
        "accounts.view_invitation",
        "accounts.view_reseller",
        "accounts.view_auditevent",
        "billing.view_ledgerentry",
        "billing.add_ledgerentry",
        "billing.view_product",
        "billing.view_price",
        "billing.view_order",
        "billing.change_order",
        "billing.view_payment",
        "billing.change_payment",
        "billing.view_linerefund",
        "billing.view_subscription",
        "billing.view_licence",
        "billing.change_licence",
        "billing.view_usagerecord",
        "billing.view_credituse",
        "billing.view_invoice",
        "billing.view_creditnote",
        "billing.view_billingdetails",
        "refunds.view_refundsimulation",
        "refunds.view_refundrequest",
        "refunds.change_refundrequest",
        "refunds.view_refundpayout",
        "refunds.view_inboundmail",
        "refunds.change_inboundmail",
        "marketplace.view_developer",
        "marketplace.view_app",
        "marketplace.view_plan",
        "marketplace.view_installation",
        "marketplace.view_appusage",
        "marketplace.view_webhookdelivery",
        "marketplace.change_webhookdelivery",
        "marketplace.view_earning",
        "marketplace.view_developerpayout",
        "marketplace.add_developerpayout",
    ],
    "Support agent": [
        "accounts.view_user",
        "accounts.view_account",
        "accounts.view_membership",
        "accounts.view_reseller",
        "accounts.view_auditevent",
        "billing.view_product",
        "billing.view_price",
        "billing.view_subscription",
        "billing.view_licence",
        "support.view_incident",
        "support.change_incident",
        "support.view_maintenancenotice",
        "support.add_maintenancenotice",
        "support.change_maintenancenotice",
        "marketplace.view_developer",
        "marketplace.view_app",
        "marketplace.view_installation",
    ],
}


def sync_staff_roles(sender=None, using="default", **kwargs):
    from django.contrib.auth.models import Group, Permission

    for name, perms in STAFF_ROLES.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            perm = (
                Permission.objects.using(using)
                .filter(content_type__app_label=app_label, codename=codename)
                .first()
            )
            if perm is not None:  # an app not migrated yet; the next migrate adds it
                wanted.append(perm)
        group.permissions.set(wanted)
