"""Drives chestnode's browser annotator in headless Chromium (selenium).

Usage: annotator_browser.py BASE_URL USER PASSWORD OTHER_USER OTHER_PASSWORD COHORT SOP

USER is an annotator assigned to COHORT, OTHER_USER one who is not. The
script logs in with a wrong password (refused), then properly; opens the
cohort and the image; draws a box and a polygon with the mouse; picks
finding, certainty and confirmation; saves; reloads and checks the stored
annotations are listed and drawn; checks that a POST without the CSRF
token gets 403; and, over plain HTTP with its own cookie jar, that
OTHER_USER gets 404 for the cohort and the image, that five wrong
passwords lock OTHER_USER out, and that a login without the form's token
is refused. Screenshots go to $CHESTNODE_SCREENSHOTS when that is set.
Prints one JSON object with what it saw; exits non-zero on a failed check.
"""

import http.cookiejar
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

base, user, password, other, other_password, cohort, sop = sys.argv[1:8]
shots = os.environ.get("CHESTNODE_SCREENSHOTS")
seen = {}


def check(condition, what):
    if not condition:
        print(json.dumps(seen, indent=2))
        raise SystemExit(f"check failed: {what}")


def screenshot(driver, name):
    if shots:
        os.makedirs(shots, exist_ok=True)
        driver.save_screenshot(os.path.join(shots, name))


def browser(profile):
    options = webdriver.ChromeOptions()
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1100",
        "--ignore-certificate-errors",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def log_in(driver, name, secret):
    driver.get(base + "/annotate/")
    WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "username")))
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(secret)
    driver.find_element(By.ID, "login").click()


def viewer_ready(driver):
    WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.ID, "viewer").get_attribute("data-ready") == "1"
    )


with tempfile.TemporaryDirectory() as profile:
    driver = browser(profile)
    try:
        # Not logged in: the login page.
        driver.get(base + "/annotate/")
        check("/annotate/login" in driver.current_url, "redirected to the login page")
        screenshot(driver, "login.png")

        # A wrong password is refused, with the generic message.
        log_in(driver, user, password + "x")
        error = WebDriverWait(driver, 20).until(
            ec.presence_of_element_located((By.ID, "login-error"))
        )
        seen["wrong_password_message"] = error.text
        check(error.text == "wrong user name or password", "generic refusal")
        check(driver.get_cookie("chestnode_session") is None, "no session after refusal")

        # The right one: the cohort list.
        log_in(driver, user, password)
        WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, "a.cohort")))
        cohorts = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "a.cohort")]
        seen["cohorts"] = cohorts
        check(cohorts == [cohort], "only the assigned cohort is listed")
        session = driver.get_cookie("chestnode_session")
        seen["cookie"] = {k: session.get(k) for k in ("httpOnly", "sameSite", "path", "secure")}
        check(session["httpOnly"] and session["sameSite"] == "Strict", "cookie flags")
        screenshot(driver, "cohorts.png")

        driver.find_element(By.CSS_SELECTOR, "a.cohort").click()
        WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, "a.image")))
        images = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "a.image")]
        seen["images"] = images
        check(sop in images, "the image is listed")
        driver.find_element(By.LINK_TEXT, sop).click()
        viewer_ready(driver)
        viewer = driver.find_element(By.ID, "viewer")
        seen["image_size"] = [viewer.get_attribute("data-columns"), viewer.get_attribute("data-rows")]

        # The node's findings as an overlay.
        driver.find_element(By.ID, "show-findings").click()
        WebDriverWait(driver, 20).until(lambda d: viewer.get_attribute("data-findings") is not None)
        seen["node_findings"] = viewer.get_attribute("data-findings")

        # Draw a box with the mouse, pick the finding and certainty, save.
        driver.find_element(By.ID, "tool-box").click()
        canvas = driver.find_element(By.ID, "canvas")
        actions = ActionChains(driver)
        actions.move_to_element_with_offset(canvas, -120, -100).click_and_hold()
        actions.move_by_offset(80, 60).move_by_offset(80, 60).release().perform()
        Select(driver.find_element(By.ID, "finding")).select_by_value("nodule-mass")
        Select(driver.find_element(By.ID, "certainty")).select_by_value("probable")
        screenshot(driver, "viewer-box.png")
        driver.find_element(By.ID, "save").click()
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.ID, "message").text == "Saved."
        )

        # A polygon: three clicks, and a double-click for the last point.
        driver.find_element(By.ID, "tool-polygon").click()
        actions = ActionChains(driver)
        actions.move_to_element_with_offset(canvas, 60, -60).click()
        actions.move_to_element_with_offset(canvas, 140, -40).click()
        actions.move_to_element_with_offset(canvas, 150, 40).click()
        actions.move_to_element_with_offset(canvas, 70, 50).double_click().perform()
        Select(driver.find_element(By.ID, "finding")).select_by_value("other")
        driver.find_element(By.ID, "finding-text").send_keys("pleural plaque")
        Select(driver.find_element(By.ID, "certainty")).select_by_value("possible")
        Select(driver.find_element(By.ID, "confirmed")).select_by_value("pathology")
        driver.find_element(By.ID, "save").click()
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.ID, "viewer").get_attribute("data-annotations") == "2"
        )

        # Reload: the annotations come back from the server.
        driver.refresh()
        viewer_ready(driver)
        viewer = driver.find_element(By.ID, "viewer")
        check(viewer.get_attribute("data-annotations") == "2", "two stored annotations")
        rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "tr.annotation")]
        seen["annotations_after_reload"] = rows
        check(len(rows) == 2 and "nodule-mass" in rows[0] and "probable" in rows[0], "listed")
        check(user in rows[0] and "box" in rows[0], "reader and box")
        check("pleural plaque" in rows[1] and "polygon of 4 points" in rows[1], "the polygon")
        screenshot(driver, "viewer-saved.png")

        # The API's view of it, and a POST without the CSRF token.
        api = f"/annotate/api/images/{sop}/annotations"
        stored = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => r.json()).then(done);",
            api,
        )
        seen["stored"] = stored
        check(stored[0]["location"]["box"]["width"] > 0, "a box with a width")
        check(len(stored[1]["location"]["polygon"]) == 4, "a polygon of four points")
        check(stored[1]["confirmed"] == "pathology", "confirmed by pathology")
        status = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {method: 'POST', headers: {'Content-Type': 'application/json'},"
            " body: JSON.stringify({finding: 'normal', certainty: 'definite'})})"
            ".then(r => done(r.status));",
            api,
        )
        seen["post_without_csrf"] = status
        check(status == 403, "a POST without the CSRF token is refused")

        # Log out: the session is gone.
        driver.find_element(By.ID, "logout").click()
        WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "username")))
        status = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => done(r.status));",
            api,
        )
        seen["after_logout"] = status
        check(status == 401, "logged out")
    finally:
        driver.quit()

# The other annotator, over plain HTTP: logs in, but the cohort and the
# image are not there for them.
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def fetch(path, data=None):
    try:
        with opener.open(base + path, data=data, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


status, page = fetch("/annotate/login")
token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
form = urllib.parse.urlencode({"username": other, "password": other_password, "csrf": token})
status, page = fetch("/annotate/login", form.encode())
check(status == 200 and "No cohort is assigned to you yet" in page, "other user logged in")
seen["other_cohort"], _ = fetch(f"/annotate/cohorts/{cohort}")
seen["other_image"], _ = fetch(f"/annotate/images/{sop}")
seen["other_png"], _ = fetch(f"/annotate/api/images/{sop}/png")
check(seen["other_cohort"] == 404, "unassigned cohort hidden")
check(seen["other_image"] == 404 and seen["other_png"] == 404, "unassigned image hidden")
seen["bad_uid"], _ = fetch("/annotate/api/images/1.2.x..3/png")
check(seen["bad_uid"] == 400, "malformed UID refused")

# Five wrong passwords lock the name: then even the right one is refused.
for attempt in range(6):
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    status, page = fetch("/annotate/login")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    secret = other_password if attempt == 5 else "not the password at all"
    form = urllib.parse.urlencode({"username": other, "password": secret, "csrf": token})
    status, page = fetch("/annotate/login", form.encode())
    check(status == 401 and "wrong user name or password" in page, f"attempt {attempt} refused")
seen["locked_out"] = True
# A login form posted without its token is refused.
status, _ = fetch("/annotate/login", urllib.parse.urlencode({"username": user, "password": password}).encode())
seen["login_without_token"] = status
check(status == 403, "login without its form token")
print(json.dumps(seen, indent=2))
