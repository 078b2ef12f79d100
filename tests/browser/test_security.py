#!/usr/bin/env python3
"""The desk's HTTP front door resists what the web throws at it: the
session cookie stays out of reach of scripts and other sites, posts from
another origin change nothing, every answer carries the security headers,
one role cannot use another's pages, voucher codes cannot be probed in
bulk, and static files never leave web/ (docs/http.md)."""
import datetime
import time

import harness
from harness import PARTNER, REFERENT, RpcError

# A small voucher.get budget, so that its limit is reached in a few calls.
VOUCHER_RATE = 5
EXTRA_INI = "[policy]\nvoucher_rate = %d\n" % VOUCHER_RATE

CSP = ("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "strict-transport-security": "max-age=31536000",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def cookie_attrs(set_cookie):
    """'st_session=abc; HttpOnly; Path=/' -> ('abc', {'httponly': '', 'path': '/'})"""
    parts = [p.strip() for p in set_cookie.split(";")]
    value = parts[0].split("=", 1)[1]
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip()
    return value, attrs


def session_set_cookie(resp):
    lines = [l for l in resp.headers.get("set-cookie", "").split("\n")
             if l.strip().startswith("st_session=")]
    assert lines, "no st_session cookie set: %r" % resp
    return lines[-1]


def test_login_cookie_is_httponly_secure_strict(desk):
    c = desk.client()
    r = c.call_raw("auth.login", {"email": REFERENT, "password": harness.DEMO_PASSWORD})
    assert r.status == 200, r
    res = r.json()["result"]
    assert "token" not in res, "auth.login over HTTP must not hand the token to the page: %r" % res
    assert res["user"]["email"] == REFERENT, res
    value, attrs = cookie_attrs(session_set_cookie(r))
    assert len(value) >= 16, "session cookie value too short: %r" % value
    assert "httponly" in attrs, attrs
    assert "secure" in attrs, attrs
    assert attrs.get("samesite", "").lower() == "strict", attrs
    assert attrs.get("path") == "/", attrs
    # The cookie is the session.
    assert c.call("auth.whoami")["user"]["email"] == REFERENT


def test_page_script_cannot_read_the_session_cookie(desk):
    desk.login(REFERENT)
    ck = desk.cookie("st_session")
    assert ck is not None, "no st_session cookie in the browser after login"
    assert ck["httpOnly"] is True and ck["secure"] is True, ck
    assert ck.get("sameSite") == "Strict", ck
    seen = desk.driver.execute_script("return document.cookie")
    assert "st_session" not in seen and ck["value"] not in seen, \
        "document.cookie shows the session: %r" % seen
    # Still logged in, through the cookie the page cannot see.
    ans = desk.page_rpc("auth.whoami")
    assert ans.get("result", {}).get("user", {}).get("email") == REFERENT, ans


def test_logout_revokes_the_session_server_side(desk):
    c = desk.client()
    c.login(REFERENT)
    stolen = c.cookie
    r = c.call_raw("auth.logout")
    assert r.status == 200 and "result" in r.json(), r
    # The answer clears the cookie...
    line = session_set_cookie(r)
    value, attrs = cookie_attrs(line)
    assert value == "" or attrs.get("max-age") == "0" or "expires" in attrs, \
        "logout did not clear the cookie: %r" % line
    # ...and the old value is worth nothing, even replayed.
    thief = desk.client()
    thief.cookie = stolen
    try:
        who = thief.call("auth.whoami")
    except RpcError as e:
        assert e.reason == "unauthenticated", e
    else:
        raise AssertionError("a logged-out cookie still logs in: %r" % who)


def beneficiaries_named(desk, last_name):
    res = desk.rpc("beneficiary.list", {"query": last_name}, as_user=REFERENT)
    return [b for b in res["items"] if b.get("last_name") == last_name]


def test_cross_origin_post_refused_and_changes_nothing(desk):
    c = desk.client()
    c.login(REFERENT)
    create = {"first_name": "Eve", "last_name": "Intruse", "consent": True}
    for origin, what in (("https://evil.example", "another origin"),
                         (False, "no Origin"),
                         ("null", "an opaque origin"),
                         ("http://%s:%d" % (desk.host, desk.http_port), "plain http")):
        r = c.call_raw("beneficiary.create", create, origin=origin)
        assert r.status == 403, "POST /rpc with %s answered %d, not 403: %r" % (what, r.status, r)
        for k, v in SECURITY_HEADERS.items():
            assert r.header(k) == v, "403 answer lacks %s: %r" % (k, r.headers)
    assert beneficiaries_named(desk, "Intruse") == [], "a refused POST created a beneficiary"
    # A login from another origin sets no cookie either.
    anon = desk.client()
    r = anon.call_raw("auth.login", {"email": REFERENT, "password": harness.DEMO_PASSWORD},
                      origin="https://evil.example")
    assert r.status == 403 and "st_session" not in r.headers.get("set-cookie", ""), r
    # The same call from the desk's own origin does go through: the
    # refusals above are about the origin, not the call.
    c.call("beneficiary.create", dict(create, last_name="Legitime"))
    assert len(beneficiaries_named(desk, "Legitime")) == 1


def refused_posts(desk):
    """POSTs the daemon logged as refused (for a wrong or missing Origin)."""
    return sum(1 for line in desk.daemon_log().splitlines()
               if "POST" in line and "refused" in line)


class OtherSite:
    """Another web site, https://127.0.0.1:PORT, with no CSP of its own:
    what a page of an attacker can do in the referent's browser. Uses the
    desk's certificate (it names 127.0.0.1), which the browser trusts."""

    def __init__(self, desk):
        import http.server
        import ssl
        import threading

        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"<!doctype html><html lang=en><title>elsewhere</title><p>elsewhere"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(desk.certs + "/server.pem", desk.certs + "/server.key")
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = "https://127.0.0.1:%d/" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_page_of_another_site_cannot_drive_the_desk(desk):
    desk.login(REFERENT)
    refused_before = refused_posts(desk)
    other = OtherSite(desk)
    try:
        desk.driver.get(other.url)
        # A fetch the browser sends without asking (no-cors, text/plain)...
        sent = desk.driver.execute_async_script("""
            const [url, done] = arguments;
            fetch(url, {method: 'POST', mode: 'no-cors', credentials: 'include',
                        headers: {'Content-Type': 'text/plain'},
                        body: JSON.stringify({jsonrpc: '2.0', id: 1,
                            method: 'beneficiary.create',
                            params: {first_name: 'Mallory', last_name: 'Forgery',
                                     consent: true}})})
              .then(() => done('sent'), e => done('error: ' + e));
        """, desk.origin + "/rpc")
        assert sent == "sent", sent
        # ...and the classic forged form, posted top-level.
        desk.driver.execute_script("""
            const f = document.createElement('form');
            f.method = 'POST';
            f.action = arguments[0];
            f.enctype = 'text/plain';
            const i = document.createElement('input');
            i.name = '{"jsonrpc":"2.0","id":2,"method":"beneficiary.create","params":' +
                     '{"first_name":"Mallory","last_name":"Formed","consent":true},"x":"';
            i.value = '"}';
            f.append(i);
            document.body.append(f);
            f.submit();
        """, desk.origin + "/rpc")
        desk.wait(lambda d: d.current_url.startswith(desk.origin), 10,
                  "the forged form was not posted")
    finally:
        other.close()
    # Both reached the desk (this test proves nothing otherwise)...
    desk.wait(lambda d: refused_posts(desk) >= refused_before + 2, 10,
              "the daemon did not log the two cross-site POSTs as refused")
    # ...and did nothing.
    assert beneficiaries_named(desk, "Forgery") == [], \
        "a page of another site created a beneficiary with the referent's session (fetch)"
    assert beneficiaries_named(desk, "Formed") == [], \
        "a page of another site created a beneficiary with the referent's session (form)"


def test_security_headers_on_every_answer(desk):
    c = desk.client()
    c.login(REFERENT)
    checks = [
        ("GET", "/", 200), ("GET", "/index.html", 200),
        ("GET", "/js/app.js", 200), ("GET", "/css/app.css", 200),
        ("GET", "/voucher.html", 200), ("GET", "/public.html", 200),
        ("GET", "/healthz", 200),
        ("GET", "/no-such-page.html", 404), ("GET", "/js/no-such.js", 404),
    ]
    for method, path, status in checks:
        r = c.request(method, path)
        assert r.status == status, "%s %s: %d, not %d" % (method, path, r.status, status)
        for k, v in SECURITY_HEADERS.items():
            assert r.header(k) == v, "%s %s: %s is %r, not %r" % (method, path, k, r.header(k), v)
    # An answer of the API, and an error of the front door.
    r = c.call_raw("system.ping")
    assert r.status == 200, r
    for k, v in SECURITY_HEADERS.items():
        assert r.header(k) == v, "POST /rpc: %s is %r" % (k, r.header(k))
    r = c.request("POST", "/rpc", body="{not json", headers={"Content-Type": "application/json"})
    for k, v in SECURITY_HEADERS.items():
        assert r.header(k) == v, "POST /rpc (parse error): %s is %r" % (k, r.header(k))
    # With nosniff, a module script must come with a JavaScript type.
    ct = c.request("GET", "/js/app.js").header("content-type") or ""
    assert ct.split(";")[0].strip() in ("text/javascript", "application/javascript"), ct
    ct = c.request("GET", "/css/app.css").header("content-type") or ""
    assert ct.split(";")[0].strip() == "text/css", ct


def test_pages_break_no_csp_rule(desk):
    # An inline script or style, or a file from elsewhere, would be
    # blocked by the CSP: the console says so.
    desk.console_errors()
    for route in ("/", "/voucher.html#AAAA-BBBB-CCCC-DDDD", "/public.html#1"):
        desk.goto(route)
        time.sleep(0.3)   # let the modules run
        bad = [e["message"] for e in desk.console_errors()
               if "Content Security Policy" in e.get("message", "")]
        assert not bad, "%s breaks the CSP: %s" % (route, bad)


def test_partner_cannot_use_referent_methods(desk):
    c = desk.client()
    c.login(PARTNER)
    for method, params in (("beneficiary.list", {}),
                           ("booking.create", {"offer_id": 1, "beneficiary_id": 1, "seats": 1}),
                           ("permanence.list", {})):
        try:
            c.call(method, params)
        except RpcError as e:
            assert e.reason == "forbidden", "%s as a partner: %s" % (method, e)
        else:
            raise AssertionError("%s answered a partner" % method)


def test_partner_session_does_not_show_referent_pages(desk):
    desk.login(PARTNER)
    for route in ("#/people", "#/desk", "#/offers"):
        desk.goto(route)
        # Either the "not allowed" screen, or the partner's own home:
        # never the referent's page with its people.
        desk.wait(lambda d: d.execute_script(
            "return document.querySelector('main h1, main [role=alert]') !== null"),
            10, "%s under a partner session shows nothing" % route)
        time.sleep(0.3)
        text = desk.find("main").text
        for name in ("Dupuis", "Benali", "Vidal"):
            assert name not in text, "%s shows the referent's people to a partner" % route
        here = desk.driver.execute_script("return location.hash")
        denied = desk.find_all("[data-test=not-allowed]")
        assert here != route or denied, \
            "%s under a partner session: neither refused nor redirected" % route


def test_events_need_a_session(desk):
    r = desk.client().request("GET", "/events?topics=offer.published",
                              headers={"Accept": "text/event-stream"})
    assert r.status in (401, 403), "GET /events without a session: %r" % r
    for k, v in SECURITY_HEADERS.items():
        assert r.header(k) == v, "GET /events refused: %s is %r" % (k, r.header(k))


def test_static_files_never_leave_web(desk):
    c = desk.client()
    secrets = ("root:x:0:0", "strapontin-demo", "[database]", "# strapontin",
               "-----BEGIN")
    for path in ("/../README.md", "/../../etc/passwd", "/%2e%2e/README.md",
                 "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/js/../../README.md",
                 "/js/..%2f..%2fREADME.md", "/js/%2e%2e%2f%2e%2e%2fscripts/demo-data.sql",
                 "/..%5c..%5cREADME.md", "//etc/passwd", "/js/%00../../README.md",
                 "/.%2e/.%2e/etc/passwd", "/%252e%252e/README.md",
                 "/js/app.js%00.html", "/../tests/browser/harness.py"):
        r = c.request("GET", path)
        assert r.status in (400, 403, 404), "GET %s: %d" % (path, r.status)
        for s in secrets:
            assert s not in r.text, "GET %s leaked %r" % (path, s)
        for k, v in SECURITY_HEADERS.items():
            assert r.header(k) == v, "GET %s (refused): %s is %r" % (path, k, r.header(k))
    # A file inside web/ is still served: the refusals are about the path.
    assert c.request("GET", "/js/app.js").status == 200


ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"   # sql/api/40_bookings.sql


def well_formed_code(n):
    """A code no ticket has but that passes every syntax check (check
    character included), so that only the database can say no."""
    body = ("ZZZZZZZZZZZ%04d" % n)[:15]
    s = sum(ALPHABET.index(ch) * (i + 1) for i, ch in enumerate(body))
    code = body + ALPHABET[s % 31]
    return "-".join(code[i:i + 4] for i in range(0, 16, 4))


def a_ticket_code(desk):
    items = desk.rpc("booking.list", {"status": "confirmed"}, as_user=REFERENT)["items"]
    assert items, "the demo referent has no confirmed booking"
    return items[0]["code"]


def test_voucher_get_is_rate_limited(desk):
    # Keep last: it spends this address's voucher.get budget.
    code = a_ticket_code(desk)
    anon = desk.client()
    v = anon.call("voucher.get", {"code": code})
    assert v["code"] == code and "offer" in v, v
    for attempt in range(2):
        minute = datetime.datetime.now().replace(second=0, microsecond=0)
        answers = []
        for i in range(VOUCHER_RATE + 1):
            try:
                anon.call("voucher.get", {"code": well_formed_code(i)})
                answers.append("found")
            except RpcError as e:
                answers.append(e)
        if datetime.datetime.now().replace(second=0, microsecond=0) != minute:
            continue  # the budget is per minute: this burst straddled two
        break
    reasons = [a.reason if isinstance(a, RpcError) else a for a in answers]
    assert set(reasons) <= {"not_found", "rate_limited"}, reasons
    last = answers[-1]
    assert last.reason == "rate_limited", "voucher.get %d times in a minute: %s" % (
        VOUCHER_RATE + 2, reasons)
    assert int(last.data.get("retry_after_s", 0)) >= 1, last.data
    # Limited, a real code is not even looked up: nothing to probe.
    try:
        anon.call("voucher.get", {"code": code})
    except RpcError as e:
        assert e.reason == "rate_limited", e
    else:
        raise AssertionError("a rate-limited address still gets vouchers")


if __name__ == "__main__":
    harness.main(globals())
