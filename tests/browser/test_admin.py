#!/usr/bin/env python3
"""The coordinator's pages: the activity report (chart, table, CSV for
French spreadsheets), partners, structures and accounts, the audit log."""
import csv
import datetime
import glob
import io
import os
import time

import harness
from harness import ADMIN
from venue_util import open_as, PARIS, set_value

FIGURES = ["seats_offered", "seats_booked", "seats_attended", "no_shows",
           "beneficiaries", "first_timers", "staff_seats", "withdrawn_late", "demand"]


def this_year():
    y = datetime.datetime.now(PARIS).year
    return (datetime.datetime(y, 1, 1, tzinfo=PARIS).isoformat(),
            datetime.datetime(y + 1, 1, 1, tzinfo=PARIS).isoformat())


def test_report_chart_and_table(desk):
    frm, to = this_year()
    want = desk.rpc("report.activity", {"from": frm, "to": to, "group_by": "month"},
                    as_user=ADMIN)
    assert want["total"]["seats_offered"] > 0, "the demo has no offer this year: %r" % want
    open_as(desk, ADMIN, "#/admin/report")
    chart = desk.wait_for("[data-test=report-chart] svg")
    bars = chart.find_elements("css selector", "rect.bar")
    # Three series a month, twelve months, plus the legend's three keys.
    assert len(bars) == 3 * 12 + 3, "%d bars" % len(bars)
    table = desk.find("table[data-test=report-table]")
    rows = table.find_elements("css selector", "tbody tr")
    assert len(rows) == 12, "%d rows for a calendar year" % len(rows)
    total = table.find_element("css selector", "tfoot tr").text
    assert total.startswith("Total"), total
    assert str(want["total"]["seats_offered"]) in total.replace("\u202f", ""), \
        "table total %r, report %r" % (total, want["total"])
    desk.axe()
    desk.shot("admin-report")


def test_report_csv(desk):
    frm, to = this_year()
    want = desk.rpc("report.activity", {"from": frm, "to": to, "group_by": "month"},
                    as_user=ADMIN)
    downloads = os.path.join(desk.dir, "downloads")
    os.makedirs(downloads, exist_ok=True)
    for f in glob.glob(os.path.join(downloads, "*")):
        os.remove(f)
    desk.driver.execute_cdp_cmd("Page.setDownloadBehavior",
                                {"behavior": "allow", "downloadPath": downloads})
    open_as(desk, ADMIN, "#/admin/report")
    desk.wait_for("[data-test=report-csv]").click()

    def done(_):
        files = [f for f in glob.glob(os.path.join(downloads, "*.csv"))]
        return files[0] if files else None
    path = desk.wait(done, message="no CSV downloaded")
    time.sleep(0.2)  # the file is renamed to .csv once written whole
    raw = open(path, "rb").read()
    assert raw.startswith(b"\xef\xbb\xbf"), "no UTF-8 byte-order mark: %r" % raw[:10]
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Mois", "Places offertes", "Places réservées", "Places utilisées",
                       "Places perdues (absents)", "Personnes sorties",
                       "Premières sorties", "Places d’encadrants",
                       "Désistements tardifs (places)",
                       "Places demandées non servies"], rows[0]
    body = rows[1:-1]
    assert [r[0] for r in body] == [it["key"] for it in want["items"]], body
    for r, it in zip(body, want["items"]):
        assert [int(x) for x in r[1:]] == [it[f] for f in FIGURES], (r, it)
    assert rows[-1][0] == "Total"
    assert [int(x) for x in rows[-1][1:]] == [want["total"][f] for f in FIGURES]


def test_report_by_category(desk):
    open_as(desk, ADMIN, "#/admin/report")
    desk.wait_for("[data-test=report-chart]")
    set_value(desk, "[data-test=report-group]", "category")
    desk.find("[data-test=report-submit]").click()
    desk.wait_text("Catégorie", css="[data-test=report-table] thead")
    desk.wait_text("Musée", css="[data-test=report-table] tbody")


def test_partner_and_account(desk):
    open_as(desk, ADMIN, "#/admin/partners")
    desk.wait_for("[data-test=partner-list]")
    desk.find("details.publish > summary").click()
    form = desk.find("[data-test=partner-form]")
    form.find_element("name", "name").send_keys("Théâtre d'essai")
    set_value(desk, "[data-test=partner-form] [name=kind]", "theatre")
    form.find_element("name", "city").send_keys("Riom")
    desk.find("[data-test=partner-submit]").click()
    desk.wait_text("Théâtre d'essai", css="[data-test=partner-list]")

    desk.goto("#/admin/users")
    desk.wait_for("[data-test=user-list]")
    desk.find("details.publish > summary").click()
    form = desk.find("[data-test=user-form]")
    form.find_element("name", "display_name").send_keys("Guichet d'essai")
    form.find_element("name", "email").send_keys("guichet@essai.example")
    set_value(desk, "[data-test=user-role]", "partner")
    partners = desk.rpc("partner.list", {"limit": 500}, as_user=ADMIN)["items"]
    pid = [p["id"] for p in partners if p["name"] == "Théâtre d'essai"][0]
    set_value(desk, "[data-test=user-form] [name=partner_id]", str(pid))
    form.find_element("name", "password").send_keys("essai-essai-1")
    desk.find("[data-test=user-submit]").click()
    desk.wait_text("guichet@essai.example", css="[data-test=user-list]")
    # The same address again: refused next to the field, in French.
    form.find_element("name", "display_name").send_keys("Doublon")
    form.find_element("name", "email").send_keys("guichet@essai.example")
    form.find_element("name", "password").send_keys("essai-essai-1")
    desk.find("[data-test=user-submit]").click()
    err = desk.wait_for("[data-field=email] .error")
    assert "existe déjà" in err.text, err.text

    users = desk.rpc("user.list", {"limit": 500}, as_user=ADMIN)["items"]
    uid = [u["id"] for u in users if u["email"] == "guichet@essai.example"][0]
    # The new account is the last row, at the bottom of the window: the
    # messages of the creation cover it until they fade, as for a person.
    desk.wait(lambda d: not desk.find_all(".toast"), timeout=15,
              message="the creation's messages never went")
    button = desk.find("[data-test=disable-%d]" % uid)
    desk.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    desk.wait_for("[data-test=confirm-ok]").click()
    desk.wait(lambda d: not desk.find_all("[data-test=disable-%d]" % uid),
              message="the disabled account still has its button")
    users = desk.rpc("user.list", {"limit": 500}, as_user=ADMIN)["items"]
    assert [u["enabled"] for u in users if u["id"] == uid] == [False]
    desk.axe()


def test_audit_log(desk):
    open_as(desk, ADMIN, "#/admin/audit")
    table = desk.wait_for("[data-test=audit-table]")
    desk.wait_text("partner.create", css="[data-test=audit-table]")
    desk.wait_text("user.disable", css="[data-test=audit-table]")
    desk.find("[data-test=audit-form] [name=method]").send_keys("user.disable")
    desk.find("[data-test=audit-form] button[type=submit]").click()
    desk.wait(lambda d: "partner.create" not in table.text,
              message="the method filter kept other methods")
    assert "user.disable" in table.text
    desk.axe()
    desk.shot("admin-audit")


if __name__ == "__main__":
    harness.main(globals())
