"""Browser test harness: a real desk on a throwaway database, driven by
headless Chromium. See tests/browser/README.md for the interface.

A test file is a list of functions test_*(desk) and ends with

    if __name__ == "__main__":
        harness.main(globals())

main() sets up once for the file: a PostgreSQL cluster (scripts/pg-tmp),
the migrated database with the demo data (scripts/demo-data.sql, every
account's password is DEMO_PASSWORD), development certificates
(scripts/mkcert), strapontind from the build tree with an [http] listener
serving the repository's web/, and Chromium through chromedriver. It runs
the tests in file order, prints one line per test and a summary, and tears
everything down, also on failure or SIGTERM. Anything missing (Chromium,
chromedriver, selenium, axe-core) fails the file: it is never skipped.

This is test code: it blocks, and it raises AssertionError (or whatever
went wrong) out of the test.
"""

import atexit
import base64
import ctypes
import glob
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

DEMO_PASSWORD = "strapontin-demo"
ADMIN_EMAIL = "admin@example.org"

# The demo accounts (scripts/demo-data.sql), by what they are.
REFERENT = "claire.martin@mds-billom.example"   # MDS de Billom
REFERENT_OTHER = "paul.roche@cs-chambery.example"
PARTNER = "accueil@musee-ceramique.example"     # musée de Lezoux
PARTNER_GUEST_LIST = "secretariat@us-billom.example"
ADMIN = ADMIN_EMAIL

DESKTOP = (1280, 800)
PHONE = (390, 844)

# axe impacts that fail a page.
AXE_FAILING = ("serious", "critical")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _env(name, default=None):
    v = os.environ.get(name)
    return v if v else default


SOURCE_DIR = _env("ST_SOURCE_DIR",
                  os.path.dirname(os.path.dirname(os.path.dirname(
                      os.path.abspath(__file__)))))
BUILD_DIR = _env("ST_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
STRAPONTIND = _env("STRAPONTIND",
                   os.path.join(BUILD_DIR, "daemon", "strapontind"))
SCALE = max(1, min(20, int(_env("ST_TIMEOUT_SCALE", "1"))))
SHOTS_DIR = os.path.join(BUILD_DIR, "browser-shots")


def log(msg):
    print("harness: " + msg, flush=True)


class RpcError(Exception):
    """A JSON-RPC error answer: .reason (error.data.reason, the stable
    word: "forbidden", "rate_limited"...), .code, .message, .data (dict)."""

    def __init__(self, error):
        self.error = error
        self.code = error.get("code")
        self.message = error.get("message", "")
        self.data = error.get("data") if isinstance(error.get("data"), dict) else {}
        self.reason = self.data.get("reason") or self.message
        super().__init__("%s (%s): %s" % (self.reason, self.code,
                                          json.dumps(error, ensure_ascii=False)))


class Response:
    """An HTTP answer: .status, .headers (dict, lower-case names; repeated
    headers joined by \\n), .body (bytes), .text, .json()."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<HTTP %d %r %r>" % (self.status, self.headers, self.body[:200])


class Client:
    """An HTTPS client of the desk (urllib-free http.client, TLS checked
    against the development CA), with its own session cookie: what a second
    browser, or a script, would be. Sends Origin = the desk's origin on
    POST unless told otherwise."""

    def __init__(self, desk):
        self.desk = desk
        self.cookie = None      # the st_session value, once logged in
        self.next_id = 1

    def request(self, method, path, body=None, headers=None, cookie=True,
                origin=True):
        """One request on a new connection. headers: extra ones; origin:
        True = the desk's, None/False = none, or a string. Returns a
        Response; never raises on an HTTP status."""
        h = {}
        if body is not None:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                h["Content-Type"] = "application/json"
            elif isinstance(body, str):
                body = body.encode()
        if method == "POST" and origin:
            h["Origin"] = self.desk.origin if origin is True else origin
        if cookie and self.cookie is not None:
            h["Cookie"] = "st_session=" + self.cookie
        h.update(headers or {})
        conn = http.client.HTTPSConnection(
            self.desk.host, self.desk.http_port,
            context=self.desk.ssl_context(), timeout=30 * SCALE)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            hdrs = {}
            for k, v in r.getheaders():
                k = k.lower()
                hdrs[k] = hdrs[k] + "\n" + v if k in hdrs else v
        finally:
            conn.close()
        resp = Response(r.status, hdrs, data)
        self._keep_cookie(resp)
        return resp

    def _keep_cookie(self, resp):
        for line in resp.headers.get("set-cookie", "").split("\n"):
            m = re.match(r"\s*st_session=([^;]*)", line)
            if m:
                self.cookie = m.group(1) or None

    def call_raw(self, method, params=None, **kw):
        """POST /rpc of one request: the Response (status not checked)."""
        req = {"jsonrpc": "2.0", "id": self.next_id, "method": method,
               "params": params if params is not None else {}}
        self.next_id += 1
        return self.request("POST", "/rpc", body=req, **kw)

    def call(self, method, params=None):
        """The result of one call; raises RpcError on an error answer and
        AssertionError on anything but HTTP 200 with a JSON-RPC answer."""
        r = self.call_raw(method, params)
        assert r.status == 200, "%s: HTTP %d %s" % (method, r.status, r.text)
        ans = r.json()
        if "error" in ans:
            raise RpcError(ans["error"])
        return ans["result"]

    def login(self, email, password=DEMO_PASSWORD):
        res = self.call("auth.login", {"email": email, "password": password})
        assert self.cookie, "auth.login set no st_session cookie"
        return res


class Desk:
    """Everything one test file needs; see the README."""

    def __init__(self, name):
        self.name = name
        self.dir = None
        self.driver = None
        self.daemon = None
        self.pg_dir = None
        self.http_port = None
        self.host = "localhost"
        self.origin = None
        self.base = None
        self._ctx = None
        self._clients = {}
        self.failed_shots = []

    # ---- set-up ---------------------------------------------------------

    def start(self):
        root = _env("ST_TEST_DIR", None)
        if root:
            self.dir = os.path.join(root, "browser", self.name)
            shutil.rmtree(self.dir, ignore_errors=True)
            os.makedirs(self.dir)
        else:
            self.dir = tempfile.mkdtemp(prefix="st-browser-")
        # postgres (as root, pg-tmp runs it as the postgres user) must
        # reach the cluster's directory, which pg-tmp puts under this one
        # when it can.
        os.chmod(self.dir, 0o755)
        log("work directory " + self.dir)
        self._check_tools()
        self._start_db()
        self._certs()
        self._start_daemon()
        self._start_browser()

    def _check_tools(self):
        missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
        if missing:
            raise RuntimeError("missing %s: run scripts/deps" % ", ".join(missing))
        try:
            import selenium  # noqa: F401
        except ImportError:
            raise RuntimeError("python3-selenium missing for %s: run scripts/deps"
                               % sys.executable)
        if not os.access(STRAPONTIND, os.X_OK):
            raise RuntimeError("no daemon at %s: build first" % STRAPONTIND)
        self.axe_js = axe_path()

    def _run(self, argv, input=None, what=None):
        p = subprocess.run(argv, input=input, capture_output=True, text=True,
                           cwd="/")
        if p.returncode != 0:
            raise RuntimeError("%s exited %d:\n%s%s" % (
                what or " ".join(argv), p.returncode, p.stdout, p.stderr))
        return p.stdout

    def _start_reaper(self):
        """A process of its own session that outlives this one: once this
        Python is gone, even killed (a ctest timeout), it stops the
        cluster (pg_ctl detaches it: nothing else would) and the browser
        (chromedriver and Chromium): see _REAPER. The daemon gets SIGTERM
        anyway when this process dies (_die_with_parent)."""
        subprocess.Popen(
            [sys.executable, "-c", _REAPER, str(os.getpid()), self.dir,
             os.path.join(SOURCE_DIR, "scripts", "pg-tmp")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, cwd="/")

    def _start_db(self):
        self._start_reaper()
        self.pg_dir = os.path.join(self.dir, "pg")
        pgtmp = os.path.join(SOURCE_DIR, "scripts", "pg-tmp")
        su = self._run([pgtmp, "start", self.pg_dir]).strip()
        owner = open(os.path.join(self.pg_dir, "conninfo.owner")).read().strip()
        runtime = open(os.path.join(self.pg_dir, "conninfo.runtime")).read().strip()
        self.conninfo = su + " dbname=strapontin"
        self._run(["psql", su + " dbname=postgres", "-Xqc",
                   "CREATE DATABASE strapontin OWNER strapontin_owner"])
        self.owner_conninfo = owner + " dbname=strapontin"
        self.runtime_conninfo = runtime + " dbname=strapontin"

    def _certs(self):
        self.certs = os.path.join(self.dir, "certs")
        self._run([os.path.join(SOURCE_DIR, "scripts", "mkcert"), self.certs])
        self.ca = os.path.join(self.certs, "ca.pem")

    def _write_conf(self, path, conninfo):
        with open(path, "w") as f:
            f.write("""# Written by tests/browser/harness.py.
[server]
listen = 127.0.0.1:%(line_port)d

[http]
listen = 127.0.0.1:%(http_port)d
www_dir = %(www)s

[tls]
cert = %(certs)s/server.pem
key = %(certs)s/server.key

[database]
conninfo = %(conninfo)s
migrate_conninfo = %(owner)s
pool_size = 4

[policy]
# Cheap hashes for --add-admin; the demo accounts' own stay as they are.
password_cost = 10

[log]
level = debug
""" % {"line_port": self.line_port, "http_port": self.http_port,
                "www": os.path.join(SOURCE_DIR, "web"), "certs": self.certs,
                "conninfo": conninfo, "owner": self.owner_conninfo})
            extra = getattr(self, "extra_ini", "")
            if extra:
                f.write("\n# extra_ini of the test file\n" + extra + "\n")

    def _cheap_passwords(self):
        """The demo accounts' hashes are scrypt at ln=15 (32 MiB each), a
        second or more per login on a loaded test machine, and the tests
        log in often. Every account gets DEMO_PASSWORD at ln=10 instead,
        the cost the test daemon itself uses (password_cost = 10): the
        daemon checks the same format, only cheaper."""
        salt = os.urandom(16)
        digest = hashlib.scrypt(DEMO_PASSWORD.encode(), salt=salt, n=1 << 10,
                                r=8, p=1, dklen=32)
        b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
        stored = "$scrypt$ln=10,r=8,p=1$%s$%s" % (b64(salt), b64(digest))
        self._run(["psql", self.conninfo, "-Xq", "-v", "ON_ERROR_STOP=1",
                   "-v", "h=" + stored],
                  input="UPDATE users SET password_hash = :'h';\n",
                  what="psql: cheaper password hashes")

    def _start_daemon(self):
        self.conf = os.path.join(self.dir, "strapontind.conf")
        setup = os.path.join(self.dir, "setup.conf")
        self.line_port, self.http_port = free_port(), free_port()
        self._write_conf(setup, self.owner_conninfo)
        self._run([STRAPONTIND, "-c", setup, "--migrate"])
        self._run([STRAPONTIND, "-c", setup, "--add-admin", ADMIN_EMAIL],
                  input=DEMO_PASSWORD + "\n")
        self._run(["psql", self.conninfo, "-Xq", "-v", "ON_ERROR_STOP=1",
                   "-f", os.path.join(SOURCE_DIR, "scripts", "demo-data.sql")],
                  what="psql -f scripts/demo-data.sql")
        self._cheap_passwords()
        for attempt in range(3):
            if attempt:
                self.line_port, self.http_port = free_port(), free_port()
            self._write_conf(self.conf, self.runtime_conninfo)
            if self._launch():
                break
            if "in use" not in self.daemon_log():
                break
        else:
            pass
        if self.daemon is None or self.daemon.poll() is not None:
            raise RuntimeError("strapontind did not start:\n" + self.daemon_log(60))
        self.origin = "https://%s:%d" % (self.host, self.http_port)
        self.base = self.origin
        self._wait_healthz()
        log("desk at %s (pid %d)" % (self.origin, self.daemon.pid))

    def _launch(self):
        self.log_path = os.path.join(self.dir, "strapontind.log")
        logf = open(self.log_path, "w")
        self.daemon = subprocess.Popen(
            [STRAPONTIND, "-c", self.conf], stdin=subprocess.DEVNULL,
            stdout=logf, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        logf.close()
        deadline = time.monotonic() + 10 * SCALE
        while time.monotonic() < deadline:
            if "strapontind: ready" in self.daemon_log():
                return True
            if self.daemon.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def _wait_healthz(self):
        deadline = time.monotonic() + 10 * SCALE
        last = None
        while time.monotonic() < deadline:
            try:
                r = self.client().request("GET", "/healthz")
                if r.status == 200:
                    return
                last = r
            except OSError as e:
                last = e
            if self.daemon.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("GET /healthz never answered 200 (last: %r); daemon log:\n%s"
                           % (last, self.daemon_log(60)))

    def _spki_hash(self):
        """base64 SHA-256 of the server certificate's public key: Chromium
        trusts that key (--ignore-certificate-errors-spki-list) and only
        it, so the page is a secure context as on a real desk."""
        pem = os.path.join(self.certs, "server.pem")
        pub = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-pubkey"],
                             capture_output=True, check=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"],
                             input=pub, capture_output=True, check=True).stdout
        import hashlib
        return base64.b64encode(hashlib.sha256(der).digest()).decode()

    def _start_browser(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        profile = os.path.join(self.dir, "chromium-profile")
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                  "--disable-gpu", "--no-first-run", "--disable-extensions",
                  "--disable-background-networking", "--disable-sync",
                  "--hide-scrollbars", "--font-render-hinting=none",
                  "--user-data-dir=" + profile, "--lang=fr-FR",
                  "--window-size=%d,%d" % DESKTOP,
                  "--ignore-certificate-errors-spki-list=" + self._spki_hash()):
            opts.add_argument(a)
        opts.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        env = dict(os.environ, TZ="Europe/Paris", LANG="fr_FR.UTF-8")
        service = Service(CHROMEDRIVER, env=env,
                          log_path=os.path.join(self.dir, "chromedriver.log"))
        self.driver = webdriver.Chrome(service=service, options=opts)
        self.driver.set_page_load_timeout(30 * SCALE)
        self.driver.set_script_timeout(30 * SCALE)
        self.driver.execute_cdp_cmd("Emulation.setTimezoneOverride",
                                    {"timezoneId": "Europe/Paris"})
        self.desktop()

    # ---- tear-down ------------------------------------------------------

    def stop(self):
        if self.driver is not None:
            try:
                self.driver.quit()
            except Exception as e:  # noqa: BLE001: tear-down goes on
                log("driver.quit: %s" % e)
            self.driver = None
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(30 * SCALE)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        if self.pg_dir is not None:
            subprocess.run([os.path.join(SOURCE_DIR, "scripts", "pg-tmp"),
                            "stop", self.pg_dir], cwd="/")
            self.pg_dir = None

    # ---- helpers for tests ----------------------------------------------

    def daemon_log(self, lines=None):
        try:
            with open(self.log_path, errors="replace") as f:
                text = f.read()
        except (OSError, AttributeError):
            return ""
        if lines:
            text = "\n".join(text.splitlines()[-lines:])
        return text

    def ssl_context(self):
        if self._ctx is None:
            self._ctx = ssl.create_default_context(cafile=self.ca)
        return self._ctx

    def client(self):
        """A new anonymous Client."""
        return Client(self)

    def rpc(self, method, params=None, as_user=None):
        """Calls method over POST /rpc, as as_user (an e-mail: logged in
        once with DEMO_PASSWORD, then its cookie kept) or anonymously;
        the result, or raises RpcError. For setting up data: it does not
        touch the browser's session."""
        c = self._clients.get(as_user)
        if c is None:
            c = self.client()
            if as_user is not None:
                c.login(as_user)
            self._clients[as_user] = c
        return c.call(method, params)

    def url(self, route=""):
        """The desk's URL for route: "#/desk", "/voucher.html#CODE", "/"."""
        if route.startswith("#"):
            return self.base + "/" + route
        if not route.startswith("/"):
            route = "/" + route
        return self.base + route

    def goto(self, route="", wait_for=None, timeout=10):
        """Opens route (see url()) and waits until the document is loaded
        and, if wait_for (a CSS selector) is given, until that element is
        shown. Returns the element or None."""
        self.driver.get(self.url(route))
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete",
                  timeout, "document of %s never complete" % route)
        if wait_for:
            return self.wait_for(wait_for, timeout)
        return None

    def wait_page(self, timeout=10):
        """Waits until the page on screen has its heading (main h1, or
        any h1 on a stand-alone page) and is done loading: no
        [aria-busy=true] element left. Returns the h1."""
        h1 = self.wait_for("main h1, h1", timeout)
        self.wait(lambda d: d.execute_script(
            "return document.querySelector('[aria-busy=true]') === null"),
            timeout, "%s still busy (aria-busy)" % self.driver.current_url)
        return h1

    def wait(self, cond, timeout=10, message="condition never true"):
        """Waits up to timeout seconds (times the scale) until cond(driver)
        is truthy; returns its value or raises AssertionError(message)."""
        deadline = time.monotonic() + timeout * SCALE
        last_exc = None
        while True:
            try:
                v = cond(self.driver)
                if v:
                    return v
            except Exception as e:  # noqa: BLE001: the page is still moving
                last_exc = e
            if time.monotonic() >= deadline:
                raise AssertionError(message + ("" if last_exc is None
                                                else " (last error: %s)" % last_exc))
            time.sleep(0.05)

    def wait_for(self, css, timeout=10):
        """The first element matching css once it is displayed."""
        from selenium.webdriver.common.by import By

        def shown(d):
            for e in d.find_elements(By.CSS_SELECTOR, css):
                if e.is_displayed():
                    return e
            return None
        return self.wait(shown, timeout, "no visible element %r on %s"
                         % (css, self.driver.current_url))

    def wait_text(self, text, timeout=10, css="body"):
        """Waits until text appears in the visible text of css."""
        from selenium.webdriver.common.by import By
        return self.wait(lambda d: text in d.find_element(By.CSS_SELECTOR, css).text,
                         timeout, "text %r never shown in %s on %s"
                         % (text, css, self.driver.current_url))

    def find(self, css):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def page_rpc(self, method, params=None):
        """Calls method from inside the page (fetch POST /rpc, the
        browser's own cookie and Origin): the parsed JSON-RPC answer."""
        return self.driver.execute_async_script("""
            const [method, params, done] = arguments;
            fetch('/rpc', {method: 'POST', credentials: 'same-origin',
                           headers: {'Content-Type': 'application/json'},
                           body: JSON.stringify({jsonrpc: '2.0', id: 1,
                                                 method, params})})
              .then(r => r.status === 204 ? {} : r.json())
              .then(done, e => done({error: {message: String(e)}}));
        """, method, params if params is not None else {})

    def login(self, email, password=DEMO_PASSWORD, route="#/"):
        """Logs the browser in as email (auth.login from the page: the
        cookie is set as for a person), then opens route. Tests of the
        login form itself use login_form()."""
        # From a page of the desk's origin that runs no script of its own.
        self.driver.get(self.url("/healthz"))
        ans = self.page_rpc("auth.login", {"email": email, "password": password})
        assert "result" in ans, "auth.login as %s: %r" % (email, ans)
        # A fresh document: the app asks who is logged in when it starts.
        self.goto(route)
        return ans["result"]

    def login_form(self, email, password=DEMO_PASSWORD):
        """Logs in through the login form at #/login as a person would:
        types into the e-mail and password fields and clicks the submit
        button. Does not wait for what comes next."""
        self.goto("#/login")
        em = self.wait_for("[data-test=login-email], input[type=email]")
        pw = self.find("[data-test=login-password], input[type=password]")
        em.clear()
        em.send_keys(email)
        pw.clear()
        pw.send_keys(password)
        self.find("[data-test=login-submit], form [type=submit]").click()

    def logout(self):
        """Ends the browser's session: auth.logout from the page, then
        forgets every cookie."""
        if self.driver.current_url.startswith(self.base):
            try:
                self.page_rpc("auth.logout", {})
            except Exception as e:  # noqa: BLE001
                log("auth.logout: %s" % e)
        self.clear_cookies()

    def clear_cookies(self):
        """The browser forgets every cookie, of every origin (WebDriver's
        own delete_all_cookies only reaches the current page's)."""
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})

    def desktop(self):
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        self.driver.set_window_size(*DESKTOP)
        self._metrics(DESKTOP, False)

    def phone(self):
        self._metrics(PHONE, True)

    def _metrics(self, size, mobile):
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1,
            "mobile": mobile})

    def shot(self, name, full=False):
        """Screenshots of the current page at desktop (1280x800) and phone
        (390x844, mobile viewport) sizes: $BUILD/browser-shots/NAME-desktop.png
        and NAME-phone.png. Leaves the desktop size on. Returns both paths."""
        os.makedirs(SHOTS_DIR, exist_ok=True)
        paths = []
        for label, fn in (("desktop", self.desktop), ("phone", self.phone)):
            fn()
            time.sleep(0.15)  # let the layout settle after the resize
            p = os.path.join(SHOTS_DIR, "%s-%s.png" % (name, label))
            self.driver.save_screenshot(p)
            paths.append(p)
        self.desktop()
        return paths

    def axe(self, context=None, disable=()):
        """Runs the pinned axe-core on the current page (or the element
        matching the CSS selector context) and raises AssertionError
        listing every serious or critical violation. disable: rule ids not
        to run (say why in the test). Returns axe's violations."""
        return axe(self.driver, context=context, disable=disable,
                   axe_js=self.axe_js)

    def console_errors(self):
        """The browser console's SEVERE entries since the last call."""
        try:
            return [e for e in self.driver.get_log("browser")
                    if e.get("level") == "SEVERE"]
        except Exception:  # noqa: BLE001
            return []

    def cookie(self, name="st_session"):
        """The browser's cookie name as WebDriver sees it (it sees
        HttpOnly ones too), or None."""
        return self.driver.get_cookie(name)


# ---- module-level helpers --------------------------------------------------

def axe_path():
    """axe.min.js at the version pinned in scripts/deps."""
    env = _env("ST_AXE_JS")
    if env:
        return env
    deps = open(os.path.join(SOURCE_DIR, "scripts", "deps")).read()
    m = re.search(r"^axe_version=(\S+)", deps, re.M)
    if not m:
        raise RuntimeError("no axe_version= in scripts/deps")
    p = os.path.join(SOURCE_DIR, ".cache", "axe-core-" + m.group(1),
                     "node_modules", "axe-core", "axe.min.js")
    if not os.path.isfile(p):
        raise RuntimeError("%s missing: run scripts/deps" % p)
    return p


_axe_source = {}


def axe(driver, context=None, disable=(), axe_js=None):
    """See Desk.axe()."""
    path = axe_js or axe_path()
    if path not in _axe_source:
        with open(path) as f:
            _axe_source[path] = f.read()
    # WebDriver's scripts are not subject to the page's CSP. Once per
    # document: it is half a megabyte to parse.
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(_axe_source[path])
    options = {"resultTypes": ["violations"]}
    if disable:
        options["rules"] = {r: {"enabled": False} for r in disable}
    res = driver.execute_async_script("""
        const [ctx, opts, done] = arguments;
        axe.run(ctx ? document.querySelector(ctx) : document, opts)
           .then(r => done({violations: r.violations}),
                 e => done({error: String(e)}));
    """, context, options)
    if "error" in res:
        raise AssertionError("axe failed to run: " + res["error"])
    violations = res["violations"]
    bad = [v for v in violations if v.get("impact") in AXE_FAILING]
    for v in violations:
        if v not in bad:
            log("axe (%s, not failing) %s: %s" % (v.get("impact"), v["id"], v["help"]))
    if bad:
        lines = ["axe: %d serious or critical violation(s) on %s:"
                 % (len(bad), driver.current_url)]
        for v in bad:
            lines.append("  [%s] %s: %s (%s)" % (v["impact"], v["id"], v["help"],
                                                v.get("helpUrl", "")))
            for n in v["nodes"][:8]:
                lines.append("      %s  %s" % (" ".join(map(str, n.get("target", []))),
                                                (n.get("failureSummary") or "")
                                                .replace("\n", " ")[:300]))
        raise AssertionError("\n".join(lines))
    return violations


def free_port():
    """A TCP port free on 127.0.0.1 right now (another process may take
    it before the daemon binds it: _start_daemon retries)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The reaper (Desk._start_reaper): argv = our pid, the work directory,
# scripts/pg-tmp. Once that pid is gone: the cluster is stopped cleanly,
# then every process that names the work directory on its command line
# (chromedriver's log, Chromium's profile, the daemon's configuration),
# with its descendants, is killed: only what this run started.
_REAPER = r"""
import os, signal, subprocess, sys, time
parent, work, pgtmp = int(sys.argv[1]), sys.argv[2], sys.argv[3]
while os.path.exists("/proc/%d" % parent):
    time.sleep(0.5)
subprocess.run([pgtmp, "stop", os.path.join(work, "pg")],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
mark = (work.rstrip("/") + "/").encode()
parents, roots = {}, []
for p in os.listdir("/proc"):
    if not p.isdigit() or int(p) == os.getpid():
        continue
    try:
        with open("/proc/%s/stat" % p) as f:
            st = f.read()
        with open("/proc/%s/cmdline" % p, "rb") as f:
            cmd = f.read()
    except OSError:
        continue
    parents.setdefault(int(st[st.rindex(")") + 2:].split()[1]), []).append(int(p))
    if mark in cmd:
        roots.append(int(p))
todo = list(roots)
while todo:
    pid = todo.pop()
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    todo.extend(parents.get(pid, []))
"""

_libc = None


def _die_with_parent():
    """In the daemon's child process: SIGTERM when this Python dies, so no
    daemon outlives a killed test (PR_SET_PDEATHSIG)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    _libc.prctl(1, signal.SIGTERM, 0, 0, 0)


def main(namespace):
    """Runs the test_* functions of namespace (a test file's globals()) in
    file order against one Desk; exits 0 only if there was at least one
    test and none failed. ST_BROWSER_ONLY=name,name runs only those."""
    tests = [(n, f) for n, f in namespace.items()
             if n.startswith("test_") and callable(f)]
    only = _env("ST_BROWSER_ONLY")
    if only:
        keep = set(only.split(","))
        tests = [(n, f) for n, f in tests if n in keep]
    name = os.path.splitext(os.path.basename(namespace.get("__file__", "browser")))[0]
    # Failure screenshots of an earlier run of this file would mislead.
    for old in glob.glob(os.path.join(SHOTS_DIR, "FAILED-%s-*.png" % name)):
        os.unlink(old)
    desk = Desk(name)
    desk.extra_ini = namespace.get("EXTRA_INI", "")

    def on_term(signum, frame):
        raise SystemExit("harness: signal %d" % signum)
    signal.signal(signal.SIGTERM, on_term)
    atexit.register(desk.stop)

    passed = failed = 0
    try:
        desk.start()
    except BaseException:
        traceback.print_exc()
        print("harness: set-up failed", flush=True)
        desk.stop()
        print("0 passed, %d failed" % max(1, len(tests)), flush=True)
        sys.exit(1)
    try:
        for n, f in tests:
            t0 = time.monotonic()
            print("---- %s" % n, flush=True)
            try:
                f(desk)
            except Exception:  # noqa: BLE001: report and go on
                failed += 1
                traceback.print_exc()
                _on_failure(desk, n)
                print("FAIL %s (%.1f s)" % (n, time.monotonic() - t0), flush=True)
            else:
                passed += 1
                print("ok   %s (%.1f s)" % (n, time.monotonic() - t0), flush=True)
            finally:
                _reset(desk)
    finally:
        desk.stop()
    if not tests:
        print("harness: no test_* function to run", flush=True)
        failed += 1
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)


def _on_failure(desk, name):
    try:
        url = desk.driver.current_url
        os.makedirs(SHOTS_DIR, exist_ok=True)
        p = os.path.join(SHOTS_DIR, "FAILED-%s-%s.png" % (desk.name, name))
        desk.driver.save_screenshot(p)
        print("harness: page %s, screenshot %s" % (url, p))
        for e in desk.console_errors():
            print("harness: console: %s" % e.get("message"))
    except Exception as e:  # noqa: BLE001
        print("harness: no screenshot: %s" % e)
    print("----- last 30 lines of %s -----\n%s\n-----"
          % (getattr(desk, "log_path", "?"), desk.daemon_log(30)), flush=True)


def _reset(desk):
    """Between tests: the browser forgets its session and size."""
    try:
        desk.clear_cookies()
        desk.desktop()
        desk.driver.get("about:blank")
        desk.console_errors()
    except Exception as e:  # noqa: BLE001
        log("reset: %s" % e)
