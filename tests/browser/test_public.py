#!/usr/bin/env python3
"""The capability pages: the voucher (bon de sortie) of a booking, its
QR code, the voucher of a cancelled booking, and a structure's public
page of permanences with its calendar."""
import harness
from harness import ADMIN, REFERENT
from venue_util import beneficiary, paris

state = {}


def book(desk, first_name):
    offers = desk.rpc("offer.list", {"available_only": True, "limit": 100},
                      as_user=REFERENT)["items"]
    atelier = [o for o in offers if o["title"] == "Atelier modelage en famille"][0]
    return desk.rpc("booking.create", {"offer_id": atelier["id"],
                                       "beneficiary_id": beneficiary(desk, REFERENT, first_name),
                                       "seats": 1}, as_user=REFERENT), atelier


def test_voucher(desk):
    b, offer = book(desk, "Marie")
    desk.goto("/voucher.html#" + b["code"], wait_for=".ticket .code")
    groups = [g.text for g in desk.find_all(".ticket .code .group")]
    assert groups == b["code"].split("-"), groups
    text = desk.find("main").text
    assert "Atelier modelage en famille" in text, text
    assert "Marie D." in text and "Dupuis" not in text, text
    assert "1 place" in text, text
    # The date the French way, in Paris time.
    day = paris(offer["starts_at"]).day
    assert (" %d " % day) in text, text
    qr = desk.find("img.qr")
    desk.wait(lambda d: d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", qr),
        message="the QR code image did not load")
    assert b["code"] in qr.get_attribute("alt").replace(" ", "-"), \
        "the QR code's text alternative does not give the code"
    desk.axe()
    desk.shot("voucher")
    state["booking"] = b


def test_voucher_cancelled(desk):
    b = state["booking"]
    desk.rpc("booking.cancel", {"booking_id": b["id"]}, as_user=REFERENT)
    desk.goto("/voucher.html#" + b["code"])
    desk.wait_text("n’est plus valable")
    assert not desk.find_all("img.qr"), "a cancelled voucher still shows its QR code"
    desk.axe()


def test_voucher_lowercase_code(desk):
    b, _ = book(desk, "Jeanne")
    desk.goto("/voucher.html#" + b["code"].lower().replace("-", ""),
              wait_for=".ticket .code")
    assert [g.text for g in desk.find_all(".ticket .code .group")] == b["code"].split("-")


def test_public_page_and_ics(desk):
    structures = desk.rpc("structure.list", {"limit": 500}, as_user=ADMIN)["items"]
    mds = [s for s in structures if s["name"] == "Maison des Solidarités de Billom"][0]
    perms = desk.rpc("permanence.list", {"limit": 100}, as_user=REFERENT)["items"]
    assert perms, "the demo's permanences are missing"
    desk.goto("/public.html#%d" % mds["id"], wait_for="li.perm")
    assert "Maison des Solidarités de Billom" in desk.find("h1").text
    items = desk.find_all("li.perm")
    first = paris(perms[0]["starts_at"])
    assert str(first.day) in items[0].text and "de 10 h à 12 h" in items[0].text, \
        items[0].text
    link = desk.find("a[href$='.ics']")
    assert link.get_attribute("href").endswith("/p/%d.ics" % mds["id"])
    desk.axe()
    desk.shot("public")

    resp = desk.client().request("GET", "/p/%d.ics" % mds["id"], origin=False)
    assert resp.status == 200, resp
    assert resp.header("content-type").startswith("text/calendar"), resp.headers
    ics = resp.text.replace("\r\n ", "")
    assert ics.startswith("BEGIN:VCALENDAR") and ics.rstrip().endswith("END:VCALENDAR"), ics[:200]
    assert ics.count("BEGIN:VEVENT") == len(items), \
        "%d events in the calendar, %d on the page" % (ics.count("BEGIN:VEVENT"), len(items))


def test_public_unknown(desk):
    desk.goto("/public.html#999999")
    desk.wait_text("inconnue")


if __name__ == "__main__":
    harness.main(globals())
