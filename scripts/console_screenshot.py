"""Screenshots of the console for the README: ``ivr demo --console`` in headless chromium.

    .venv/bin/python scripts/console_screenshot.py          # writes docs/console*.png

Runs the demo (its campaign, its calls through the simulator), signs in with the token it
prints, and saves the campaigns page and Ann's transcript. Needs Debian's chromium and
chromium-driver, like the console tests.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
CONSOLE_LINE = re.compile(r"Console: (http://\S+)/console/\s+— sign in with the API token (\S+)")


def start_demo() -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr", "demo", "--console"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()
    seen = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            seen += lines.get(timeout=1)
        except queue.Empty:
            continue
        if found := CONSOLE_LINE.search(" ".join(seen.split())):
            return process, found.group(1), found.group(2)
    process.kill()
    raise SystemExit(f"the demo did not print its console line:\n{seen}")


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,760", "--hide-scrollbars", "--lang=en-US"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main() -> None:
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    process, base, token = start_demo()
    driver = browser()
    wait = WebDriverWait(driver, 30)
    try:
        driver.get(base + "/console/sign-in?next=/console/campaigns")
        driver.find_element(By.NAME, "password").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "#sign-in-form [type=submit]").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#campaigns .finished"))
        wait.until(lambda d: "on" in d.find_element(By.ID, "live-status").get_attribute("class"))
        driver.save_screenshot(str(docs / "console.png"))
        driver.find_element(By.CSS_SELECTOR, "#campaigns .campaign-name").click()
        wait.until(lambda d: d.find_elements(By.ID, "campaign"))
        driver.find_element(By.PARTIAL_LINK_TEXT, "This campaign's notifications").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#notifications tbody tr"))
        row = driver.find_element(By.XPATH, "//tr[.//span[@class='who-name' and text()='Ann']]")
        row.find_element(By.TAG_NAME, "a").click()
        attempt = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".attempt"))[0]
        driver.execute_script("arguments[0].scrollIntoView();", attempt)
        driver.save_screenshot(str(docs / "console-transcript.png"))
        print(f"wrote {docs / 'console.png'} and {docs / 'console-transcript.png'}")
    finally:
        driver.quit()
        os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
