"""Staff console for users, accounts, memberships, invitations and the audit trail."""

from urllib.parse import quote as urlquote

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.translation import gettext
from rest_framework.authtoken.models import TokenProxy

from . import selectors, services
from .errors import PortalError
from .models import Account, AuditEvent, Invitation, Membership, Reseller, User


class AuditedAdmin(admin.ModelAdmin):
    """Saves go through `staff_object_save`, which writes the audit row."""

    def save_model(self, request, obj, form, change):
        services.staff_object_save(
            actor=request.user,
            obj=obj,
            form=form,
            changed_fields=form.changed_data,
            created=not change,
        )

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only services write (invitations, the audit trail): staff read them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(BaseUserAdmin, AuditedAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_active", "groups"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["full_name"]}),
        ("Staff", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"fields": ["email", "password1", "password2"]})]
    readonly_fields = ["last_login", "date_joined"]
    filter_horizontal = ["groups"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not request.user.is_superuser:
            # Only superusers grant staff powers or change a login's address.
            fields += ["email", "is_staff", "is_superuser", "groups"]
        return fields

    def user_change_password(self, request, id, form_url=""):
        if not request.user.is_superuser:
            raise PermissionDenied("Only superusers set passwords; users reset their own.")
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = User.objects.get(pk=id)
            services.audit_record(
                actor=request.user, action="user.password_set_by_staff", target=user
            )
        return response


# API keys are credentials: they are not shown in the console.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ["user", "role", "has_seat", "is_active", "is_support_contact", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class AccountAdminForm(forms.ModelForm):
    """Status and seats are checked by the rules the services apply."""

    class Meta:
        model = Account
        fields = ["name", "status", "timezone", "reseller", "seats_paid"]

    def clean_status(self):
        status = self.cleaned_data["status"]
        refusal = services.account_status_refusal(
            current=self.instance.status, new=status, account=self.instance
        )
        if refusal:
            raise forms.ValidationError(refusal)
        return status

    def clean_seats_paid(self):
        seats = self.cleaned_data["seats_paid"]
        if seats != self.instance.seats_paid:
            refusal = services.seats_paid_refusal(
                account=self.instance, seats_paid=seats, now=timezone.now()
            )
            if refusal:
                raise forms.ValidationError(refusal)
        return seats


@admin.register(Account)
class AccountAdmin(AuditedAdmin):
    """Accounts are created by signing up (each with its owner and support contact)."""

    form = AccountAdminForm
    list_display = [
        "name",
        "status",
        "seats_paid",
        "seats_in_use",
        "currency",
        "timezone",
        "reseller",
        "created_at",
    ]
    list_filter = ["status", "currency", "reseller"]
    search_fields = ["name", "memberships__user__email"]
    fields = ["name", "status", "timezone", "currency", "reseller", "seats_paid", "created_at"]
    readonly_fields = ["currency", "created_at"]
    inlines = [MembershipInline]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        changed = set(form.changed_data)
        plain = [f for f in form.changed_data if f not in ("status", "seats_paid")]
        if plain:
            services.staff_object_save(actor=request.user, obj=obj, form=form, changed_fields=plain)
        if "seats_paid" in changed:
            services.account_set_seats_paid(
                actor=request.user, account=obj, seats_paid=form.cleaned_data["seats_paid"]
            )
        if "status" in changed:
            services.account_set_status(
                actor=request.user, account=obj, status=form.cleaned_data["status"]
            )

    @admin.display(description="Seats in use")
    def seats_in_use(self, account):
        return selectors.seat_usage(account=account, now=timezone.now()).used


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "account", "role", "has_seat", "is_active", "is_support_contact"]
    list_filter = ["role", "has_seat", "is_active", "is_support_contact"]
    search_fields = ["user__email", "account__name"]
    list_select_related = ["user", "account"]
    readonly_fields = [
        "account",
        "user",
        "role",
        "has_seat",
        "is_active",
        "is_support_contact",
        "created_at",
        "deactivated_at",
    ]
    actions = ["make_support_contact", "deactivate"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _run(self, request, queryset, run, done):
        for membership in queryset.select_related("account", "user"):
            try:
                run(membership)
            except PortalError as exc:
                self.message_user(request, f"{membership.user}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{membership.user}: {done}", messages.SUCCESS)

    @admin.action(description="Make the account's support contact", permissions=["change"])
    def make_support_contact(self, request, queryset):
        self._run(
            request,
            queryset,
            lambda m: services.support_contact_set(
                actor=request.user, account=m.account, membership=m
            ),
            "is the support contact",
        )

    @admin.action(description="Deactivate", permissions=["change"])
    def deactivate(self, request, queryset):
        self._run(
            request,
            queryset,
            lambda m: services.membership_deactivate(actor=request.user, membership=m),
            "deactivated",
        )


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ["email", "account", "role", "with_seat", "status", "expires_at", "invited_by"]
    list_filter = ["status", "role"]
    search_fields = ["email", "account__name"]
    list_select_related = ["account", "invited_by"]
    exclude = ["nonce"]


@admin.register(Reseller)
class ResellerAdmin(AuditedAdmin):
    list_display = ["name", "support_email", "website"]
    search_fields = ["name"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_email", "action", "object_repr", "account", "ip_address"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_email", "object_repr", "action", "object_id"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"


def describe_changes(changes, transition_keys=()) -> str:
    """An audit row's changes in one line: `state: received → in_review; note: …`."""
    if not isinstance(changes, dict):
        return str(changes or "")
    parts = []
    for key, value in changes.items():
        if isinstance(value, list) and len(value) == 2 and key in transition_keys:
            value = f"{value[0]} → {value[1]}"
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


def deadline_q(which: str, *, now, tz):
    """The rows of a deadline queue (a request or an incident with `next_deadline` and
    `breached`): "overdue", "due_today" (later today in the vendor's zone) or "breached".
    The badges, the queue's filter and the console's dashboard count the same way."""
    from datetime import datetime, time, timedelta

    from django.db.models import Q

    if which == "overdue":
        return Q(next_deadline__lt=now)
    if which == "due_today":
        tomorrow = datetime.combine(now.astimezone(tz).date() + timedelta(days=1), time(), tz)
        return Q(next_deadline__gte=now, next_deadline__lt=tomorrow)
    if which == "breached":
        return ~Q(breached=[])
    raise ValueError(which)


class DeadlineFilter(admin.SimpleListFilter):
    """The queue's rows by deadline, as the dashboard links to them (?deadline=overdue)."""

    title = "deadline"
    parameter_name = "deadline"

    def lookups(self, request, model_admin):
        return [("due_today", "Due today"), ("overdue", "Overdue"), ("breached", "Breached")]

    def __init__(self, request, params, model, model_admin):
        self.vendor_tz = model_admin.vendor_tz  # the zone "today" is counted in
        super().__init__(request, params, model, model_admin)

    def queryset(self, request, queryset):
        if self.value() not in ("due_today", "overdue", "breached"):
            return queryset
        return queryset.filter(deadline_q(self.value(), now=timezone.now(), tz=self.vendor_tz()))


class StaffFilter(admin.RelatedFieldListFilter):
    """A queue's rows by the staff member on them (holder, assignee): the choices are the
    staff, not the distinct values of the queue's whole history (RelatedOnlyFieldListFilter
    reads every row) nor every user (RelatedFieldListFilter lists the customers too). Same
    parameters (?holder__id__exact=..., ?holder__isnull=True)."""

    def field_choices(self, field, request, model_admin):
        return [
            (user.pk, str(user))
            for user in User.objects.filter(is_staff=True).order_by("email", "pk")
        ]


class QueueChangeList(ChangeList):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Each row's link keeps the filters (?_changelist_filters=...) as the admin's
        # add_preserved_filters would, without resolving every row's URL to find out.
        self.row_filters, self.preserved_filters = self.preserved_filters, ""

    @cached_property
    def _change_url(self) -> tuple[str, str]:
        """The change page's URL around its pk, reversed once for the page's rows."""
        url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
            args=["__pk__"],
            current_app=self.model_admin.admin_site.name,
        )
        before, _, after = url.partition("__pk__")
        return before, after

    def url_for_result(self, result):
        before, after = self._change_url
        # As reverse() quotes an argument.
        pk = urlquote(str(quote(getattr(result, self.pk_attname))), safe=RFC3986_SUBDELIMS + "/~:@")
        url = f"{before}{pk}{after}"
        return f"{url}?{self.row_filters}" if self.row_filters else url

    def get_results(self, request):
        # The page's rows only: the actions' queryset still reads every field.
        self.queryset = self.queryset.defer(*self.model_admin.list_defer)
        super().get_results(request)


class QueueAdmin(admin.ModelAdmin):
    """A staff queue whose page costs what it shows, however long the history: one count
    (of the rows matching the filters; no second one of the whole table for "N total"),
    and the long columns the list does not show (`list_defer`) left unread."""

    show_full_result_count = False
    list_defer: tuple[str, ...] = ()
    # A page a reviewer works through, oldest deadline first: Django's 100 rows were
    # half of the page's time (every cell formatted and escaped in Python).
    list_per_page = 50

    def get_changelist(self, request, **kwargs):
        return QueueChangeList

    def action_checkbox(self, obj):
        # The admin's own checkbox (forms.CheckboxInput), written out: rendering the
        # widget's template for every row was a third of the page's rows.
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            format_html(gettext("Select this object for an action - {}"), str(obj)),
        )


class StaffStateFilter(admin.ChoicesFieldListFilter):
    """The state filter in staff's words: the model's STAFF_LABELS over its choices'
    labels, which are written for customers. Same parameter (?state__exact=...)."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        import copy

        field = copy.copy(field)
        field.choices = [
            (value, model.STAFF_LABELS.get(value, label)) for value, label in field.flatchoices
        ]
        super().__init__(field, request, params, model, model_admin, field_path)


class ReviewPageAdmin(QueueAdmin):
    """A console whose change page is a review page of service-backed actions (refund
    requests, incidents): `_perform(request, obj, action, posted)` runs a posted action
    and returns what it did (None when it said so itself), putting the form it bound in
    `posted["form"]`; `_review(request, obj, bound, extra_context)` renders the page.
    Staff who may only view see it without forms; a POST from them is refused."""

    badge_prefix = "review"  # CSS class of the queue's badges
    vendor_tz = None  # the zone "due today" is counted in: core.calendar.vendor_tz
    transition_keys = ("state",)  # audit changes shown as "old → new" in the history

    @admin.display(description="State", ordering="state")
    def staff_state(self, obj):
        return self._staff_labels.get(obj.state) or obj.staff_state_label

    @cached_property
    def _staff_labels(self) -> dict:
        """The model's staff_state_label of each state, worked out once, not per row."""
        choices = self.model._meta.get_field("state").flatchoices
        return {value: self.model.STAFF_LABELS.get(value, label) for value, label in choices}

    def breached_names(self, obj) -> list[str]:
        return list(obj.breached or [])

    def deadline_badges(self, obj, now) -> list[tuple[str, str]]:
        """(css class, text): overdue, due today (in the vendor's zone), breached."""
        badges = []
        due = obj.next_deadline
        if due is not None:
            tz = self.vendor_tz()
            if due < now:
                badges.append(("overdue", "overdue"))
            elif due.astimezone(tz).date() == now.astimezone(tz).date():
                badges.append(("due-today", "due today"))
        names = self.breached_names(obj)
        if names:
            badges.append(("breached", "breached: " + ", ".join(names)))
        return badges

    def render_badges(self, obj, now):
        from django.utils.html import format_html_join

        prefix = self.badge_prefix
        return format_html_join(
            " ",
            f'<span class="{prefix}-badge {prefix}-badge-{{}}">{{}}</span>',
            self.deadline_badges(obj, now),
        )

    def history(self, obj) -> list:
        """The object's audit trail, oldest first, each with its changes in one line."""
        return [
            (event, describe_changes(event.changes, self.transition_keys))
            for event in AuditEvent.objects.filter(
                object_type=obj._meta.label_lower, object_id=str(obj.pk)
            ).order_by("created_at", "id")
        ]

    # Rows are the services': never added or deleted in the console.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _get_viewable(self, request, object_id):
        from django.contrib.admin.utils import unquote
        from django.core.exceptions import PermissionDenied
        from django.http import Http404

        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No such {self.opts.verbose_name}.")
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def history_view(self, request, object_id, extra_context=None):
        # The history is the object's audit trail, shown on the review page.
        from django.http import HttpResponseRedirect
        from django.urls import reverse

        self._get_viewable(request, object_id)
        url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[object_id]
        )
        return HttpResponseRedirect(f"{url}#history")

    def _act(self, request, obj):
        """(True, {}) when the posted action was done, else (False, the bound forms)."""
        from django.contrib import messages

        from .errors import PortalError

        posted = {}
        try:
            done = self._perform(request, obj, request.POST.get("action", ""), posted)
        except PortalError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            form = posted.get("form")
            if form is None:
                return False, {}
            if exc.field in form.fields:
                form.add_error(exc.field, exc.message)
            return False, {form.prefix: form}
        if done:
            self.message_user(request, done, messages.SUCCESS)
        return True, {}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from django.contrib.admin.utils import unquote
        from django.core.exceptions import PermissionDenied
        from django.http import HttpResponseRedirect

        obj = self._get_viewable(request, object_id)
        bound = {}
        if request.method == "POST":
            if not self.has_change_permission(request, obj):
                raise PermissionDenied
            done, bound = self._act(request, obj)
            if done:
                return HttpResponseRedirect(request.path)
            obj = self.get_object(request, unquote(object_id))
        return self._review(request, obj, bound, extra_context)


def money_column(field: str, currency_field: str = "currency", description: str = ""):
    """A list column showing a stored amount (four places in the database) as money, to
    the cent and with its currency, instead of "58.0000"."""
    from . import formatting

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(obj):
        currency = obj
        for part in currency_field.split("__"):
            currency = getattr(currency, part, None)
        return formatting.money(getattr(obj, field), currency or "USD")

    column.__name__ = f"{field}_money"
    return column
