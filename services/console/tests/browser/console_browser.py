"""The console in a real browser: headless Chromium (Debian's chromium and
chromium-driver) driven by Selenium against a running `popbase demo`, as an
operator and as a resident would use it. Department calls are made beside it
with grpcio stubs generated from proto/ alone. Screenshots of every page go
to --shots. Run by scripts/browser-test.sh.
"""

import argparse
import datetime
import os
import subprocess
import sys
import tempfile

import grpc
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from selenium.common.exceptions import TimeoutException

from popbase.gateway.v1 import (audit_pb2, audit_pb2_grpc, consents_pb2, consents_pb2_grpc, enrollment_pb2,
                                enrollment_pb2_grpc, persons_pb2, persons_pb2_grpc)
from popbase.common.v1 import common_pb2

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"


def id_number(county, birth, sequence):
    """An ID number with its GB 11643 check character."""
    first17 = f"{county}{birth:%Y%m%d}{sequence:03d}"
    return first17 + CHECK[sum(int(c) * w for c, w in zip(first17, WEIGHTS)) % 11]


def fail(what):
    print(f"browser test: {what}", file=sys.stderr)
    sys.exit(1)


class Platform:
    """The demo under test: its popbase binary, data directory and gateway."""

    def __init__(self, args):
        self.popbase, self.data = args.popbase, args.data
        self.channel = grpc.insecure_channel(args.gateway)

    def token(self, *flags):
        out = subprocess.run([self.popbase, "token", "--data", self.data, *flags], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def metadata(self, department):
        return [("authorization", f"Bearer {self.token('--department', department)}")]

    def grant(self, subject, department, interface, purpose):
        today = datetime.date.today()
        until = today + datetime.timedelta(days=30)
        request = consents_pb2.GrantConsentRequest(
            purpose="CITIZEN_CONSENT", subject_id_number=subject, department=department, interface=interface,
            grant_purpose=purpose,
            valid_from=common_pb2.Date(year=today.year, month=today.month, day=today.day),
            valid_until=common_pb2.Date(year=until.year, month=until.month, day=until.day))
        consents_pb2_grpc.ConsentsStub(self.channel).Grant(request, metadata=self.metadata("service_platform"))

    def education_usage(self):
        """The education bureau asks for its usage statistics (SERVICE_REVIEW); the status code."""
        today = datetime.date.today()
        day = common_pb2.Date(year=today.year, month=today.month, day=today.day)
        request = audit_pb2.UsageStatisticsRequest(purpose="SERVICE_REVIEW", department="education")
        getattr(request, "from").CopyFrom(day)
        request.to.CopyFrom(day)
        try:
            audit_pb2_grpc.AuditStub(self.channel).UsageStatistics(request, metadata=self.metadata("education"))
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()

    def pick_family(self, gateway):
        """A school-age child (6-15) whose registry record names a father: the
        registry as the public-security bureau exports it (demo only)."""
        import json
        import pyarrow.flight as flight
        client = flight.FlightClient(f"grpc+tcp://{gateway}")
        token = self.token("--department", "public_security")
        options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])
        ticket = {"dataset": "persons", "purpose": "REGISTRY_RECONCILIATION",
                  "columns": ["id_number", "father_id_number", "birth_date", "committee_code", "status"]}
        persons = client.do_get(flight.Ticket(json.dumps(ticket).encode()), options).read_all().to_pylist()
        today = datetime.date.today()
        for person in persons:
            age = today.year - person["birth_date"].year
            if person["status"] == "active" and 7 <= age <= 14 and person["father_id_number"]:
                return person["id_number"], person["father_id_number"], person["committee_code"]
        fail("no school-age child with a recorded father in the demo city")

    def enrollment_check(self, child, father, committee):
        request = enrollment_pb2.EnrollmentCheckRequest(
            purpose="COMPULSORY_EDUCATION_ENROLLMENT", request_id="browser-1",
            child_id_number=child, guardian_id_numbers=[father], district_codes=[committee])
        enrollment_pb2_grpc.EnrollmentStub(self.channel).Check(request, metadata=self.metadata("education"))

    def person_summary(self, subject):
        """hrss asks for the subject's summary; the status code of the answer."""
        request = persons_pb2.PersonSummaryRequest(purpose="EMPLOYMENT_SERVICE", id_number=subject)
        try:
            persons_pb2_grpc.PersonsStub(self.channel).PersonSummary(request, metadata=self.metadata("hrss"))
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()


def browser(width=1280, height=900):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--window-size={width},{height}",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='popbase-chromium-')}",
                 # The demo console's certificate is from the demo's own CA.
                 "--ignore-certificate-errors"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)


def wait_for(driver, selector):
    """The elements matching a CSS selector once the page (after a click's
    navigation) has any; none after 10 s."""
    try:
        return WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, selector))
    except TimeoutException:
        return []


def shot(driver, shots, name):
    driver.save_screenshot(os.path.join(shots, f"{name}.png"))


def sign_in(driver, console, path, field, secret):
    driver.get(f"{console}{path}")
    driver.find_element(By.ID, field).send_keys(secret)
    driver.find_element(By.ID, "sign-in").click()


def operator_flow(platform, console, shots, subject):
    driver = browser()
    try:
        driver.get(f"{console}/ops")
        if "请先登录" not in driver.page_source or "chain-head" in driver.page_source:
            fail("an operator page answered someone who had not signed in")
        shot(driver, shots, "unauthenticated")
        sign_in(driver, console, "/login", "token", "not-a-token")
        if not wait_for(driver, "#login-error"):
            fail(f"a bad token was not refused: {driver.page_source[:2000]}")
        shot(driver, shots, "operator-login-refused")
        sign_in(driver, console, "/login", "token", platform.token("--department", "audit"))
        head_before = int(wait_for(driver, "#head-seq")[0].text)
        shot(driver, shots, "operator-overview")

        # A department's call, just made: hrss asks about the subject under a consent.
        platform.grant(subject, "hrss", "PersonSummary", "EMPLOYMENT_SERVICE")
        if platform.person_summary(subject) != grpc.StatusCode.OK:
            fail("the consented PersonSummary was refused")

        driver.get(f"{console}/ops/audit")
        driver.find_element(By.ID, "subject_id_number").send_keys(subject)
        driver.find_element(By.ID, "search").click()
        wait_for(driver, "#audit-results")
        rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                for tr in driver.find_elements(By.CSS_SELECTOR, "#audit-results tbody tr")]
        if not any(r[2:4] == ["hrss", "PersonSummary"] and r[5] == "允许" for r in rows):
            fail(f"the audit search by ID number did not find the call just made: {rows}")
        if subject in driver.page_source:
            fail("the audit page shows the ID number in clear")
        shot(driver, shots, "operator-audit-search")

        driver.get(f"{console}/ops/usage")
        if not driver.find_elements(By.ID, "usage-chart"):
            fail("the usage page has no chart")
        shot(driver, shots, "operator-usage")

        driver.get(f"{console}/ops/health")
        if len(driver.find_elements(By.CSS_SELECTOR, "#stores tbody tr")) < 4:
            fail(f"the health page does not list the four stores: {driver.page_source[:1500]}")
        shot(driver, shots, "operator-health")

        driver.get(f"{console}/ops/chain")
        head_after = int(driver.find_element(By.ID, "head-seq").text)
        if head_after <= head_before:
            fail(f"the chain head did not advance ({head_before} -> {head_after}) though the search was audited")
        driver.find_element(By.ID, "verify-now").click()
        if not wait_for(driver, "#chain-ok"):
            fail(f"verify now did not find the chain whole: {driver.page_source[:1500]}")
        verified_to = int(driver.find_element(By.ID, "verified-to").text)
        if verified_to < head_after:
            fail(f"the check stopped at {verified_to}, before the head {head_after}")
        shot(driver, shots, "operator-chain")
        driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
        wait_for(driver, "a[href='/login']")
        driver.get(f"{console}/ops")
        if "请先登录" not in driver.page_source:
            fail("signing out did not end the session")
        print(f"operator: found the call by ID number; chain head {head_before} -> {head_after}, verified to {verified_to}")
    finally:
        driver.quit()


NEW_APPROVAL = """
[[approval]]
department = "education"
interface = "UsageStatistics"
purposes = ["SERVICE_REVIEW"]
fields = ["usage"]
"""


def catalogue_flow(platform, console, shots):
    """The big-data bureau approves a purpose for a department in the
    catalogue editor; the gateway honours it on the next call."""
    if platform.education_usage() != grpc.StatusCode.PERMISSION_DENIED:
        fail("education's usage statistics were answered before any approval")
    driver = browser()
    try:
        sign_in(driver, console, "/login", "token", platform.token("--department", "big_data"))
        wait_for(driver, "#head-seq")
        driver.get(f"{console}/ops/catalogue")
        editor = wait_for(driver, "#catalogue-toml")[0]
        shot(driver, shots, "operator-catalogue")
        editor.send_keys(Keys.CONTROL, Keys.END)
        editor.send_keys(NEW_APPROVAL)
        driver.find_element(By.ID, "validate").click()
        checked = wait_for(driver, "#validation")
        if not checked or "校验通过" not in checked[0].text:
            fail(f"the edited catalogue did not validate: {checked[0].text if checked else driver.page_source[:1500]}")
        shot(driver, shots, "operator-catalogue-validated")
        driver.find_element(By.ID, "apply").click()
        if not wait_for(driver, "#applied"):
            fail(f"the catalogue was not applied: {driver.page_source[:1500]}")
        if platform.education_usage() != grpc.StatusCode.OK:
            fail("the gateway did not honour the approval just applied")
        print("catalogue: approved SERVICE_REVIEW for education on UsageStatistics; the gateway answered it")
    finally:
        driver.quit()


def resident_flow(platform, console, shots, subject):
    driver = browser(390, 844)  # a phone
    try:
        sign_in(driver, console, "/resident/login", "assertion", platform.token("--resident", subject))
        wait_for(driver, "#accesses")
        rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                for tr in driver.find_elements(By.CSS_SELECTOR, "#accesses tbody tr")]
        if not any(r[1:3] == ["hrss", "PersonSummary"] for r in rows):
            fail(f"the resident does not see hrss's access: {rows}")
        if subject in driver.page_source:
            fail("the resident page shows the ID number in clear")
        shot(driver, shots, "resident-page")
        buttons = driver.find_elements(By.CSS_SELECTOR, "#consents button.revoke")
        if len(buttons) != 1:
            fail(f"expected one revoke button, found {len(buttons)}")
        buttons[0].click()
        if not wait_for(driver, "#notice"):
            fail("no confirmation after revoking")
        shot(driver, shots, "resident-revoked")
        code = platform.person_summary(subject)
        if code != grpc.StatusCode.PERMISSION_DENIED:
            fail(f"after the revocation hrss's PersonSummary answered {code}")
        print("resident: saw the access, revoked the consent, the next PersonSummary was refused")
    finally:
        driver.quit()


def guardian_flow(platform, gateway, console, shots):
    """A father signs in and sees the enrollment check the education bureau
    just made on his child; a stranger's child is refused."""
    child, father, committee = platform.pick_family(gateway)
    platform.enrollment_check(child, father, committee)
    driver = browser(390, 844)
    try:
        sign_in(driver, console, "/resident/login", "assertion", platform.token("--resident", father))
        wait_for(driver, "#child_id_number")[0].send_keys(child)
        driver.find_element(By.ID, "open-child").click()
        wait_for(driver, "#whose")
        rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                for tr in driver.find_elements(By.CSS_SELECTOR, "#accesses tbody tr")]
        if not any(r[1:3] == ["education", "EnrollmentCheck"] for r in rows):
            fail(f"the father does not see the enrollment check on his child: {rows}")
        if child in driver.page_source or father in driver.page_source:
            fail("the guardian page shows an ID number in clear")
        shot(driver, shots, "resident-child")
        # Someone else's child: the gateway's guardian check refuses it.
        driver.get(f"{console}/resident")
        other = id_number("370302", datetime.date(2016, 5, 9), 733)
        wait_for(driver, "#child_id_number")[0].send_keys(other)
        driver.find_element(By.ID, "open-child").click()
        refused = wait_for(driver, "#refused")
        if not refused or "NOT_GUARDIAN" not in refused[0].text:
            fail(f"a stranger's child was not refused NOT_GUARDIAN: {driver.page_source[:1500]}")
        print("guardian: the father saw education's EnrollmentCheck on his child; another child was refused")
    finally:
        driver.quit()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--console", required=True, help="https://host:port of the console")
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--popbase", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--shots", required=True)
    args = parser.parse_args()
    os.makedirs(args.shots, exist_ok=True)
    platform = Platform(args)
    subject = id_number("370302", datetime.date(1986, 3, 14), 421)
    operator_flow(platform, args.console, args.shots, subject)
    catalogue_flow(platform, args.console, args.shots)
    resident_flow(platform, args.console, args.shots, subject)
    guardian_flow(platform, args.gateway, args.console, args.shots)
    print(f"browser test passed; screenshots in {args.shots}")


if __name__ == "__main__":
    main()
