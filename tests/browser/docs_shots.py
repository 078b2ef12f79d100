#!/usr/bin/env python3
"""Retakes the screenshots of README.md (docs/img/) on the demo data:

    /usr/bin/python3 tests/browser/docs_shots.py      (after a build)

Not a test (ctest runs only test_*.py). Each image is squeezed with
pngquant when it is installed, to stay small in the repository."""
import os
import shutil
import subprocess
import sys

import harness
from harness import REFERENT

IMG = os.path.join(harness.SOURCE_DIR, "docs", "img")


def save(desk, name):
    path = os.path.join(IMG, name)
    desk.driver.save_screenshot(path)
    if shutil.which("pngquant"):
        subprocess.run(["pngquant", "--force", "--skip-if-larger", "--quality=60-85",
                        "--output", path, path], check=False)
    print("%s: %d bytes" % (path, os.path.getsize(path)))


def main():
    os.makedirs(IMG, exist_ok=True)
    desk = harness.Desk("docs_shots")
    try:
        desk.start()
        # The referent's desk, as on a laptop.
        desk.login(REFERENT, route="#/desk")
        desk.wait_page()
        save(desk, "desk-referent.png")
        # A voucher, as the person opens it on a phone.
        code = desk.rpc("booking.list", {"status": "confirmed"}, as_user=REFERENT)["items"][0]["code"]
        desk.clear_cookies()
        desk.phone()
        desk.goto("/voucher.html#" + code)
        desk.wait_page()
        # The code, however the page groups it.
        desk.wait(lambda d: code.replace("-", "") in
                  "".join(d.find_element("css selector", "body").text.split()).replace("-", ""),
                  30, "the voucher never shows its code %s" % code)
        save(desk, "voucher-phone.png")
    except AssertionError:
        print(desk.find("body").text)
        raise
    finally:
        desk.stop()


if __name__ == "__main__":
    sys.exit(main())
