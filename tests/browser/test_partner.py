#!/usr/bin/env python3
"""The venue's pages: a partner publishes an offer, reads its guest list,
and checks tickets in at the door by typed code (look-alikes and all);
a second scan is refused with the time of the first; on "Mon compte" it
turns the guest-list e-mail off."""
import datetime
import re

import harness
from harness import PARTNER, REFERENT, RpcError  # noqa: F401
from venue_util import open_as, beneficiary, french_clock, local_input, set_value

TITLE = "Concert au musée (test)"
state = {}


def test_publish_offer(desk):
    open_as(desk, PARTNER, "#/partner/offers")
    desk.wait_for("[data-test=partner-offers]")
    desk.find("details.publish > summary").click()
    # In three hours: tonight's show at the door, bookable for two more.
    now = datetime.datetime.now(datetime.timezone.utc)
    starts = now + datetime.timedelta(hours=3)
    desk.find("[data-test=offer-title]").send_keys(TITLE)
    set_value(desk, "[data-test=offer-category]", "concert")
    desk.find("[data-test=offer-venue]").send_keys("Auditorium")
    desk.find("[data-test=offer-city]").send_keys("Lezoux")
    set_value(desk, "[data-test=offer-starts_at]", local_input(starts))
    desk.find("[data-test=offer-seats]").send_keys("10")
    set_value(desk, "[data-test=offer-booking_deadline]",
              local_input(now + datetime.timedelta(hours=2)))
    desk.find("[data-test=publish-submit]").click()
    desk.wait_text(TITLE, css="[data-test=partner-offers]")

    offers = desk.rpc("offer.list", {"from": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
                      as_user=PARTNER)["items"]
    mine = [o for o in offers if o["title"] == TITLE]
    assert len(mine) == 1, "the published offer is not in offer.list: %r" % offers
    o = mine[0]
    assert o["seats_total"] == 10 and o["category"] == "concert", o
    # Entered in Paris time, stored in UTC: the same minute.
    assert o["starts_at"][:16] == starts.strftime("%Y-%m-%dT%H:%M"), \
        "starts_at %s, typed %s (Paris)" % (o["starts_at"], local_input(starts))
    state["offer"] = o
    desk.axe()
    desk.shot("partner-offers")


def test_publish_refusal_next_to_field(desk):
    open_as(desk, PARTNER, "#/partner/offers")
    desk.wait_for("[data-test=partner-offers]")
    desk.find("details.publish > summary").click()
    desk.find("[data-test=offer-title]").send_keys("Trop tard")
    desk.find("[data-test=offer-venue]").send_keys("Salle")
    desk.find("[data-test=offer-city]").send_keys("Lezoux")
    set_value(desk, "[data-test=offer-starts_at]", "2020-01-10T20:00")
    desk.find("[data-test=offer-seats]").send_keys("5")
    desk.find("[data-test=publish-submit]").click()
    err = desk.wait_for("[data-field=starts_at] .error")
    assert "à venir" in err.text, "the refusal of a past start is not in French " \
        "next to the field: %r" % err.text


def test_publish_weekly_series(desk):
    """A repeated offer: the first date and "every week" until a day give
    one offer per week, at the same Paris time, in one series."""
    open_as(desk, PARTNER, "#/partner/offers")
    desk.wait_for("[data-test=partner-offers]")
    desk.find("details.publish > summary").click()
    title = "Atelier du jardin (test)"
    now = datetime.datetime.now(datetime.timezone.utc)
    starts = now + datetime.timedelta(days=10)
    desk.find("[data-test=offer-title]").send_keys(title)
    set_value(desk, "[data-test=offer-category]", "workshop")
    desk.find("[data-test=offer-venue]").send_keys("Jardin")
    desk.find("[data-test=offer-city]").send_keys("Billom")
    set_value(desk, "[data-test=offer-starts_at]", local_input(starts))
    set_value(desk, "[data-test=offer-repeat]", "weekly")
    set_value(desk, "[data-test=offer-until_date]",
              local_input(starts + datetime.timedelta(days=15))[:10])
    desk.find("[data-test=offer-seats]").send_keys("6")
    desk.find("[data-test=publish-submit]").click()
    desk.wait_text(title, css="[data-test=partner-offers]")
    offers = desk.rpc("offer.list", {"from": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
                      as_user=PARTNER)["items"]
    mine = [o for o in offers if o["title"] == title]
    assert len(mine) == 3, "want three weekly dates: %r" % mine
    assert len({o["series_id"] for o in mine}) == 1 and mine[0]["series_id"], mine
    assert {local_input(datetime.datetime.fromisoformat(
        o["starts_at"].replace("Z", "+00:00")))[11:] for o in mine} == \
        {local_input(starts)[11:]}, mine


def test_guest_list_and_seats(desk):
    o = state["offer"]
    b = desk.rpc("booking.create", {"offer_id": o["id"],
                                    "beneficiary_id": beneficiary(desk, REFERENT, "Jeanne"),
                                    "seats": 2}, as_user=REFERENT)
    state["booking"] = b
    open_as(desk, PARTNER, "#/partner/offers/%d/guests" % o["id"])
    table = desk.wait_for("[data-test=guest-list]")
    desk.wait_text(b["code"], css="[data-test=guest-list]")
    assert "Jeanne V." in table.text, table.text
    assert "Vidal" not in table.text, "the partner sees a last name"
    desk.axe()
    desk.goto("#/partner/offers/%d" % o["id"])
    desk.wait_text("2", css="[data-test=offer-facts] [data-test=seats-taken]")
    assert desk.find("[data-test=offer-facts] [data-test=seats-left]").text == "8"
    # The demand, in numbers: two seats booked, nobody named.
    desk.wait_text("2", css="[data-test=offer-demand] [data-test=demand-seats_booked]")
    assert "Jeanne" not in desk.find("[data-test=offer-demand]").text
    # Not kept for anyone: said so, and the edit form offers the targets.
    assert desk.find("[data-test=offer-targets]").text == "Pour toutes les structures"
    desk.find("[data-test=edit-form] details.targets > summary").click()
    desk.wait_for("[data-test=edit-form] [data-test=offer-target_territories] input")


def lookalike(code):
    """The code as someone might type it: lower case, blanks for dashes,
    o for 0, l for 1."""
    return code.lower().replace("-", " ").replace("0", "o").replace("1", "l")


def test_checkin_typed_code(desk):
    b = state["booking"]
    open_as(desk, PARTNER, "#/checkin")
    field = desk.wait_for("[data-test=checkin-code]")
    # Only the show of tonight is in the list: it is chosen for us.
    assert desk.find("[data-test=checkin-show]").get_attribute("value") == \
        str(state["offer"]["id"])
    field.send_keys(lookalike(b["code"]) + "\n")
    v = desk.wait_for("[data-verdict=ok]")
    assert "ENTRÉE VALIDÉE" in v.text and "Jeanne V." in v.text and "2 places" in v.text, v.text
    desk.shot("partner-checkin-ok")

    # Second time: refused, with the time of the first, in Paris.
    first = desk.rpc("offer.guest_list", {"offer_id": state["offer"]["id"]},
                     as_user=PARTNER)["items"]
    assert [g["status"] for g in first if g["code"] == b["code"]] == ["attended"]
    field = desk.find("[data-test=checkin-code]")
    field.send_keys(b["code"] + "\n")
    v = desk.wait_for("[data-verdict=bad]")
    try:
        desk.rpc("ticket.check_in", {"code": b["code"]}, as_user=PARTNER)
        raise AssertionError("a second check-in was accepted")
    except RpcError as e:
        at = e.data["checked_in_at"]
    assert "DÉJÀ UTILISÉ à %s" % french_clock(at) in v.text, v.text
    desk.axe()
    desk.shot("partner-checkin-used")


def test_checkin_refusals(desk):
    open_as(desk, PARTNER, "#/checkin")
    field = desk.wait_for("[data-test=checkin-code]")
    # A misread character: refused in the page, before the server.
    code = state["booking"]["code"]
    wrong = code[:-1] + ("A" if code[-1] != "A" else "B")
    field.send_keys(wrong + "\n")
    v = desk.wait_for("[data-verdict=bad]")
    assert "CODE INVALIDE" in v.text, v.text
    # U is never in a code.
    field.send_keys("UUUU-0000-0000-0000\n")
    desk.wait(lambda d: "lettre U" in desk.find("[data-test=checkin-result]").text,
              message="a U is not explained")
    # A ticket of another of the venue's shows, with tonight's show chosen.
    other = desk.rpc("offer.list", {"partner_id": state["offer"]["partner_id"]},
                     as_user=PARTNER)["items"]
    visite = [o for o in other if o["title"].startswith("Visite guidée")][0]
    guests = desk.rpc("offer.guest_list", {"offer_id": visite["id"]}, as_user=PARTNER)["items"]
    assert guests, "the demo's booking of the guided tour is missing"
    field.send_keys(guests[0]["code"] + "\n")
    desk.wait(lambda d: "PAS POUR CETTE SÉANCE" in
              desk.find("[data-test=checkin-result]").text,
              message="a ticket of another show is not refused")
    again = desk.rpc("offer.guest_list", {"offer_id": visite["id"]}, as_user=PARTNER)["items"]
    assert again[0]["status"] == "confirmed", "the other show's ticket was checked in"


def test_checkin_camera(desk):
    desk.phone()
    open_as(desk, PARTNER, "#/checkin")
    desk.wait_for("[data-test=checkin-code]")
    has = desk.driver.execute_script("return 'BarcodeDetector' in window")
    status = desk.find("[data-test=camera-status]").text
    if has:
        # Where the browser can read QR codes the camera is offered.
        assert desk.find("[data-test=camera]").is_displayed(), status
    else:
        assert "Caméra indisponible" in status, status
        assert desk.find("[data-test=checkin-photo]").get_attribute("disabled") is not None
    desk.axe()
    desk.shot("partner-checkin-phone")


def test_account_mail_preferences(desk):
    # The box office reads its guest lists on the desk: "Mon compte", in
    # the navigation, turns the e-mail off (docs/mail.md).
    open_as(desk, PARTNER, "#/partner/offers")
    desk.wait_for("[data-test=nav-account]").click()
    desk.wait_for("[data-test=account-mail]")
    legend = desk.find("[data-test=account-mail] legend").text
    assert legend == "Les e-mails que je reçois", legend
    box = desk.find("[data-test=mail-guest_list]")
    assert box.is_selected(), "guest_list should be received by default"
    assert not desk.find_all("[data-test=mail-referent_digest]"), \
        "a partner is offered a referent's notice"
    desk.axe()
    box.click()
    desk.find("[data-test=account-save]").click()
    desk.wait_text("E-mails désactivés : 1.", css="[data-test=account-status]")
    me = desk.rpc("auth.whoami", as_user=PARTNER)["user"]
    assert me["mail_off"] == ["guest_list"], me
    desk.rpc("auth.set_mail_preferences", {"mail_off": []}, as_user=PARTNER)


if __name__ == "__main__":
    harness.main(globals())
