from billing.models import OrderLine


class RefundSimulation(OrderLine):
    """The console's entry for the refund policy: its preset, sections and simulator.

    A proxy, so that the console lists it and its permission can be granted to staff.
    """

    class Meta:
        proxy = True
        verbose_name = "refund policy and simulator"
        verbose_name_plural = "refund policy and simulator"
