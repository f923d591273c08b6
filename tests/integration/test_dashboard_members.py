"""The members page: every member sees who is in the tenant; owners add existing accounts,
change roles and remove people after a confirmation; the last owner stays; another tenant's
members do not exist for an outsider."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEntry, Membership
from tests.factories import MembershipFactory, UserFactory
from tests.integration.conftest import platform_admin

pytestmark = pytest.mark.django_db

MEMBERS = "/dashboard/acme/members/"


def membership(people, user) -> Membership:
    return Membership.objects.get(tenant=people.tenant, user=user)


def role_url(m: Membership) -> str:
    return f"/dashboard/{m.tenant.name}/members/{m.pk}/role/"


def remove_url(m: Membership) -> str:
    return f"/dashboard/{m.tenant.name}/members/{m.pk}/remove/"


def set_role(client, m: Membership, role: str, tenant: str | None = None):
    path = role_url(m) if tenant is None else f"/dashboard/{tenant}/members/{m.pk}/role/"
    return client.post(path, {f"m{m.pk}-role": role})


def roles(people) -> dict[str, str]:
    rows = Membership.objects.filter(tenant=people.tenant).select_related("user")
    return {m.user.username: m.role for m in rows}


STARTING_ROLES = {"olivia": "owner", "adam": "admin", "victor": "viewer"}


# --- Who sees what --------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "admin", "viewer"])
def test_every_member_sees_the_members_and_their_roles(client, people, who):
    client.force_login(getattr(people, who))

    page = client.get(MEMBERS)

    assert page.status_code == 200
    listed = {m.user.username: m.role for m, _ in page.context["members"]}
    assert listed == STARTING_ROLES
    assert [m.role for m, _ in page.context["members"]] == ["owner", "admin", "viewer"]
    assert b"oscar" not in page.content  # globex's owner
    assert b'href="/dashboard/acme/members/"' in page.content  # the tab


@pytest.mark.parametrize("who", ["admin", "viewer"])
def test_only_owners_get_the_forms_to_manage_members(client, people, who):
    client.force_login(getattr(people, who))

    page = client.get(MEMBERS)

    assert page.context["add_form"] is None and not page.context["may_remove"]
    assert all(form is None for _, form in page.context["members"])
    assert b"Add member" not in page.content and b"Remove" not in page.content


def test_owner_gets_the_forms(client, people):
    client.force_login(people.owner)

    page = client.get(MEMBERS)

    assert b"Add member" in page.content and b"Remove victor" in page.content
    assert all(form is not None for _, form in page.context["members"])


@pytest.mark.parametrize("who", ["admin", "viewer"])
def test_admins_and_viewers_cannot_add_change_or_remove_members(client, people, who):
    client.force_login(getattr(people, who))
    victor = membership(people, people.viewer)
    newcomer = UserFactory(username="nina")

    added = client.post(MEMBERS, {"user": "nina", "role": "owner"})
    promoted = set_role(client, victor, "owner")
    confirm_page = client.get(remove_url(victor))
    removed = client.post(remove_url(victor), {"confirm": "remove"})

    statuses = [r.status_code for r in (added, promoted, confirm_page, removed)]
    assert statuses == [403] * 4
    assert roles(people) == STARTING_ROLES
    assert not Membership.objects.filter(user=newcomer).exists()


def test_an_outsider_finds_no_page_or_member_of_another_tenant(client, people):
    client.force_login(people.outsider)  # owner of globex
    victor = membership(people, people.viewer)
    UserFactory(username="nina")

    responses = [
        client.get(MEMBERS),
        client.post(MEMBERS, {"user": "nina", "role": "owner"}),
        set_role(client, victor, "owner"),
        client.get(remove_url(victor)),
        client.post(remove_url(victor), {"confirm": "remove"}),
        # acme's membership through the outsider's own tenant
        set_role(client, victor, "viewer", tenant="globex"),
        client.get(f"/dashboard/globex/members/{victor.pk}/remove/"),
        client.post(f"/dashboard/globex/members/{victor.pk}/remove/", {"confirm": "remove"}),
    ]

    assert [r.status_code for r in responses] == [404] * len(responses)
    assert b"Acme" not in responses[0].content
    assert roles(people) == STARTING_ROLES


def test_anonymous_visitors_are_sent_to_sign_in(client, people):
    response = client.get(MEMBERS)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login/")


def test_staff_need_the_admins_membership_permissions(client, people):
    client.force_login(people.staff)  # may see tenants and keys, not memberships
    assert client.get(MEMBERS).status_code == 403

    hr = platform_admin(
        "henry",
        ("view_tenant", "view_membership", "add_membership", "change_membership"),
    )
    client.force_login(hr)
    UserFactory(username="nina")

    assert client.get(MEMBERS).status_code == 200
    assert client.post(MEMBERS, {"user": "nina", "role": "viewer"}).status_code == 302
    # No delete_membership: removing is refused.
    victor = membership(people, people.viewer)
    assert client.post(remove_url(victor), {"confirm": "remove"}).status_code == 403
    assert roles(people) == {**STARTING_ROLES, "nina": "viewer"}


# --- Adding ----------------------------------------------------------------------------------


def test_owner_adds_an_existing_account_by_username(client, people):
    client.force_login(people.owner)
    UserFactory(username="nina")

    response = client.post(MEMBERS, {"user": "nina", "role": "admin"})

    assert response.status_code == 302 and response.headers["Location"] == MEMBERS
    assert roles(people)["nina"] == "admin"
    assert b"nina added as admin" in client.get(MEMBERS).content
    entry = AuditEntry.objects.filter(object_type="membership", action="create").get()
    assert entry.actor_label == "olivia" and entry.tenant == people.tenant


def test_owner_adds_an_existing_account_by_email_in_any_case(client, people):
    client.force_login(people.owner)
    UserFactory(username="nina", email="Nina@Example.com")

    client.post(MEMBERS, {"user": "  nina@example.COM ", "role": "viewer"})

    assert roles(people)["nina"] == "viewer"


@pytest.mark.parametrize(
    ("identifier", "reason"),
    [
        ("nobody", b"must have a Tollgate account"),
        ("nobody@example.com", b"must have a Tollgate account"),
        ("victor", b"already a member (viewer)"),
        ("x" * 300, b"at most 254 characters"),
        ("", b"This field is required"),
    ],
)
def test_adding_someone_who_cannot_be_added_says_why(client, people, identifier, reason):
    client.force_login(people.owner)

    response = client.post(MEMBERS, {"user": identifier, "role": "viewer"})

    assert response.status_code == 400
    assert reason in response.content and b'role="alert"' in response.content
    assert roles(people) == STARTING_ROLES


def test_an_inactive_account_or_an_email_shared_by_two_is_refused(client, people):
    client.force_login(people.owner)
    UserFactory(username="gone", is_active=False)
    UserFactory(username="twin1", email="twins@example.com")
    UserFactory(username="twin2", email="TWINS@example.com")

    inactive = client.post(MEMBERS, {"user": "gone", "role": "viewer"})
    shared = client.post(MEMBERS, {"user": "twins@example.com", "role": "viewer"})

    assert inactive.status_code == shared.status_code == 400
    assert b"must have a Tollgate account" in inactive.content
    assert b"give the username instead" in shared.content
    assert roles(people) == STARTING_ROLES


def test_an_unknown_role_is_a_form_error(client, people):
    client.force_login(people.owner)
    UserFactory(username="nina")

    response = client.post(MEMBERS, {"user": "nina", "role": "superuser"})

    assert response.status_code == 400 and b"Select a valid choice" in response.content
    assert "nina" not in roles(people)


def test_adding_a_member_of_another_tenant_gives_them_both(client, people):
    client.force_login(people.owner)

    client.post(MEMBERS, {"user": "oscar", "role": "viewer"})

    assert roles(people)["oscar"] == "viewer"
    assert Membership.objects.get(tenant=people.other, user=people.outsider).role == "owner"


# --- Changing roles ----------------------------------------------------------------------------


def test_owner_changes_a_members_role(client, people):
    client.force_login(people.owner)

    response = set_role(client, membership(people, people.viewer), "admin")

    assert response.headers["Location"] == MEMBERS
    assert roles(people)["victor"] == "admin"
    assert b"victor is now admin" in client.get(MEMBERS).content


def test_the_last_owner_cannot_be_demoted(client, people):
    client.force_login(people.owner)

    response = set_role(client, membership(people, people.owner), "admin")

    assert response.status_code == 302
    assert roles(people)["olivia"] == "owner"
    assert b"last owner cannot be demoted" in client.get(MEMBERS).content


def test_an_owner_steps_down_once_there_is_another_owner(client, people):
    client.force_login(people.owner)
    set_role(client, membership(people, people.admin), "owner")

    set_role(client, membership(people, people.owner), "viewer")

    assert roles(people) == {"olivia": "viewer", "adam": "owner", "victor": "viewer"}
    # Now a viewer: no more member management.
    assert set_role(client, membership(people, people.viewer), "admin").status_code == 403


@pytest.mark.parametrize("role", ["superuser", "", "OWNER", "owner\x00"])
def test_an_unknown_role_never_changes_anything(client, people, role):
    client.force_login(people.owner)

    response = set_role(client, membership(people, people.viewer), role)

    assert response.status_code == 302
    assert roles(people) == STARTING_ROLES
    assert b"Choose one of the roles" in client.get(MEMBERS).content


def test_a_membership_id_that_does_not_exist_is_404(client, people):
    client.force_login(people.owner)
    for path in (
        "/dashboard/acme/members/999999/role/",
        "/dashboard/acme/members/99999999999999999999999/remove/",
    ):
        assert client.post(path, {"confirm": "remove"}).status_code == 404, path


# --- Removing ----------------------------------------------------------------------------------


def test_removing_asks_for_a_confirmation_first(client, people):
    client.force_login(people.owner)
    victor = membership(people, people.viewer)

    asked = client.get(remove_url(victor), {"confirm": "remove"})
    unconfirmed = client.post(remove_url(victor))

    for page in (asked, unconfirmed):
        assert page.status_code == 200
        assert b"Remove <span" in page.content and b'name="confirm" value="remove"' in page.content
    assert roles(people) == STARTING_ROLES


def test_owner_removes_a_member_after_confirming(client, people):
    client.force_login(people.owner)

    response = client.post(remove_url(membership(people, people.viewer)), {"confirm": "remove"})

    assert response.headers["Location"] == MEMBERS
    assert roles(people) == {"olivia": "owner", "adam": "admin"}
    assert b"victor removed from acme" in client.get(MEMBERS).content
    client.force_login(people.viewer)
    assert client.get("/dashboard/acme/").status_code == 404


def test_the_last_owner_cannot_be_removed(client, people):
    client.force_login(people.owner)

    response = client.post(remove_url(membership(people, people.owner)), {"confirm": "remove"})

    assert response.headers["Location"] == MEMBERS
    assert roles(people) == STARTING_ROLES
    assert b"last owner cannot be removed" in client.get(MEMBERS).content


def test_an_owner_who_leaves_lands_on_the_tenant_picker(client, people):
    MembershipFactory(tenant=people.tenant, user=UserFactory(username="olga"), role="owner")
    client.force_login(people.owner)

    response = client.post(remove_url(membership(people, people.owner)), {"confirm": "remove"})

    assert response.headers["Location"] == "/dashboard/"
    assert "olivia" not in roles(people)


def test_removing_needs_a_csrf_token(people):
    client = Client(enforce_csrf_checks=True)
    client.force_login(people.owner)

    response = client.post(remove_url(membership(people, people.viewer)), {"confirm": "remove"})

    assert response.status_code == 403
    assert roles(people) == STARTING_ROLES


@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner(people, monkeypatch):
    """Both check "another owner is left" before either saves; the tenant lock makes the second
    check wait for the first change, so one of them is refused."""
    import threading
    import time

    from django.db import connection

    from accounts import services

    MembershipFactory(tenant=people.tenant, user=UserFactory(username="olga"), role="owner")
    save = services.membership_save

    def slow_save(**kwargs):
        time.sleep(0.3)  # both have checked before either commits, without the lock
        return save(**kwargs)

    monkeypatch.setattr(services, "membership_save", slow_save)
    start, outcomes = threading.Barrier(2), []

    def demote(username: str) -> None:
        m = Membership.objects.get(tenant=people.tenant, user__username=username)
        start.wait()
        try:
            outcomes.append(services.membership_set_role(membership=m, role="viewer"))
        except services.ServiceError as err:
            outcomes.append(str(err))
        finally:
            connection.close()

    threads = [threading.Thread(target=demote, args=(name,)) for name in ("olivia", "olga")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(map(str, outcomes)) == [
        "True",
        "the tenant's last owner cannot be demoted: make another owner",
    ]
    assert list(roles(people).values()).count("owner") == 1
