"""A plain `requests` client: measures the sandboxes' per-call service time, and is the naive sequential baseline.

The naive client does what the initial sync does, one call at a time: a token, every PowerOffice Go customer and
sales order page (5,000 per page, spaced to stay under 10 requests/s), then one Invoiced create per customer and
one per sales order, each waiting for the previous answer. No engine, no link store, no threads.
"""
from __future__ import annotations

import base64
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

POGO_PAGE = 5000


class Plain:
    """Bare HTTP to both sandboxes of a SandboxProcess."""

    def __init__(self, process) -> None:
        self.process = process
        self.settings = process.settings
        self.local = threading.local()
        self._pogo_token: str | None = None
        self._last_pogo = 0.0

    @property
    def http(self) -> requests.Session:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        return session

    # -- PowerOffice Go --------------------------------------------------------------------------------------

    def pogo_token(self) -> str:
        s = self.settings
        basic = base64.b64encode(f"{s.pogo_application_key}:{s.pogo_client_key}".encode()).decode()
        response = self.http.post(f"{self.process.pogo_url}/OAuth/Token", data="grant_type=client_credentials",
                                  headers={"Authorization": f"Basic {basic}",
                                           "Ocp-Apim-Subscription-Key": s.pogo_subscription_key,
                                           "Content-Type": "application/x-www-form-urlencoded"}, timeout=60)
        response.raise_for_status()
        self._pogo_token = response.json()["access_token"]
        return self._pogo_token

    def pogo_list(self, path: str) -> list[dict]:
        """Every record of a PowerOffice Go list, page after page, at most 10 requests in any second."""
        headers = {"Authorization": f"Bearer {self._pogo_token or self.pogo_token()}",
                   "Ocp-Apim-Subscription-Key": self.settings.pogo_subscription_key}
        out: list[dict] = []
        page = 1
        while True:
            wait = self._last_pogo + 0.11 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_pogo = time.monotonic()
            response = self.http.get(f"{self.process.pogo_url}/v2{path}",
                                     params={"PageNumber": page, "PageSize": POGO_PAGE}, headers=headers, timeout=120)
            response.raise_for_status()
            if response.status_code == 204:
                return out
            rows = response.json()
            out.extend(rows)
            if len(rows) < POGO_PAGE:
                return out
            page += 1

    # -- Invoiced --------------------------------------------------------------------------------------------

    def invoiced(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.http.request(method, f"{self.process.invoiced_url}{path}", json=body,
                                     auth=(self.settings.invoiced_api_key, ""), timeout=120)
        response.raise_for_status()
        return response.json()


def customer_body(raw: dict) -> dict:
    """What the customer flows send for a PowerOffice Go customer (name, type, address for persons, our id)."""
    if raw.get("IsPerson"):
        address = raw.get("MailAddress") or {}
        body = {"type": "person", "name": f"{raw.get('FirstName') or ''} {raw.get('LastName') or ''}".strip(),
                "address1": address.get("AddressLine1"), "address2": address.get("AddressLine2"),
                "city": address.get("City"), "postal_code": address.get("ZipCode"),
                "country": address.get("CountryCode")}
    else:
        body = {"type": "company", "name": raw["Name"]}
    body = {k: v for k, v in body.items() if v not in (None, "")}
    body["metadata"] = {"poweroffice_go_id": str(raw["Id"])}
    return body


def invoice_body(order: dict, customer_id: int) -> dict:
    """What the invoice flow sends for a sales order: a draft with the customer and currency, our id."""
    return {"draft": True, "customer": customer_id, "currency": (order.get("CurrencyCode") or "NOK").lower(),
            "metadata": {"poweroffice_go_id": str(order["Id"])}}


def service_time(process, calls: int = 300) -> dict:
    """Per-call time of Invoiced creates and PowerOffice Go pages with no added latency, one call at a time.

    This is the sandbox's service time plus this client's and the loopback's overhead (an upper bound of the
    service time). Then the sandbox's capacity: creates per second with 19 in flight and no added latency.
    Run on empty sandboxes with faults off; the caller resets them afterwards.
    """
    plain = Plain(process)
    out: dict = {}
    ids: list[int] = []

    def timed(fn, n):
        samples = []
        for i in range(n):
            started = time.perf_counter()
            fn(i)
            samples.append(time.perf_counter() - started)
        return samples

    # warm-up: connections, first-call code paths
    for i in range(20):
        ids.append(plain.invoiced("POST", "/customers", {"name": f"Warm-up {i}", "type": "company"})["id"])
    samples = timed(lambda i: ids.append(plain.invoiced("POST", "/customers", {
        "name": f"Calibration AS {i}", "type": "company", "metadata": {"poweroffice_go_id": str(i)}})["id"]), calls)
    out["invoiced_post_customers_ms"] = _summary(samples)
    samples = timed(lambda i: plain.invoiced("POST", "/invoices", {
        "draft": True, "customer": ids[i], "currency": "nok", "metadata": {"poweroffice_go_id": f"o{i}"}}), calls)
    out["invoiced_post_invoices_ms"] = _summary(samples)
    samples = timed(lambda i: plain.invoiced("GET", "/customers?per_page=100"), 50)
    out["invoiced_get_page_100_ms"] = _summary(samples)

    # capacity: 19 threads, no added latency
    total = 1000
    started = time.perf_counter()
    with ThreadPoolExecutor(19) as pool:
        list(pool.map(lambda i: plain.invoiced("POST", "/customers", {"name": f"Capacity AS {i}", "type": "company"}),
                      range(total)))
    out["invoiced_capacity_creates_per_s"] = round(total / (time.perf_counter() - started), 1)
    return out


def pogo_page_time(process, pages: int = 3) -> dict:
    """Time of one 5,000-record PowerOffice Go page of customers and of sales orders (seeded sandbox, no latency)."""
    plain = Plain(process)
    plain.pogo_token()
    headers = {"Authorization": f"Bearer {plain._pogo_token}",
               "Ocp-Apim-Subscription-Key": plain.settings.pogo_subscription_key}
    out = {}
    for path in ("/Customers", "/SalesOrders"):
        samples = []
        for _ in range(pages):
            time.sleep(0.12)
            started = time.perf_counter()
            response = plain.http.get(f"{process.pogo_url}/v2{path}", params={"PageNumber": 1, "PageSize": POGO_PAGE},
                                      headers=headers, timeout=120)
            response.raise_for_status()
            samples.append(time.perf_counter() - started)
        out[f"pogo_get_{path.strip('/').lower()}_page_5000_ms"] = _summary(samples)
    return out


def _summary(samples: list[float]) -> dict:
    ms = sorted(s * 1000 for s in samples)
    return {"n": len(ms), "mean": round(statistics.fmean(ms), 2), "median": round(statistics.median(ms), 2),
            "p90": round(ms[int(len(ms) * 0.9) - 1], 2)}


def naive_sync(process, n: int, sample_calls: int | None) -> dict:
    """The naive sequential client; with ``sample_calls``, only that many creates (half customers, half invoices)
    are made and the rest is extrapolated from their mean time per call."""
    plain = Plain(process)
    started = time.perf_counter()
    plain.pogo_token()
    customers = plain.pogo_list("/Customers")
    orders = plain.pogo_list("/SalesOrders")
    list_seconds = time.perf_counter() - started
    want_customers = len(customers) if sample_calls is None else min(len(customers), sample_calls // 2)
    want_orders = len(orders) if sample_calls is None else min(len(orders), sample_calls - want_customers)
    linked: dict[str, int] = {}
    create_started = time.perf_counter()
    for raw in customers[:want_customers]:
        linked[str(raw["Id"])] = plain.invoiced("POST", "/customers", customer_body(raw))["id"]
    any_customer = next(iter(linked.values()))
    for order in orders[:want_orders]:
        # In a sample, an order's customer may not have been created: any created customer stands in (same cost).
        customer = linked.get(str(order.get("CustomerId")), any_customer)
        plain.invoiced("POST", "/invoices", invoice_body(order, customer))
    create_seconds = time.perf_counter() - create_started
    made = want_customers + want_orders
    per_call = create_seconds / made
    total_creates = len(customers) + len(orders)
    return {"measured_creates": made, "total_creates": total_creates, "extrapolated": made < total_creates,
            "list_seconds": round(list_seconds, 2), "create_seconds_measured": round(create_seconds, 2),
            "per_create_ms": round(per_call * 1000, 2),
            "wall_seconds": round(list_seconds + per_call * total_creates, 1)}
