import pytest
from playwright.sync_api import expect
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = [pytest.mark.flask_app("notes"),
              pytest.mark.flask_options(config={"DATABASE": "{session_dir}/browser.db"})]


def test_playwright_form_posts_with_fetch(page, flask_url):
    page.goto("/")  # the context's base_url is this test's server
    assert page.url == flask_url + "/"
    page.fill("#text", "typed in Chromium")
    page.click("button[type=submit]")
    expect(page.locator("#status")).to_have_text("saved")
    expect(page.locator("#notes li")).to_have_text(["typed in Chromium"])


def test_selenium_form_posts_with_fetch(driver, flask_url):
    driver.get(flask_url + "/")
    driver.find_element(By.ID, "text").send_keys("typed through WebDriver")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait = WebDriverWait(driver, 10)
    wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "status"), "saved"))
    wait.until(expected_conditions.text_to_be_present_in_element(
        (By.CSS_SELECTOR, "#notes li"), "typed through WebDriver"))
