#!/usr/bin/env python3
"""Every main page of the desk passes axe-core with no serious or critical
violation, at desktop and at phone size, in French and in English, and is
usable with the keyboard; screenshots of each go to build/browser-shots/."""
import harness
from harness import ADMIN, PARTNER, REFERENT


def ticket_code(desk):
    items = desk.rpc("booking.list", {"status": "confirmed"}, as_user=REFERENT)["items"]
    assert items, "the demo referent has no confirmed booking"
    return items[0]["code"]


def structure_id(desk):
    items = desk.rpc("structure.list", {"limit": 100}, as_user=ADMIN)["items"]
    ids = [s["id"] for s in items if s["name"] == "Maison des Solidarités de Billom"]
    assert ids, "no MDS de Billom in the demo data"
    return ids[0]


# (name, who is logged in (None: nobody), route: a string or a function
# of the desk giving one)
PAGES = [
    ("login", None, "#/login"),
    ("referent-desk", REFERENT, "#/desk"),
    ("referent-offers", REFERENT, "#/offers"),
    ("referent-people", REFERENT, "#/people"),
    ("partner-offers", PARTNER, "#/partner/offers"),
    ("partner-checkin", PARTNER, "#/checkin"),
    ("admin-report", ADMIN, "#/admin/report"),
    ("admin-audit", ADMIN, "#/admin/audit"),
    ("admin-partners", ADMIN, "#/admin/partners"),
    ("admin-structures", ADMIN, "#/admin/structures"),
    ("admin-users", ADMIN, "#/admin/users"),
    ("voucher", None, lambda desk: "/voucher.html#" + ticket_code(desk)),
    ("public", None, lambda desk: "/public.html#%d" % structure_id(desk)),
]


def check_page(desk, name, who, route):
    if callable(route):
        route = route(desk)
    if who is not None:
        desk.login(who, route=route)
    else:
        desk.goto(route)
    desk.wait_page()
    if route.startswith("#/"):
        here = desk.driver.execute_script("return location.hash")
        assert here.split("?")[0] == route, \
            "%s: the app went to %s instead (page not registered?)" % (route, here)
    lang = desk.driver.execute_script("return document.documentElement.lang")
    assert lang == "fr", "%s: <html lang=%r>, French first" % (route, lang)
    desk.axe()
    desk.phone()
    desk.axe()
    desk.shot(name)


def make_test(name, who, route):
    def test(desk):
        check_page(desk, name, who, route)
    test.__name__ = "test_" + name.replace("-", "_")
    return test


for _page in PAGES:
    _t = make_test(*_page)
    globals()[_t.__name__] = _t


def test_english_desk_passes_axe(desk):
    # The English catalogue has its own texts: lang attributes and labels
    # must follow.
    desk.login(REFERENT, route="#/desk")
    desk.wait_page()
    desk.find("[data-test=lang]").click()
    desk.wait(lambda d: d.execute_script("return document.documentElement.lang") == "en",
              10, "the language button did not switch <html lang> to en")
    desk.wait_page()
    desk.axe()
    desk.shot("referent-desk-en")
    desk.find("[data-test=lang]").click()   # back to French for the others
    desk.wait(lambda d: d.execute_script("return document.documentElement.lang") == "fr")


def test_keyboard_reaches_the_login_form(desk):
    from selenium.webdriver.common.keys import Keys
    desk.goto("#/login")
    desk.wait_page()
    body = desk.find("body")
    body.send_keys(Keys.TAB)
    first = desk.driver.switch_to.active_element
    assert first.get_attribute("id") == "skip", \
        "the first Tab stop is not the skip link: %s" % first.get_attribute("outerHTML")
    seen = []
    for _ in range(12):
        desk.driver.switch_to.active_element.send_keys(Keys.TAB)
        el = desk.driver.switch_to.active_element
        seen.append(el.get_attribute("data-test") or el.tag_name)
        if el.get_attribute("data-test") == "login-submit":
            break
    assert "login-email" in seen and "login-password" in seen and "login-submit" in seen, \
        "Tab does not go through e-mail, password and submit: %s" % seen
    # Focus is visible: the focused control has an outline or a box shadow.
    style = desk.driver.execute_script("""
        const s = getComputedStyle(document.activeElement);
        return [s.outlineStyle, s.outlineWidth, s.boxShadow];""")
    assert (style[0] != "none" and style[1] not in ("0px", "")) or style[2] != "none", \
        "no visible focus on the submit button: %s" % style


if __name__ == "__main__":
    harness.main(globals())
