#!/usr/bin/env python3
"""The referent's path through the desk, end to end (docs/web.md, "Le
guichet du référent"): log in, take wishes at the permanence, run the
draw and read its table, open a voucher, create a person (consent
required), book and cancel for them, log out."""
import atexit
import datetime
import hashlib
import os
import re
import subprocess
import tempfile

import harness
from harness import PARTNER, REFERENT

from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

# Demo data (scripts/demo-data.sql): people of the MDS de Billom and the
# offer with seats set aside for its next permanence.
PEOPLE = [("Dupu", "Marie Dupuis"), ("Bena", "Karim Benali"), ("Vida", "Jeanne Vidal")]
BLOCK_OFFER = "Promenade commentée du parc"
CODE = re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$")
# Logging in checks a scrypt hash: slower than a page on a busy machine.
LOGIN_WAIT = 60

# The secret of identity keys (docs/privacy.md), so a person's page can
# record one.
_fd, _secret = tempfile.mkstemp(prefix="identity-", suffix=".secret")
os.write(_fd, b"the-browser-tests-identity-secret-0123456789")
os.close(_fd)
atexit.register(os.unlink, _secret)
EXTRA_INI = "[privacy]\nidentity_secret_file = %s\n" % _secret


def pick_person(desk, prefix, typed, name):
    """Types a few letters in a person picker, Enter takes the first."""
    box = desk.wait_for("[data-test=%s-search]" % prefix)
    box.clear()
    box.send_keys(typed)
    box.send_keys(Keys.ENTER)
    desk.wait_text(name, css="[data-test=%s-chosen]" % prefix)


def click_centered(desk, element):
    """Clicks an element scrolled to the middle of the window, clear of
    the toasts at the bottom."""
    desk.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def choose(select_el, text):
    """Selects the option whose label contains text."""
    sel = Select(select_el)
    for o in sel.options:
        if text in o.text:
            sel.select_by_visible_text(o.text)
            return
    raise AssertionError("no option %r in %r" % (text, [o.text for o in sel.options]))


def test_login_form_lands_on_the_permanence(desk):
    desk.login_form(REFERENT)
    desk.wait_for("[data-test=permanence]", timeout=LOGIN_WAIT)
    assert "#/desk" in desk.driver.current_url, desk.driver.current_url
    assert desk.find("html").get_attribute("lang") == "fr"
    assert desk.find("[data-test=who]").text.startswith("Claire Martin")
    assert desk.find("[data-test=permanence-state]").get_attribute("data-state") == "scheduled"
    # The seed's fingerprint is published before any wish.
    assert re.fullmatch(r"[0-9a-f]{64}", desk.find("[data-test=seed-sha256]").text)
    desk.wait_text(BLOCK_OFFER, css="[data-test=blocks]")
    desk.axe()
    desk.shot("referent-desk")

    # English on demand, remembered from page to page, and back.
    desk.find("[data-test=lang]").click()
    desk.wait_text("Run the draw")
    assert desk.find("html").get_attribute("lang") == "en"
    desk.goto("#/people", wait_for="[data-test=person-form]")
    desk.wait_text("First name")
    desk.find("[data-test=lang]").click()
    desk.wait_text("Prénom")
    assert desk.find("html").get_attribute("lang") == "fr"


def test_wishes_draw_and_voucher(desk):
    desk.login(REFERENT, route="#/desk")
    desk.wait_for("[data-test=wish-form]")
    for n, (typed, name) in enumerate(PEOPLE, 1):
        pick_person(desk, "wish-person", typed, name)
        choose(desk.find("[data-test=wish-choice-1]"), BLOCK_OFFER)
        seats = desk.find("[data-test=wish-seats]")
        seats.clear()
        seats.send_keys("1")
        desk.find("[data-test=wish-submit]").click()
        desk.wait(lambda d: desk.find("[data-test=wishes-count]").text == str(n),
                  message="wish %d (%s) never counted" % (n, name))
    for _, name in PEOPLE:
        desk.wait_text(name, css="[data-test=wishes]")
    published = desk.find("[data-test=seed-sha256]").text

    # The draw asks first; cancelling changes nothing.
    desk.find("[data-test=draw]").click()
    desk.wait_for("[data-test=confirm-cancel]").click()
    assert desk.find("[data-test=permanence-state]").get_attribute("data-state") == "scheduled"
    desk.find("[data-test=draw]").click()
    desk.wait_for("[data-test=confirm-ok]").click()
    desk.wait_for("[data-test=draw-table]", timeout=20)
    assert desk.find("[data-test=permanence-state]").get_attribute("data-state") == "drawn"

    rows = desk.find_all("[data-test=draw-row]")
    assert len(rows) == 3, "draw table has %d rows" % len(rows)
    for i, row in enumerate(rows, 1):
        cells = [c.text for c in row.find_elements("css selector", "td")]
        assert cells[0] == str(i), "order column: %r" % cells
        assert re.fullmatch(r"[0-9a-f]{64}", cells[3]), "lottery key: %r" % cells
    # Four seats set aside, three wishes of one seat: everyone gets it.
    assert len(desk.find_all("[data-test=draw] [data-test=voucher-link]")) == 3

    # The revealed seed hashes to the fingerprint shown before the draw,
    # and the page says so.
    seed = desk.find("[data-test=seed]").text
    assert hashlib.sha256(seed.encode()).hexdigest() == published
    desk.wait_text("Vérifié", css="[data-test=seed-check]")
    desk.axe()
    desk.shot("referent-draw")

    link = desk.find("[data-test=draw] [data-test=voucher-link]")
    href = link.get_attribute("href")
    assert "/voucher.html#" in href, href
    code = href.split("#", 1)[1]
    assert CODE.match(code), code
    # The voucher page (webvenue's) reads the code from the fragment.
    desk.goto("/voucher.html#" + code)
    desk.wait_text(BLOCK_OFFER, css="main")
    # Printed in groups for reading aloud: compare without separators.
    bare = code.replace("-", "")
    desk.wait(lambda d: bare in re.sub(r"[\s-]", "", desk.find("main").text),
              message="code %s not on its voucher" % code)


def test_person_consent_booking_and_cancellation(desk):
    desk.login(REFERENT, route="#/people")
    desk.wait_for("[data-test=person-form]")
    desk.find("[data-test=first-name]").send_keys("Odile")
    desk.find("[data-test=last-name]").send_keys("Marchand")
    desk.find("[data-test=person-submit]").click()
    # Refused by the API, explained in French next to the checkbox.
    desk.wait_text("accord", css="[data-field=consent] .error")
    assert desk.find("[data-test=consent]").get_attribute("aria-invalid") == "true"
    desk.find("[data-test=consent]").click()
    # Her own address, and her separate consent to e-mail reminders.
    desk.find("[data-test=person-email]").send_keys("odile@example.org")
    desk.find("[data-test=person-reminders]").click()
    desk.find("[data-test=person-submit]").click()
    desk.wait_text("Odile Marchand", css="[data-test=person-name]")
    assert desk.find("[data-test=person-email-shown]").text == "odile@example.org"
    assert desk.find("[data-test=person-reminders-shown]").text.startswith("oui")
    assert re.search(r"#/people/\d+$", desk.driver.current_url), desk.driver.current_url
    assert desk.find("[data-test=outings]").text == "0"

    desk.find("[data-test=book-for]").click()
    desk.wait_text("Odile Marchand", css="[data-test=book-person-chosen]")
    card = desk.wait_for("[data-test=offer][data-offer-id]")
    card = next(c for c in desk.find_all("[data-test=offer]")
                if "Atelier modelage en famille" in c.text)
    before = card.find_element("css selector", "[data-test=seats]").text
    card.find_element("css selector", "[data-test=book]").click()
    booked = desk.wait(lambda d: card.find_element("css selector", "[data-test=booked]"),
                       message="no confirmation of the booking")
    assert "Odile Marchand" in booked.text
    code = booked.find_element("css selector", "[data-test=voucher-link]") \
        .get_attribute("href").split("#", 1)[1]
    assert CODE.match(code), code
    # The count follows the booking (offer.seats_changed over /events).
    desk.wait(lambda d: card.find_element("css selector", "[data-test=seats]").text != before,
              message="seat count never moved from %r" % before)

    # A group outing from the same card: two people and a staff seat,
    # booked at once (docs/booking-rules.md, "Group outings").
    for first, last in (("Paulin", "Groupea"), ("Lina", "Groupeb")):
        desk.rpc("beneficiary.create", {"first_name": first, "last_name": last,
                                        "consent": True}, as_user=REFERENT)
    click_centered(desk, card.find_element("css selector", "[data-test=group] summary"))
    for last in ("Groupea", "Groupeb"):
        box = card.find_element("css selector", "[data-test=group-person-search]")
        box.clear()
        box.send_keys(last)
        box.send_keys(Keys.ENTER)
        desk.wait(lambda d: last in card.find_element(
            "css selector", "[data-test=group-person-chosen]").text,
            message="%s not picked" % last)
        click_centered(desk, card.find_element("css selector", "[data-test=group-add]"))
    click_centered(desk, card.find_element("css selector", "[data-test=group-book]"))
    grp = desk.wait(lambda d: card.find_element("css selector", "[data-test=group-booked]"),
                    message="no confirmation of the group outing")
    assert "2 personne(s), 1 encadrant(s)" in grp.text, grp.text
    desk.axe()
    desk.shot("referent-offers")

    desk.driver.back()
    desk.wait_text("Atelier modelage en famille", css="[data-test=upcoming]")
    click_centered(desk, desk.find("[data-test=upcoming] [data-test=cancel-booking]"))
    desk.wait_for("[data-test=confirm-ok]").click()
    desk.wait_text("Aucun résultat", css="[data-test=upcoming]")
    desk.wait_text("annulée", css="[data-test=history]")

    # Her identity key, with her consent: the page says when, nothing more.
    desk.find("[data-test=identity-birth-date]").send_keys("02041961")
    click_centered(desk, desk.find("[data-test=identity-consent]"))
    click_centered(desk, desk.find("[data-test=identity-submit]"))
    desk.wait_text("Clé d’identité enregistrée le", css="[data-test=identity-state]")

    # Too late to cancel: said in French on the person's page.
    start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=10)
    offer = desk.rpc("offer.publish", {
        "title": "Conférence du jeudi", "category": "other",
        "venue": "Auditorium", "city": "Lezoux", "seats": 10,
        "starts_at": start.strftime("%Y-%m-%dT%H:%M:%SZ")}, as_user=PARTNER)
    person = desk.rpc("beneficiary.create", {"first_name": "Léon", "last_name": "Barre",
                                             "consent": True}, as_user=REFERENT)
    desk.rpc("booking.create", {"offer_id": offer["id"], "beneficiary_id": person["id"],
                                "seats": 1}, as_user=REFERENT)
    # The API gives no way to move a deadline into the past: behind it.
    subprocess.run(["psql", desk.conninfo, "-XAtqc",
                    "UPDATE offers SET booking_deadline = now() - interval '1 hour' "
                    "WHERE id = %d" % offer["id"]], check=True)
    desk.goto("#/people/%d" % person["id"])
    desk.wait_text("Conférence du jeudi", css="[data-test=upcoming]")
    click_centered(desk, desk.find("[data-test=upcoming] [data-test=cancel-booking]"))
    desk.wait_for("[data-test=confirm-ok]").click()
    desk.wait_text("Trop tard pour annuler", css="[data-test=upcoming]")
    # Still booked.
    assert desk.rpc("booking.list", {"beneficiary_id": person["id"]},
                    as_user=REFERENT)["items"][0]["status"] == "confirmed"
    # Until the show, a late withdrawal with its reason gives the seat back.
    click_centered(desk, desk.find("[data-test=upcoming] details.withdraw summary"))
    Select(desk.find("[data-test=withdraw-reason]")).select_by_value("transport")
    click_centered(desk, desk.find("[data-test=withdraw-booking]"))
    desk.wait_text("désistement tardif", css="[data-test=history]")
    desk.wait_for("[data-test=record-score]")
    got = desk.rpc("booking.list", {"beneficiary_id": person["id"]}, as_user=REFERENT)
    assert got["items"][0]["status"] == "withdrawn_late"
    assert got["items"][0]["withdraw_reason"] == "transport"


def test_phone_width_and_logout(desk):
    desk.login(REFERENT, route="#/desk")
    desk.wait_for("[data-test=permanence]")
    desk.phone()
    person = desk.rpc("beneficiary.list", {"query": "Dupuis"}, as_user=REFERENT)["items"][0]
    for route in ("#/desk", "#/offers", "#/people", "#/people/%d" % person["id"]):
        desk.goto(route)
        desk.wait_page()
        # A mobile browser widens its layout to fit what overflows:
        # compare every element's right edge with the phone's width
        # (tables scroll sideways inside their wrapper: that is allowed).
        wide = desk.driver.execute_script("""
            return [...document.body.querySelectorAll('*')]
              .filter(e => !e.closest('.table-wrap > *'))
              .filter(e => e.getBoundingClientRect().right > arguments[0] + 1)
              .map(e => e.tagName + '.' + e.className + ' '
                        + Math.round(e.getBoundingClientRect().right) + 'px')
              .slice(0, 5);""", harness.PHONE[0])
        assert not wide, "%s wider than a %d px phone: %s" % (route, harness.PHONE[0], wide)
    desk.desktop()
    desk.goto("#/desk", wait_for="[data-test=logout]").click()
    desk.wait_for("[data-test=login-form]")
    ans = desk.page_rpc("auth.whoami", {})
    assert ans.get("error", {}).get("data", {}).get("reason") == "unauthenticated", ans
    left = desk.cookie("st_session")
    assert left is None or not left.get("value"), "auth.logout left the cookie: %r" % left


if __name__ == "__main__":
    harness.main(globals())
