"""Tenant dashboards: usage charts and tables, requests and keys, rendered on the server
(members: `gateway/dashboard/members.py`).

Every view resolves the tenant (and key) the person may see first, so another tenant's pages
and objects are 404, then checks the role, or a platform admin's Django permissions, for key
pages and writes (`accounts/access.py`; a viewer's POST is 403). A GET never changes anything;
revoking needs the confirmation page's explicit confirm. A new or rotated secret is only in the
body of the POST's response (no-store).
"""

from __future__ import annotations

import copy

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import access
from accounts.models import ApiKey, Tenant
from accounts.services import (
    ServiceError,
    api_key_create,
    api_key_revoke,
    api_key_rotate,
    api_key_set_limits,
    api_key_update,
)
from gateway.dashboard import exports, panels, platform, selectors
from gateway.dashboard.forms import (
    ApiKeyCreateForm,
    ApiKeyLimitsForm,
    ApiKeyModelsForm,
    ApiKeyRotateForm,
    PlatformUsageForm,
    RangeForm,
    RequestFilterForm,
)
from gateway.models import UsageRecord

REQUESTS_PER_PAGE = 50


def _tenant_or_404(request: HttpRequest, name: str) -> Tenant:
    try:
        return access.tenant_visible_get(user=request.user, name=name)
    except Tenant.DoesNotExist:
        raise Http404("No such tenant") from None


def _key_or_404(tenant: Tenant, key_id: int) -> ApiKey:
    try:
        return selectors.api_key_get(tenant=tenant, key_id=key_id)
    except ApiKey.DoesNotExist:
        raise Http404("No such key") from None


def _check_can_view_keys(request: HttpRequest, tenant: Tenant) -> None:
    if not access.can_view_keys(user=request.user, tenant=tenant):
        raise PermissionDenied("You may not see this tenant's keys.")


def _context(request: HttpRequest, tenant: Tenant, **extra) -> dict:
    """What every tenant page's frame needs: the tenant, the picker, the range to keep."""
    params = urlencode({k: v for k, v in request.GET.items() if k in ("start", "end", "by") and v})
    form = extra.get("form")
    return {
        "tenant": tenant,
        "tenants": access.tenants_visible(user=request.user),
        "role": access.role_in(user=request.user, tenant=tenant),
        "can_manage_keys": access.can_change_keys(user=request.user, tenant=tenant),
        "can_view_members": access.can_view_members(user=request.user, tenant=tenant),
        "period": form.period() if form else None,
        "range_params": params,
        "range_query": "?" + params if params else "",
        **extra,
    }


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The tenant picker; a member of exactly one tenant goes straight to it."""
    if name := request.GET.get("tenant"):
        return redirect("dashboard:overview", tenant=_tenant_or_404(request, name).name)
    tenants = list(access.tenants_visible(user=request.user))
    if len(tenants) == 1 and not request.user.is_staff:
        return redirect("dashboard:overview", tenant=tenants[0].name)
    return render(request, "dashboard/home.html", {"tenants": tenants})


@require_GET
@login_required
def overview(request: HttpRequest, tenant: str) -> HttpResponse:
    tenant_obj = _tenant_or_404(request, tenant)
    form = RangeForm(request.GET)
    data = selectors.usage_overview(
        tenant=tenant_obj, period=form.period(), dimension=form.dimension()
    )
    return render(
        request,
        "dashboard/overview.html",
        _context(
            request, tenant_obj, form=form, overview=data, charts=panels.overview_charts(data)
        ),
    )


@require_GET
@login_required
def requests_list(request: HttpRequest, tenant: str) -> HttpResponse:
    """The request log: search by id, filter, page through, export what is shown."""
    tenant_obj = _tenant_or_404(request, tenant)
    form = _request_filter_form(request, tenant_obj)
    records = selectors.requests_search(tenant=tenant_obj, filters=form.filters())
    page = Paginator(records, REQUESTS_PER_PAGE).get_page(request.GET.get("page"))
    filter_params = urlencode(
        {k: v for k, v in request.GET.items() if k in form.fields and v}, doseq=False
    )
    context = _context(request, tenant_obj, form=form, page=page, filter_params=filter_params)
    return render(request, "dashboard/requests.html", context)


def _request_filter_form(request: HttpRequest, tenant: Tenant) -> RequestFilterForm:
    keys = selectors.api_keys_of(tenant=tenant) if _may_view_keys(request, tenant) else ()
    return RequestFilterForm(request.GET, keys=keys)


def _may_view_keys(request: HttpRequest, tenant: Tenant) -> bool:
    return access.can_view_keys(user=request.user, tenant=tenant)


@require_GET
@login_required
def request_detail(request: HttpRequest, tenant: str, request_id: str) -> HttpResponse:
    """One request: every attempt, the timings, tokens, cost parts and warnings."""
    tenant_obj = _tenant_or_404(request, tenant)
    try:
        record = selectors.request_get(tenant=tenant_obj, request_id=request_id)
    except UsageRecord.DoesNotExist:
        raise Http404("No such request") from None
    # Bodies may hold anything the tenant's users sent: owners and admins only.
    body = None
    if access.can_change_keys(user=request.user, tenant=tenant_obj):
        body = selectors.captured_body_get(tenant=tenant_obj, request_id=request_id)
    context = _context(request, tenant_obj, record=record, body=body)
    return render(request, "dashboard/request_detail.html", context)


@require_GET
@login_required
def requests_export(request: HttpRequest, tenant: str, fmt: str) -> StreamingHttpResponse:
    """The request log as filtered, as CSV or JSON Lines, streamed (`fmt`: csv or jsonl)."""
    if fmt not in ("csv", "jsonl"):
        raise Http404("Exports are csv or jsonl")
    tenant_obj = _tenant_or_404(request, tenant)
    form = _request_filter_form(request, tenant_obj)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text(), content_type="text/plain")
    records = selectors.requests_search(tenant=tenant_obj, filters=form.filters())
    period = form.period()
    filename = f"tollgate-{tenant_obj.name}-requests-{period.start}-{period.end}.{fmt}"
    return exports.requests_response(records, fmt, filename)


@require_http_methods(["GET", "POST"])
@login_required
def keys(request: HttpRequest, tenant: str) -> HttpResponse:
    """The keys with their usage; owners and admins create keys here (POST).

    A new key's secret is in the POST's response only (no-store), never stored, put in a
    message, the session or a cookie, nor shown again; the page replaces its history entry, so
    a reload is a plain GET without the secret.
    """
    tenant_obj = _tenant_or_404(request, tenant)
    _check_can_view_keys(request, tenant_obj)
    created, create_form = None, None
    if request.method == "POST":
        if not access.can_create_keys(user=request.user, tenant=tenant_obj):
            raise PermissionDenied("Only the tenant's owners and admins create keys.")
        create_form = ApiKeyCreateForm(request.POST)
        if not create_form.nonce_unspent(request.session):
            messages.info(request, "That form was already sent; a key's secret is shown once.")
            return redirect("dashboard:keys", tenant=tenant_obj.name)
        created = _create_key(request, tenant_obj, create_form)
        if created:
            create_form = None
    if create_form is None and access.can_create_keys(user=request.user, tenant=tenant_obj):
        nonce = ApiKeyCreateForm.issue_nonce(request.session)
        create_form = ApiKeyCreateForm(initial={"nonce": nonce})
    form = RangeForm(request.GET)
    context = _context(
        request,
        tenant_obj,
        form=form,
        keys=selectors.api_keys_with_usage(tenant=tenant_obj, period=form.period()),
        create_form=create_form,
        created_key=created[0] if created else None,
        created_secret=created[1] if created else None,
    )
    response = render(request, "dashboard/keys.html", context)
    if created:
        response["Cache-Control"] = "no-store"
    return response


def _create_key(request: HttpRequest, tenant: Tenant, form: ApiKeyCreateForm):
    """(key, secret) when the form was valid and the key made; errors go onto the form."""
    if not form.is_valid():
        return None
    form.spend_nonce(request.session)
    try:
        return api_key_create(
            tenant=tenant,
            name=form.cleaned_data["name"],
            expires_in_days=form.cleaned_data["expires_in_days"],
        )
    except ServiceError as err:
        messages.error(request, str(err))
        return None


@require_GET
@login_required
def key_detail(request: HttpRequest, tenant: str, key_id: int) -> HttpResponse:
    tenant_obj = _tenant_or_404(request, tenant)
    _check_can_view_keys(request, tenant_obj)
    return _key_page(request, tenant_obj, _key_or_404(tenant_obj, key_id))


def _key_page(
    request: HttpRequest,
    tenant_obj: Tenant,
    key: ApiKey,
    status: int = 200,
    **forms,
) -> HttpResponse:
    """The key's page; `forms` are bound forms to show with their errors (limits_form,
    models_form, rotate_form), the others start from the stored key."""
    if access.can_change_keys(user=request.user, tenant=tenant_obj):
        forms.setdefault("limits_form", ApiKeyLimitsForm(instance=key))
        forms.setdefault("models_form", _models_form(key))
        if key.revoked_at is None and "rotate_form" not in forms:
            nonce = ApiKeyRotateForm.issue_nonce(request.session)
            forms["rotate_form"] = ApiKeyRotateForm(initial={"nonce": nonce})
    forms = {"limits_form": None, "models_form": None, "rotate_form": None, **forms}
    form = RangeForm(request.GET)
    dimension = form.dimension() if form.dimension() != "key" else "model"
    data = selectors.usage_overview(
        tenant=tenant_obj, period=form.period(), dimension=dimension, api_key_id=key.pk
    )
    recent = selectors.usage_records(tenant=tenant_obj, api_key_id=key.pk)[:20]
    context = _context(
        request,
        tenant_obj,
        form=form,
        key=key,
        overview=data,
        charts=panels.overview_charts(data),
        recent=recent,
        budgets=selectors.key_budgets(key=key),
        key_models=sorted(key.allowed_models.values_list("name", flat=True)),
        in_grace=bool(key.previous_expires_at and key.previous_expires_at > timezone.now()),
        **forms,
    )
    return render(request, "dashboard/key_detail.html", context, status=status)


def _managed_key(
    request: HttpRequest, tenant: str, key_id: int, doing: str
) -> tuple[Tenant, ApiKey]:
    """The tenant and key of a write by one of the tenant's owners or admins; 404, 403 else."""
    tenant_obj = _tenant_or_404(request, tenant)
    _check_can_view_keys(request, tenant_obj)
    key = _key_or_404(tenant_obj, key_id)
    if not access.can_change_keys(user=request.user, tenant=tenant_obj):
        raise PermissionDenied(f"Only the tenant's owners and admins {doing}.")
    return tenant_obj, key


@require_POST
@login_required
def key_limits(request: HttpRequest, tenant: str, key_id: int) -> HttpResponse:
    """Owners and admins set a key's rate limits and budget (the tenant's are the platform's)."""
    tenant_obj, key = _managed_key(request, tenant, key_id, "change a key's limits")
    # Validation writes the values onto its instance: a copy, so the page shows the stored ones.
    form = ApiKeyLimitsForm(request.POST, instance=copy.copy(key))
    if not form.is_valid():
        return _key_page(request, tenant_obj, key, 400, limits_form=form)
    try:
        changed = api_key_set_limits(key=key, **form.limits())
    except ServiceError as err:
        form.add_error(None, str(err))
        return _key_page(request, tenant_obj, key, 400, limits_form=form)
    if changed:
        messages.success(request, f"Limits of {key.prefix}… saved; they apply within seconds.")
    else:
        messages.info(request, "Nothing changed.")
    return redirect(reverse("dashboard:key", kwargs={"tenant": tenant_obj.name, "key_id": key.pk}))


def _models_form(key: ApiKey, data=None) -> ApiKeyModelsForm:
    """The allow-list form: the tenant's models, and any the key still names outside them (so
    the form shows them; saving refuses them with the reason)."""
    current = list(key.allowed_models.values_list("name", flat=True))
    choices = sorted({*selectors.tenant_model_names(tenant=key.tenant), *current})
    return ApiKeyModelsForm(data, choices=choices, initial={"models": current})


@require_POST
@login_required
def key_models(request: HttpRequest, tenant: str, key_id: int) -> HttpResponse:
    """Owners and admins choose the models a key may use, among its tenant's."""
    tenant_obj, key = _managed_key(request, tenant, key_id, "change a key's models")
    form = _models_form(key, request.POST)
    if not form.is_valid():
        return _key_page(request, tenant_obj, key, 400, models_form=form)
    try:
        api_key_update(
            key=key,
            name=key.name,
            expires_at=key.expires_at,
            allow_debug=key.allow_debug,
            models=form.cleaned_data["models"],
        )
    except ServiceError as err:
        form.add_error("models", str(err))
        return _key_page(request, tenant_obj, key, 400, models_form=form)
    chosen = ", ".join(form.cleaned_data["models"]) or "every model of the tenant"
    messages.success(request, f"{key.prefix}… may now use: {chosen}.")
    return redirect(reverse("dashboard:key", kwargs={"tenant": tenant_obj.name, "key_id": key.pk}))


@require_POST
@login_required
def key_rotate(request: HttpRequest, tenant: str, key_id: int) -> HttpResponse:
    """Owners and admins give a key a new secret; the old one works for the grace chosen.

    The new secret is in this response only (no-store), like a new key's: never in a message,
    the session or a cookie. The form is sent once (nonce): a second rotation would end the
    first's grace at once.
    """
    tenant_obj, key = _managed_key(request, tenant, key_id, "rotate keys")
    form = ApiKeyRotateForm(request.POST)
    if not form.nonce_unspent(request.session):
        messages.info(request, "That form was already sent; a new secret is shown once.")
        return redirect("dashboard:key", tenant=tenant_obj.name, key_id=key.pk)
    if not form.is_valid():
        return _key_page(request, tenant_obj, key, 400, rotate_form=form)
    form.spend_nonce(request.session)
    try:
        secret = api_key_rotate(key=key, grace_seconds=form.cleaned_data["grace_hours"] * 3600)
    except ServiceError as err:
        form.add_error(None, str(err))
        return _key_page(request, tenant_obj, key, 400, rotate_form=form)
    context = _context(request, tenant_obj, key=key, secret=secret)
    response = render(request, "dashboard/key_rotated.html", context)
    response["Cache-Control"] = "no-store"
    return response


REVOKE_CONFIRM = "revoke"


@require_http_methods(["GET", "POST"])
@login_required
def key_revoke(request: HttpRequest, tenant: str, key_id: int) -> HttpResponse:
    """GET (or a POST without the confirm) shows what revoking means; the confirmed POST does it."""
    tenant_obj, key = _managed_key(request, tenant, key_id, "revoke keys")
    if request.method == "POST" and request.POST.get("confirm") == REVOKE_CONFIRM:
        api_key_revoke(key=key)
        messages.success(request, f"Key {key.prefix}… revoked; it stops working within seconds.")
        return redirect(reverse("dashboard:keys", kwargs={"tenant": tenant_obj.name}))
    context = _context(request, tenant_obj, key=key, confirm=REVOKE_CONFIRM)
    return render(request, "dashboard/key_revoke.html", context)


@require_GET
@login_required
def export_csv(request: HttpRequest, tenant: str) -> HttpResponse:
    """Usage per day, model, key and provider for the range, as CSV."""
    tenant_obj = _tenant_or_404(request, tenant)
    form = RangeForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text(), content_type="text/plain")
    period = form.period()
    rows = selectors.usage_rows(tenant=tenant_obj, period=period, group_by=selectors.DIMENSIONS)
    response = HttpResponse(exports.usage_csv(rows), content_type="text/csv; charset=utf-8")
    filename = f"tollgate-{tenant_obj.name}-{period.start}-{period.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _check_platform_admin(request: HttpRequest) -> None:
    """The platform view is for staff who may see every tenant; for anyone else it is missing."""
    if not access.can_view_platform_usage(user=request.user):
        raise Http404("No such page")


@require_GET
@login_required
def platform_usage(request: HttpRequest) -> HttpResponse:
    """Every tenant's usage per day or hour, split by tenant, model, provider or key."""
    _check_platform_admin(request)
    form = PlatformUsageForm(request.GET)
    data = platform.platform_overview(
        period=form.period(),
        granularity=form.per(),
        dimension=form.dimension(),
        tenant=form.tenant_filter(),
    )
    params = {"start": data.period.start, "end": data.period.end, "granularity": data.granularity}
    if data.tenant is not None:
        params["tenant"] = data.tenant.name
    context = {
        "form": form,
        "overview": data,
        "charts": panels.platform_charts(data),
        "period": data.period,
        "export_query": urlencode(params),
        "breakdown_limit": platform.BREAKDOWN_ROWS,
    }
    return render(request, "dashboard/platform.html", context)


@require_GET
@login_required
def platform_export_csv(request: HttpRequest) -> HttpResponse:
    """Every tenant's usage per day (or hour), tenant, model, key and provider, as CSV."""
    _check_platform_admin(request)
    form = PlatformUsageForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text(), content_type="text/plain")
    period, granularity = form.period(), form.per()
    rows = platform.platform_usage_rows(
        period=period,
        granularity=granularity,
        group_by=platform.DIMENSIONS,
        tenant=form.tenant_filter(),
    )
    body = exports.platform_usage_csv(rows, granularity=granularity)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    filename = f"tollgate-platform-{granularity}-{period.start}-{period.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
