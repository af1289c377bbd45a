"""The advisor console in a real browser (docs/console.md).

Headless Chromium (Debian `chromium` and `chromium-driver`, driven by
Debian's python3-selenium) uses the console a running `vitrine serve`
serves: it loads a client and sees cards with images, rejects one item and
pins another, and then `/recommend` for that client, asked outside the
browser, honours both. The browser's console log must hold no error.
With VITRINE_CONSOLE_SCREENSHOT=path the page is saved there (the README's
docs/console.png).
"""

import json
import os
import re
import subprocess
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

TOKEN = "console-test-token-0123456789"


def cli():
    path = os.environ.get("VITRINE_CLI", "build/cli/vitrine")
    if not os.path.exists(path):
        pytest.fail(f"the vitrine CLI is not at {path} (set VITRINE_CLI)")
    return path


def run(*args):
    r = subprocess.run([cli(), *args], capture_output=True, text=True)
    assert r.returncode == 0, f"vitrine {' '.join(args)}: {r.stderr}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("console")
    run("generate", "--items", "600", "--users", "400", "--seed", "5", "--out", str(d / "data"))
    run("build", "--items", str(d / "data/items.csv"), "--interactions",
        str(d / "data/interactions.csv"), "--images", str(d / "data/images.idx.gz"), "--factors",
        "16", "--iterations", "4", "--ranker", "off", "--quiet", "--out", str(d / "bundle"))
    (d / "token").write_text(TOKEN + "\n")
    proc = subprocess.Popen(
        [cli(), "serve", "--bundle", str(d / "bundle"), "--port", "0", "--event-log", "none",
         "--curation-log", str(d / "curation.csv"), "--admin-token-file", str(d / "token"),
         "--drain-seconds", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
    assert m, f"vitrine serve did not start: {line} {proc.stderr.read() if proc.poll() else ''}"
    user = (d / "data/interactions.csv").read_text().splitlines()[1].split(",")[0]
    yield m.group(1), user, d
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists("/usr/bin/chromium") or not os.path.exists("/usr/bin/chromedriver"):
        pytest.fail("chromium and chromium-driver are not installed: scripts/install-deps.sh installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


def recommend(base, user, k):
    req = urllib.request.Request(base + "/recommend", data=json.dumps({"user": user, "k": k}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return [h["item"] for h in json.loads(r.read())["results"]]


def cards(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#cards .card")


def wait_status(driver, text):
    WebDriverWait(driver, 30).until(EC.text_to_be_present_in_element((By.ID, "status"), text))


def test_an_advisor_rejects_and_pins_and_recommend_honours_both(server, browser):
    base, user, workdir = server
    browser.get(base + "/console")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "client").send_keys(user)
    browser.find_element(By.ID, "show").click()
    wait_status(browser, "items (request")
    shown = cards(browser)
    assert len(shown) == 12
    # Every card's image loaded: a decoded PNG, not a broken link.
    widths = browser.execute_script(
        "return [...document.querySelectorAll('#cards .card img')]"
        ".map(i => i.complete ? i.naturalWidth : -1)")
    WebDriverWait(browser, 30).until(lambda d: all(w > 0 for w in d.execute_script(
        "return [...document.querySelectorAll('#cards .card img')].map(i => i.complete ? i.naturalWidth : -1)")))
    assert len(widths) == 12
    # The history strip shows the client's items.
    assert browser.find_elements(By.CSS_SELECTOR, "#history .card")

    rejected = shown[0].get_attribute("data-item")
    shown[0].find_element(By.CSS_SELECTOR, "button.reject").click()
    wait_status(browser, "reject " + rejected + ": recorded")
    shown = cards(browser)
    assert rejected not in [c.get_attribute("data-item") for c in shown]
    pinned_card = shown[5]
    pinned = pinned_card.get_attribute("data-item")
    position = pinned_card.find_element(By.CSS_SELECTOR, "input[aria-label='pin position']")
    position.clear()
    position.send_keys("1")
    pinned_card.find_element(By.CSS_SELECTOR, "button.pin").click()
    wait_status(browser, "pin " + pinned + ": recorded")
    first = cards(browser)[0]
    assert first.get_attribute("data-item") == pinned
    assert "pinned" in first.get_attribute("class")
    decisions = browser.find_element(By.ID, "decisions").text
    assert rejected + ": rejected" in decisions
    assert pinned + ": pinned at 1" in decisions

    # Outside the browser, with no token: the client's answers honour both.
    for k in (5, 12, 40):
        items = recommend(base, user, k)
        assert items[0] == pinned, items
        assert rejected not in items
    # The decisions are in the durable log.
    log = (workdir / "curation.csv").read_text()
    assert f",{user},{rejected},reject,," in log
    assert f",{user},{pinned},pin,1," in log

    if os.environ.get("VITRINE_CONSOLE_SCREENSHOT"):
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(os.environ["VITRINE_CONSOLE_SCREENSHOT"])
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def test_without_the_token_a_decision_is_refused_and_shown(server, browser):
    base, user, _ = server
    browser.get(base + "/console")
    browser.execute_script("sessionStorage.clear()")
    browser.get(base + "/console")
    browser.find_element(By.ID, "client").send_keys(user)
    browser.find_element(By.ID, "show").click()
    wait_status(browser, "401")
    assert "error" in browser.find_element(By.ID, "status").get_attribute("class")
    # The page itself logged nothing but the refused request.
    logs = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert all("401" in e["message"] for e in logs), logs
