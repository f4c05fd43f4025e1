"""In-memory state of the one sandbox account: tables, unique-number indexes, and the caches the server keeps."""
from __future__ import annotations

import collections
import time

# Separate id ranges per table, so that a customer id sent where an invoice id belongs fails loudly in tests.
ID_BASES = {"customer": 100_001, "contact": 500_001, "invoice": 900_001, "line_item": 2_000_001}
_LIST_CACHE_SIZE = 64


def now() -> int:
    """The server clock in whole seconds: timestamps have second resolution, a quirk clients must live with."""
    return int(time.time())


class Store:
    """Records by table (in id order), number indexes, the list cache, page cursors and idempotent replies."""

    def __init__(self) -> None:
        self.customers: dict[int, dict] = {}
        self.contacts: dict[int, dict] = {}
        self.invoices: dict[int, dict] = {}
        self.contacts_by_customer: dict[int, dict[int, None]] = collections.defaultdict(dict)
        self.invoices_by_customer: collections.Counter = collections.Counter()
        self.customer_numbers: dict[str, int] = {}
        self.invoice_numbers: dict[str, int] = {}
        self.next_ids = dict(ID_BASES)
        self.next_number = {"customer": 1, "invoice": 1}
        self.versions: collections.Counter = collections.Counter()
        self.list_cache: collections.OrderedDict = collections.OrderedDict()
        self.cursors: dict[tuple, float] = {}
        self.idempotent: dict[tuple[str, str], tuple[float, int, bytes]] = {}

    def table(self, entity: str) -> dict[int, dict]:
        """The records of ``customer``, ``contact`` or ``invoice``."""
        return {"customer": self.customers, "contact": self.contacts, "invoice": self.invoices}[entity]

    def new_id(self, kind: str) -> int:
        """Hand out the next id of ``kind`` (ids only grow, as with an auto-increment column)."""
        ident = self.next_ids[kind]
        self.next_ids[kind] = ident + 1
        return ident

    def changed(self, entity: str) -> None:
        """Note a write to ``entity``, which invalidates every cached list of it."""
        self.versions[entity] += 1

    def cached_ids(self, entity: str, signature: tuple, build) -> list[int]:
        """The matching ids for a list query, rebuilt only after a write, like the server's cursor cache."""
        key = (entity, signature)
        version = self.versions[entity]
        hit = self.list_cache.get(key)
        if hit is not None and hit[0] == version:
            self.list_cache.move_to_end(key)
            return hit[1]
        ids = build()
        self.list_cache[key] = (version, ids)
        self.list_cache.move_to_end(key)
        while len(self.list_cache) > _LIST_CACHE_SIZE:
            self.list_cache.popitem(last=False)
        return ids

    @staticmethod
    def number_key(number: str) -> str:
        """Numbers are unique case-insensitively after trimming."""
        return number.strip().casefold()

    def next_auto_number(self, kind: str, prefix: str) -> str:
        """The next free ``PREFIX-0001`` style number, skipping any taken by hand."""
        index = self.customer_numbers if kind == "customer" else self.invoice_numbers
        while True:
            number = f"{prefix}-{self.next_number[kind]:04d}"
            self.next_number[kind] += 1
            if self.number_key(number) not in index:
                return number
