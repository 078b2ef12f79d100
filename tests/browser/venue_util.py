"""Helpers shared by the webvenue browser tests (test_partner, test_admin,
test_public): times in Paris as the pages write them, form filling."""
import datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def paris(iso):
    """An RFC 3339 UTC time from the API as a Paris datetime."""
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(PARIS)


def french_clock(iso):
    """The time of day as web/js/fmt.js writes it in French: "19 h 42",
    "20 h" on the hour."""
    t = paris(iso)
    return "%d h" % t.hour if t.minute == 0 else "%d h %02d" % (t.hour, t.minute)


def local_input(dt):
    """A datetime as <input type=datetime-local> holds it, in Paris time."""
    return dt.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


def set_value(desk, css, value):
    """Sets a form control's value as the page would read it (typing into
    date inputs depends on the browser's locale)."""
    el = desk.find(css)
    desk.driver.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));"
        "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
        el, value)
    return el


def beneficiary(desk, referent, first_name):
    """The id of one of the referent's demo beneficiaries."""
    items = desk.rpc("beneficiary.list", {"query": first_name}, as_user=referent)["items"]
    assert items, "no demo beneficiary named %s" % first_name
    return items[0]["id"]


def open_as(desk, email, route):
    """Logs the browser in as email and opens route. The app reads who is
    logged in when it loads: after auth.login from the page, a full load
    of "/" (not a change of fragment) lets it see the new session before
    going to route."""
    desk.login(email, route="/")
    desk.wait_for("[data-test=who]")
    desk.goto(route)
