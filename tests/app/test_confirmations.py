"""Every destructive or access-changing action asks first, naming its target, then shows a result that stays; a
picker that moves on withdraws the question, so one click never acts on something the user did not name."""

from __future__ import annotations

from sqlalchemy import text
from streamlit.testing.v1 import AppTest

from db.engine import make_engine
from tests.app.conftest import session_count
from tests.app.test_security import correction_picker, delete_reason, progress_of, table_with


def account_state(url: str, username: str) -> tuple[str, bool]:
    """Return (role, enabled) of an account as stored."""
    engine = make_engine(url)
    with engine.connect() as connection:
        role, active = connection.execute(
            text("SELECT role, is_active FROM users WHERE username = :u"), {"u": username}
        ).one()
    engine.dispose()
    return role, bool(active)


def accounts_page(as_role) -> AppTest:
    at = as_role("admin")
    at.switch_page("views/users.py").run()
    assert not at.exception, at.exception
    return at


def test_the_account_picker_starts_empty_and_disabling_asks_first_then_says_so(as_role, seeded_url):
    at = accounts_page(as_role)
    assert at.selectbox(key="manage_username").value is None  # never preselected on the only admin
    at.selectbox(key="manage_username").select("clin_ahmed").run()
    at.button(key="disable_user").click().run()
    assert account_state(seeded_url, "clin_ahmed") == ("clinician", True)  # asked, not done
    assert "Disable **clin\\_ahmed**?" in at.warning[0].value

    at.button(key="disable_user_yes").click().run()
    assert not at.exception and not at.error
    assert account_state(seeded_url, "clin_ahmed") == ("clinician", False)
    at.run()  # the result stays after further reruns
    assert [s.value for s in at.success] == ["Disabled clin\\_ahmed."]
    assert table_with(at, "username").set_index("username").loc["clin_ahmed", "is_active"] == False  # noqa: E712


def test_cancel_withdraws_the_question_and_changes_nothing(as_role, seeded_url):
    at = accounts_page(as_role)
    at.selectbox(key="manage_username").select("manager").run()
    at.button(key="disable_user").click().run()
    at.button(key="disable_user_cancel").click().run()
    assert not at.warning and not at.success
    assert account_state(seeded_url, "manager") == ("manager", True)


def test_an_admin_cannot_disable_themselves_nor_demote_the_last_admin(as_role, seeded_url):
    at = accounts_page(as_role)
    at.selectbox(key="manage_username").select("admin").run()
    assert at.button(key="disable_user").disabled
    at.selectbox(key="new_role_for").select("manager").run()
    at.button(key="change_role").click().run()
    at.button(key="change_role_yes").click().run()
    assert "admin is the last enabled admin and cannot be demoted" in at.error[0].value
    assert account_state(seeded_url, "admin") == ("admin", True)


def test_a_new_account_is_in_the_table_and_the_picker_at_once_and_the_form_is_cleared(as_role, seeded_url):
    at = accounts_page(as_role)
    at.text_input(key="new_username").input("nina")
    at.text_input(key="new_password").input("a long enough password")
    at.button(key="add_user_submit").click().run()
    assert not at.exception and not at.error, at.error
    assert "nina" in table_with(at, "username")["username"].tolist()
    assert "nina" in at.selectbox(key="manage_username").options
    assert at.text_input(key="new_username").value == ""
    assert [s.value for s in at.success] == ["Added nina (clinician)."]


def test_a_delete_asks_first_and_a_picker_that_moves_on_withdraws_the_question(as_role, seeded_url):
    at = as_role("clinician")
    before = progress_of(at, "P0002")
    latest = int(before["Session"].max())
    assert correction_picker(at).value == latest  # the latest session is preselected
    delete_reason(at).input("wrong patient")
    at.button(key="delete_session").click().run()
    assert f"Delete session {latest} of P0002" in at.warning[0].value
    correction_picker(at).set_value(1).run()
    assert not [b for b in at.button if b.key == "delete_session_yes"]  # the question about the other one is gone
    assert delete_reason(at).value == ""  # nor is the reason typed for it

    count = session_count(seeded_url)
    delete_reason(at).input("wrong patient")
    at.button(key="delete_session").click().run()
    at.button(key="delete_session_yes").click().run()
    assert not at.exception and not at.error
    assert session_count(seeded_url) == count - 1
    at.run()
    assert at.success[0].value.startswith("Deleted session 1 of P0002")
    assert delete_reason(at).value == ""  # the reason does not wait for the next session
    assert not [b for b in at.button if b.key == "delete_session_yes"]


def test_the_correction_picker_starts_on_each_patients_latest_session(as_role):
    at = as_role("clinician")
    first = progress_of(at, "P0002")
    correction_picker(at).set_value(1).run()
    assert len(first) > 1
    second = progress_of(at, "P0003")
    assert correction_picker(at).value == int(second["Session"].max())


def test_a_refusal_withdraws_the_last_result_it_would_contradict(as_role):
    at = accounts_page(as_role)
    for _ in range(2):  # the same account twice: added, then refused as taken
        at.text_input(key="new_username").input("clin_two")
        at.button(key="add_user_submit").click().run()
    assert not at.exception, at.exception
    [error] = at.error
    assert error.value.startswith("Not changed.") and "is taken" in error.value
    assert [s.value for s in at.success] == []  # not "Added clin_two" above it
    at.run()  # the next run shows neither
    assert (at.error, at.success) == ([], [])
