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
    ("referent-account", REFERENT, "#/account"),
    ("partner-account", PARTNER, "#/account"),
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


def focused(desk):
    el = desk.driver.switch_to.active_element
    return el, (el.get_attribute("data-test") or el.get_attribute("id") or el.tag_name)


def test_keyboard_reaches_the_login_form(desk):
    from selenium.webdriver.common.keys import Keys
    desk.goto("#/login")
    desk.wait_page()
    # The first focusable element of the document is the skip link.
    first = desk.driver.execute_script("""
        const f = [...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]
            .filter(e => e.tabIndex >= 0 && !e.disabled);
        return f.length ? f[0].id : null;""")
    assert first == "skip", "the first focusable element is #%s, not the skip link" % first
    desk.find("main h1")
    # From the heading (where the app puts focus), Tab goes through
    # e-mail, password and the button, in order.
    seen = []
    for _ in range(8):
        desk.driver.switch_to.active_element.send_keys(Keys.TAB)
        seen.append(focused(desk)[1])
        if seen[-1] == "login-submit":
            break
    order = [n for n in seen if n in ("login-email", "login-password", "login-submit")]
    assert order == ["login-email", "login-password", "login-submit"], \
        "Tab from the content goes through %s" % seen
    # The focused button shows it: an outline or a box shadow.
    style = desk.driver.execute_script("""
        const s = getComputedStyle(document.activeElement);
        return [s.outlineStyle, s.outlineWidth, s.boxShadow];""")
    assert (style[0] != "none" and style[1] not in ("0px", "")) or style[2] != "none", \
        "no visible focus on the submit button: %s" % style


def test_skip_link_stays_on_the_page(desk):
    # The skip link is an in-page link in a hash-routed app: following it
    # must put focus in the content, not route away from the page.
    from selenium.webdriver.common.keys import Keys
    desk.login(REFERENT, route="#/people")
    desk.wait_page()
    desk.driver.execute_script("document.getElementById('skip').focus()")
    desk.driver.switch_to.active_element.send_keys(Keys.ENTER)
    desk.wait(lambda d: d.execute_script(
        "return document.getElementById('main').contains(document.activeElement)"),
        5, "the skip link does not move focus into <main>")
    here = desk.driver.execute_script("return location.hash")
    assert here == "#/people", "the skip link left the people page for %s" % here


if __name__ == "__main__":
    harness.main(globals())
