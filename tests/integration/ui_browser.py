"""Drives the `vnet ui` page in headless Chromium (Debian's chromium and
chromium-driver through python3-selenium; run with the system python3).

  ui_browser.py URL NET PORT_ID RULE SCREENSHOT  -> JSON on stdout

Opens the page, waits until it draws port PORT_ID of NET, samples the
port's receive counter twice, 3 s apart, adds RULE through the page's form,
waits until the forward is listed, saves a screenshot, and prints what it
saw. A wrong-token URL (URL with the token replaced) is opened last."""

import json
import re
import sys
import time

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

url, net, port_id, rule, screenshot = sys.argv[1:6]
options = webdriver.ChromeOptions()
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"):
    options.add_argument(arg)
driver = webdriver.Chrome(options=options)
result = {}
try:
    driver.get(url)
    card = f'[data-net="{net}"]'
    wait = WebDriverWait(driver, 20)

    def card_text():
        return driver.execute_script(f"const c = document.querySelector('{card}'); return c ? c.textContent : '';")

    wait.until(lambda d: f"port {port_id}: tap" in card_text())

    def rx_frames():
        m = re.search(rf"port {port_id}: tap.*?rx (\S+)\s+fr", card_text())
        return m.group(1) if m else None

    result["rx_before"] = rx_frames()
    time.sleep(3)
    result["rx_after"] = rx_frames()
    field = driver.find_element(By.CSS_SELECTOR, f"{card} input.rule")
    field.send_keys(rule)
    button = [b for b in driver.find_elements(By.CSS_SELECTOR, f"{card} button") if b.text == "add forward"][0]
    button.click()
    name = rule.split(":")[0] + "-" + rule.split(":")[2].split("-")[0]
    wait.until(lambda d: name in card_text())
    result["forward_listed"] = name
    result["error_line"] = driver.find_element(By.ID, "err").text
    driver.save_screenshot(screenshot)
    driver.get(re.sub(r"token=[0-9a-f]+", "token=" + "0" * 32, url))
    result["wrong_token_page"] = driver.find_element(By.TAG_NAME, "body").text
finally:
    driver.quit()
print(json.dumps(result))
