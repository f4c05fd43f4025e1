"""Static facts the Invoiced server checks against: country and currency codes, field lists, account defaults."""
from __future__ import annotations

import re

from sandboxes.common.iso import COUNTRY_CODES as COUNTRIES  # noqa: F401  (shared with PowerOffice Go)

# The sandbox plays one Norwegian account; these are its settings (Settings → Business profile in the real app).
ACCOUNT_COUNTRY = "NO"
ACCOUNT_CURRENCY = "nok"
ACCOUNT_PAYMENT_TERMS = "NET 30"
# The company username for the "username + API key as password" Basic-auth variant.
ACCOUNT_USERNAME = "sandbox"
# Customer-facing links (statements, invoice pages) point here; nothing serves them.
PUBLIC_BASE = "https://sandbox.invoiced.test"

DEFAULT_PER_PAGE = 100
PAGE_LIMIT = 100
# The real server refuses to jump to a deep page of an id-sorted list without the preceding page's cursor.
DEEP_PAGE_OFFSET = 10_000
CURSOR_TTL_SECONDS = 300
IDEMPOTENCY_TTL_SECONDS = 86_400
MAX_IN_FLIGHT = 20
MAX_CONTACTS_PER_CUSTOMER = 100

METADATA_MAX_KEYS = 10
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 255
# Metadata filter keys outside this pattern (or numeric ones) are silently ignored by the server.
METADATA_FILTER_KEY = re.compile(r"^[A-Za-z0-9_-]*$")

# ISO 4217 codes in current use (lower case, as the server stores them).
CURRENCIES = frozenset("""
aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob bov brl bsd btn bwp byn bzd cad cdf
chf clf clp cny cop crc cuc cup cve czk djf dkk dop dzd egp ern etb eur fjd fkp gbp gel ghs gip gmd gnf gtq gyd
hkd hnl htg huf idr ils inr iqd irr isk jmd jod jpy kes kgs khr kmf kpw krw kwd kyd kzt lak lbp lkr lrd lsl lyd
mad mdl mga mkd mmk mnt mop mru mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg
qar ron rsd rub rwf sar sbd scr sdg sek sgd shp sle sll sos srd ssp stn svc syp szl thb tjs tmt tnd top try ttd
twd tzs uah ugx usd uyu uzs ves vnd vuv wst xaf xcd xof xpf yer zar zmw zwl
""".split())
# Currencies without minor units; amounts round to whole numbers.
ZERO_DECIMAL_CURRENCIES = frozenset("bif clp djf gnf isk jpy kmf krw pyg rwf ugx vnd vuv xaf xof xpf".split())

CUSTOMER_TYPES = ("company", "person", "government", "non_profit")
INVOICE_STATUSES = ("draft", "not_sent", "sent", "viewed", "past_due", "pending", "paid", "voided", "bad_debt",
                    "disputed")

# Fields usable in ``filter[...]`` (and ``sort``); anything else gives 400 ``Invalid filter parameter``.
FILTERABLE = {
    "customer": frozenset("""id name number email type active autopay chase country state city postal_code address1
        address2 attention_to phone tax_id taxable currency language owner parent_customer payment_terms credit_hold
        credit_limit created_at updated_at""".split()),
    "contact": frozenset("""id customer name email phone primary sms_enabled title department address1 address2 city
        state postal_code country created_at updated_at""".split()),
    "invoice": frozenset("""id customer number name currency status draft closed paid sent viewed voided date due_date
        total balance subtotal autopay payment_terms purchase_order created_at updated_at subscription""".split()),
}

# Query keys ``GET /customers`` accepts; any other key is a 400 (the other lists ignore unknown keys).
CUSTOMER_LIST_OPTIONS = frozenset("""advanced_filter automation balance exclude expand filter include
    late_fee_schedule_id metadata open_balance owner page paginate payment_source per_page sort updated_after
    updated_before""".split())

# Keys a body may not set ("Mass assignment of <k> on Customer is not allowed").
CUSTOMER_BLOCKED = frozenset("""id object created_at updated_at statement_pdf_url sign_up_url credit_balance
    client_id""".split())
INVOICE_BLOCKED = frozenset("""id object subtotal total status viewed paid balance amount_paid amount_credited
    date_paid attempt_count created_at updated_at payment_plan_id subscription_id""".split())

# Contact bodies are validated strictly: these are the only keys allowed.
CONTACT_FIELDS = ("name", "title", "department", "email", "phone", "primary", "sms_enabled", "address1", "address2",
                  "city", "state", "postal_code", "country", "send_new_invoices", "role")

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
