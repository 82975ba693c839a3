"""Staff console: the active refund policy with its sections, a simulator that runs
the engine for any account's lines on any date, and the review queue of refund requests."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, F, OuterRef
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from accounts import formatting
from accounts.admin import (
    DeadlineFilter,
    ReadOnlyAdmin,
    ReviewPageAdmin,
    StaffFilter,
    StaffStateFilter,
)
from accounts.errors import PortalError
from accounts.models import Account
from accounts.uploads import download
from billing import selectors as billing_selectors
from billing.models import Order, OrderLine
from billing.money import Money
from core.calendar import vendor_tz

from . import services
from .admin_forms import AskInfoForm, LineDecisionForm, ManualPayoutForm
from .models import RefundEvidence, RefundPayout, RefundRequest, RefundSimulation
from .policy import PRESETS, REASON_LABELS, REASONS


class PaidLineChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, line):
        return f"{line.description}: {formatting.money(line.amount, line.order.currency)}"


class SimulateForm(forms.Form):
    """Run the engine on an account's paid lines: the account is chosen first (its own
    GET form), then its lines are ticked, order by order."""

    account = forms.ModelChoiceField(
        queryset=Account.objects.order_by("name"), widget=forms.HiddenInput
    )
    lines = PaidLineChoice(
        queryset=OrderLine.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every paid line of the account.",
        error_messages={
            "invalid_choice": "%(value)s is not a paid line of this account.",
            "invalid_pk_value": "“%(pk)s” is not a line of this account.",
        },
    )
    on = forms.DateField(
        label="Request received on",
        help_text="The account's local date.",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    reason = forms.ChoiceField(choices=[(r, REASON_LABELS[r]) for r in REASONS])
    event = forms.DateField(
        required=False,
        label="Triggering event on",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    full_order = forms.BooleanField(required=False, label="Asks for the whole order")
    policy = forms.ChoiceField(choices=[(p.id, p.title) for p in PRESETS.values()])

    def __init__(self, *args, account: Account | None, **kwargs):
        super().__init__(*args, **kwargs)
        if account is not None:
            self.fields["lines"].queryset = (
                OrderLine.objects.filter(order__account=account, order__status=Order.Status.PAID)
                .select_related("order")
                .order_by("-order__paid_at", "order_id", "pk")
            )

    def orders(self) -> list[tuple]:
        """The account's paid orders, newest first, each with its lines' checkboxes."""
        grouped: dict = {}
        for box in self["lines"]:
            line = box.data["value"].instance
            grouped.setdefault(line.order, []).append(box)
        return list(grouped.items())


class AccountPickForm(forms.Form):
    account = forms.ModelChoiceField(
        queryset=Account.objects.order_by("name"),
        empty_label="Choose an account",
        widget=forms.Select(attrs={"data-autosubmit": ""}),
    )


@admin.register(RefundSimulation)
class RefundSimulationAdmin(ReadOnlyAdmin):
    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        preset = services.active_preset()
        pick = AccountPickForm(request.GET if "account" in request.GET else None)
        account = pick.cleaned_data["account"] if pick.is_bound and pick.is_valid() else None
        initial = {
            "account": account,
            "policy": preset.id,
            "reason": "no_longer_needed",
            "on": timezone.localdate(timezone.now(), account.tzinfo) if account else None,
        }
        # The lines are offered once an account is chosen; the engine runs once a date is given.
        run = account is not None and "on" in request.GET
        form = SimulateForm(request.GET if run else None, initial=initial, account=account)
        rows, error = [], ""
        if run and form.is_valid():
            data = form.cleaned_data
            chosen = data["lines"]
            lines = form.fields["lines"].queryset
            if chosen:
                lines = lines.filter(pk__in=[line.pk for line in chosen])
            lines = list(lines.order_by("order__paid_at", "pk")[:200])
            if not lines:
                error = f"{account.name} has no paid lines."
            else:
                decisions = services.decisions_for(
                    account=account,
                    lines=lines,
                    on=data["on"],
                    reason=data["reason"],
                    event=data["event"],
                    full_order=data["full_order"],
                    preset=PRESETS[data["policy"]],
                )
                if data["full_order"]:
                    lines = services.whole_orders(lines)
                for line in lines:  # shown to the currency's minor unit, never saved
                    line.amount = Money(line.amount, line.order.currency).rounded().amount
                rows = [(line, decisions[line.pk]) for line in lines]
        context = {
            **self.admin_site.each_context(request),
            "title": "Refund policy and simulator",
            "opts": self.model._meta,
            "preset": preset,
            "presets": PRESETS.values(),
            "pick": pick if pick.is_bound else AccountPickForm(),
            "account": account,
            "form": form,
            "orders": form.orders() if account else [],
            "rows": rows,
            "error": error,
        }
        return TemplateResponse(request, "admin/refunds/simulate.html", context)


# --- the review queue ----------------------------------------------------------------------

State = RefundRequest.State
# States in which staff decide lines and may ask the customer (not while waiting on them).
REVIEWABLE = (State.RECEIVED, State.ACKNOWLEDGED, State.IN_REVIEW)
CLOSABLE = (State.DECIDED, State.PAID, State.CREDITED)


def deadline_name(refund: RefundRequest) -> str:
    """Which deadline `next_deadline` is (services._next_deadline's choice)."""
    if refund.next_deadline is None:
        return ""
    if refund.state == State.RECEIVED and refund.next_deadline == refund.ack_due_at:
        return "acknowledge"
    if refund.state in (State.DECIDED, State.PAYING):
        return "pay out"
    return "decide"


def _money(amount, currency: str) -> str:
    return f"{Money(amount, currency).rounded().amount} {currency}"


def _pk(raw) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError) as exc:
        raise Http404("No such row.") from exc
    if not 0 < value < 2**63:
        raise Http404("No such row.")
    return value


class PayoutStatusFilter(admin.SimpleListFilter):
    """Requests by the status of their payouts (?payouts__status__exact=failed), as one
    EXISTS over the open payouts' index: a join would make the list DISTINCT over whole
    rows, and its count with it."""

    title = "payout status"
    parameter_name = "payouts__status__exact"

    def lookups(self, request, model_admin):
        return RefundPayout.Status.choices

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(
            Exists(RefundPayout.objects.filter(request=OuterRef("pk"), status=self.value()))
        )


class PresetFilter(admin.SimpleListFilter):
    """Requests by the policy preset they were decided under (?preset=onecrm): the
    presets are the code's, so listing them reads no row."""

    title = "preset"
    parameter_name = "preset"

    def lookups(self, request, model_admin):
        return [(preset_id, preset_id) for preset_id in PRESETS]

    def queryset(self, request, queryset):
        return queryset if self.value() is None else queryset.filter(preset=self.value())


@admin.register(RefundRequest)
class RefundRequestAdmin(ReviewPageAdmin):
    """The refund review queue: sorted by the next deadline, one review page per request.

    Requests arrive from customers and change only through the services: rows are never
    added, edited as a form, or deleted here.
    """

    list_display = [
        "number",
        "account",
        "staff_state",
        "outcome",
        "holder",
        "channel",
        "preset",
        "next_due",
        "badges",
    ]
    list_filter = [
        ("state", StaffStateFilter),
        DeadlineFilter,
        ("holder", StaffFilter),
        "channel",
        PresetFilter,
        PayoutStatusFilter,
    ]
    search_fields = ["number", "account__name", "order__number"]
    list_select_related = ["account", "holder"]
    list_defer = ("text",)
    # The index refund_console_queue holds the rows in this order.
    ordering = [F("next_deadline").asc(nulls_last=True), "id"]
    actions = ["acknowledge", "take"]
    review_template = "admin/refunds/refundrequest/review.html"
    badge_prefix = "refund"
    transition_keys = ("state", "holder")
    vendor_tz = staticmethod(vendor_tz)

    # --- the queue -------------------------------------------------------------------------

    def lookup_allowed(self, lookup, value, request=None):
        # The payout filter's parameter spans a relation, which only field filters may.
        return lookup == PayoutStatusFilter.parameter_name or super().lookup_allowed(
            lookup, value, request
        )

    @admin.display(description="Next deadline", ordering="next_deadline")
    def next_due(self, refund):
        if refund.next_deadline is None:
            return "—"
        local = refund.next_deadline.astimezone(vendor_tz())
        return f"{deadline_name(refund)} by {local:%a} {local.day} {local:%b %Y}"

    @admin.display(description="Badges", ordering="next_deadline")
    def badges(self, refund):
        return self.render_badges(refund, timezone.now())

    def _bulk(self, request, queryset, run, done, *, skip=None):
        for refund in queryset.order_by("pk"):
            refusal = skip(refund) if skip else ""
            if refusal:
                self.message_user(request, f"{refund.number}: {refusal}", messages.WARNING)
                continue
            try:
                refund = run(actor=request.user, request=refund)
            except PortalError as exc:
                self.message_user(request, f"{refund.number}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{refund.number}: {done(refund)}", messages.SUCCESS)

    @admin.action(description="Acknowledge", permissions=["change"])
    def acknowledge(self, request, queryset):
        self._bulk(
            request,
            queryset,
            services.refund_request_acknowledge,
            lambda refund: f"acknowledged, held by {refund.holder}.",
            skip=lambda refund: (
                ""
                if refund.state == State.RECEIVED
                else f"{refund.staff_state_label.lower()}: nothing to acknowledge."
            ),
        )

    @admin.action(description="Take and start review", permissions=["change"])
    def take(self, request, queryset):
        self._bulk(
            request,
            queryset,
            services.refund_request_take,
            lambda refund: f"you hold it; {refund.staff_state_label.lower()}.",
            skip=lambda refund: (
                "" if refund.is_open else f"{refund.staff_state_label.lower()}: nothing to take."
            ),
        )

    # --- one request: the review page -----------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/evidence/<int:evidence_id>/",
                self.admin_site.admin_view(self.evidence_view),
                name="{}_{}_evidence".format(*info),
            ),
            *super().get_urls(),
        ]

    def evidence_view(self, request, object_id, evidence_id):
        """A customer's evidence file, for staff who may see the request only."""
        refund = self._get_viewable(request, object_id)
        evidence = get_object_or_404(RefundEvidence, pk=evidence_id, request=refund)
        return download(evidence.file, name=evidence.name, content_type=evidence.content_type)

    def _perform(self, request, refund, action, posted):
        """Run the action posted and say what was done; a form bound from the post goes
        in posted["form"], so that a refusal shows it again with its input."""
        user = request.user
        if action == "take":
            refund = services.refund_request_take(actor=user, request=refund)
            done = f"You hold {refund.number}; it is {refund.staff_state_label.lower()}."
        elif action == "acknowledge":
            refund = services.refund_request_acknowledge(actor=user, request=refund)
            done = f"{refund.number} is {refund.staff_state_label.lower()}."
        elif action == "line":
            line = get_object_or_404(
                refund.lines.select_related("order_line"), pk=_pk(request.POST.get("line"))
            )
            form = posted["form"] = LineDecisionForm(request.POST, line=line)
            if not form.is_valid():
                raise PortalError("Correct the decision below.")
            data = form.cleaned_data
            line = services.refund_line_decide(
                actor=user,
                line=line,
                approve=form.approve,
                amount=data["amount"].strip() or None,
                reason=data["reason"],
            )
            if line.decision == "approved":
                done = (
                    f"{form.line.order_line.description}: "
                    f"{_money(line.approved_amount, refund.currency)} approved."
                )
            else:
                done = f"{form.line.order_line.description}: denied."
        elif action == "ask":
            form = posted["form"] = AskInfoForm(request.POST)
            if not form.is_valid():
                raise PortalError("Correct the question below.")
            refund = services.refund_request_ask_info(
                actor=user, request=refund, question=form.cleaned_data["question"]
            )
            done = f"{refund.number}: the customer was asked; the clock stops until they answer."
        elif action == "decide":
            refund = services.refund_request_decide(actor=user, request=refund)
            done = (
                f"{refund.number} decided: {refund.get_outcome_display().lower()}, "
                f"{_money(refund.approved_total, refund.currency)}; it is "
                f"{refund.staff_state_label.lower()}."
            )
        elif action == "close":
            refund = services.refund_request_close(actor=user, request=refund)
            done = f"{refund.number} is closed."
        elif action in ("record_payout", "retry", "another_way"):
            payout = get_object_or_404(refund.payouts.all(), pk=_pk(request.POST.get("payout")))
            if action == "another_way":
                payout = services.refund_payout_pay_another_way(
                    actor=user, payout=payout, method=request.POST.get("method", "")
                )
                done = (
                    f"The {_money(payout.amount, payout.currency)} is paid by bank transfer "
                    "instead: record the transfer once it is made."
                    if payout.method == "manual"
                    else f"The {_money(payout.amount, payout.currency)} is paid as account "
                    "credit instead."
                )
            elif action == "retry":
                payout = services.refund_payout_retry(actor=user, payout=payout)
                done = f"The {payout.get_method_display().lower()} is tried again."
            else:
                form = posted["form"] = ManualPayoutForm(request.POST, payout=payout)
                if not form.is_valid():
                    raise PortalError("Correct the reference below.")
                payout = services.refund_payout_record_manual(
                    actor=user, payout=payout, reference=form.cleaned_data["reference"]
                )
                refund.refresh_from_db()
                done = (
                    f"Payout of {_money(payout.amount, payout.currency)} recorded "
                    f"({payout.reference}); {refund.number} is "
                    f"{refund.staff_state_label.lower()}."
                )
        else:
            raise PortalError("Choose an action.")
        return done

    def _review(self, request, refund, bound, extra_context=None):
        can_act = self.has_change_permission(request, refund)
        reviewable = refund.state in REVIEWABLE
        lines = list(refund.lines.select_related("order_line__order", "decided_by"))
        # What each purchase had back already, and by which requests (billing's record).
        had_back = billing_selectors.line_refunds(line_ids=[line.order_line_id for line in lines])
        line_rows = []
        for line in lines:
            form = None
            if can_act and reviewable:
                form = bound.get(f"line-{line.pk}") or LineDecisionForm(line=line)
            left = services.line_left(line.order_line, request=refund)[0] if reviewable else None
            line_rows.append((line, form, had_back.get(line.order_line_id, []), left))
        payout_rows = []
        for payout in refund.payouts.all():
            form = None
            if (
                can_act
                and payout.method == RefundPayout.Method.MANUAL
                and payout.status != RefundPayout.Status.SUCCEEDED
            ):
                form = bound.get(f"payout-{payout.pk}") or ManualPayoutForm(payout=payout)
            payout_rows.append((payout, form))
        pending = sum(1 for line in lines if line.decision == "pending")
        # Before the decision the request's total is not set yet: what the lines approved so far.
        approved_so_far = (
            refund.approved_total
            if refund.decided_at
            else sum((line.approved_amount or 0 for line in lines), Decimal(0))
        )
        now = timezone.now()
        tz = vendor_tz()
        deadlines = [
            (name, due.astimezone(tz))
            for name, due in (
                ("Acknowledge by", refund.ack_due_at),
                ("Decide by", refund.decide_due_at),
                ("Pay out by", refund.payout_due_at),
            )
            if due is not None
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Refund request {refund.number}",
            "subtitle": None,
            "opts": self.opts,
            "original": refund,
            "refund": refund,
            "has_view_permission": True,
            "can_act": can_act,
            "reason_label": REASON_LABELS.get(refund.reason, refund.reason),
            "badges": self.render_badges(refund, now),
            "next_deadline_name": deadline_name(refund),
            "deadlines": deadlines,
            "vendor_timezone": str(tz),
            "line_rows": line_rows,
            "payout_rows": payout_rows,
            "evidence": list(refund.evidence.all()),
            "thread": list(refund.messages.select_related("author")),
            "history": self.history(refund),
            "pending": pending,
            "approved_total": approved_so_far,
            "may_take": can_act and refund.is_open and refund.holder_id != request.user.pk,
            "may_acknowledge": can_act and refund.state == State.RECEIVED,
            "may_ask": can_act and reviewable,
            "ask_form": (bound.get("ask") or AskInfoForm()) if can_act and reviewable else None,
            "may_decide": can_act and reviewable and pending == 0,
            "may_close": can_act and refund.state in CLOSABLE,
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.review_template, context)
