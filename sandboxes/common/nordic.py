"""Deterministic, realistic-looking Nordic companies, persons and addresses for seeding the sandboxes.

Record ``i`` depends only on ``(seed, i)``, so seeding 100 or 100,000 records gives the same first 100.
"""
from __future__ import annotations

import random

FIRST_NAMES = {
    "NO": ["Ola", "Kari", "Nora", "Emma", "Jakob", "Lars", "Ingrid", "Sindre", "Marte", "Håkon", "Solveig", "Øystein"],
    "SE": ["Erik", "Anna", "Lars", "Maja", "Oskar", "Elsa", "Johan", "Linnéa", "Gustav", "Astrid"],
    "DK": ["Mads", "Freja", "Søren", "Ida", "Rasmus", "Karen", "Mikkel", "Signe"],
    "FI": ["Mikko", "Aino", "Juha", "Liisa", "Antti", "Helmi", "Eero", "Sanna"],
}
LAST_NAMES = {
    "NO": ["Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen", "Bakken", "Haugen",
           "Dahl", "Sæther"],
    "SE": ["Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Lindqvist", "Bergström"],
    "DK": ["Jensen", "Nielsen", "Hansen", "Pedersen", "Christensen", "Rasmussen", "Sørensen", "Madsen"],
    "FI": ["Korhonen", "Virtanen", "Mäkinen", "Nieminen", "Mäkelä", "Hämäläinen", "Laine", "Heikkinen"],
}
CITIES = {
    "NO": [("Oslo", "0150"), ("Bergen", "5003"), ("Trondheim", "7010"), ("Stavanger", "4006"), ("Tromsø", "9008"),
           ("Drammen", "3015"), ("Kristiansand", "4610"), ("Ålesund", "6002"), ("Bodø", "8006"),
           ("Lillehammer", "2609")],
    "SE": [("Stockholm", "111 52"), ("Göteborg", "411 05"), ("Malmö", "211 20"), ("Uppsala", "753 20"),
           ("Linköping", "582 24")],
    "DK": [("København", "1050"), ("Aarhus", "8000"), ("Odense", "5000"), ("Aalborg", "9000")],
    "FI": [("Helsinki", "00100"), ("Espoo", "02100"), ("Tampere", "33100"), ("Turku", "20100")],
}
STREETS = {
    "NO": ["Storgata", "Kirkegata", "Dronningens gate", "Strandveien", "Bryggen", "Markveien", "Fjellveien", "Sjøgata"],
    "SE": ["Drottninggatan", "Storgatan", "Kungsgatan", "Sveavägen", "Västra Hamngatan"],
    "DK": ["Strøget", "Vesterbrogade", "Nørregade", "Algade"],
    "FI": ["Mannerheimintie", "Aleksanterinkatu", "Hämeenkatu", "Puistokatu"],
}
COMPANY_WORDS = ["Fjord", "Nord", "Viking", "Polar", "Aurora", "Bris", "Fjell", "Skog", "Havbris", "Kyst", "Midnatt",
                 "Lys", "Stein", "Elv", "Vinter", "Furu", "Tind", "Bølge", "Måke", "Ulv"]
COMPANY_TRADES = ["Bygg", "Regnskap", "Transport", "Data", "Eiendom", "Konsult", "Marin", "Energi", "Design", "Mat",
                  "Elektro", "Verksted"]
COMPANY_FORMS = {"NO": "AS", "SE": "AB", "DK": "ApS", "FI": "Oy"}
CURRENCY = {"NO": "NOK", "SE": "SEK", "DK": "DKK", "FI": "EUR"}
COUNTRY_WEIGHTS = [("NO", 70), ("SE", 12), ("DK", 10), ("FI", 8)]
PRODUCTS = [("Konsulenttime", 1250.0), ("Lisens, månedlig", 499.0), ("Support, time", 950.0), ("Frakt", 150.0),
            ("Installasjon", 3500.0), ("Serviceavtale, år", 12000.0), ("Opplæring, dag", 8900.0)]
TITLES = ["Daglig leder", "Økonomisjef", "Innkjøpsansvarlig", "Regnskapsfører", "Prosjektleder"]


def _rng(seed: int, kind: str, index: int) -> random.Random:
    return random.Random(f"{seed}:{kind}:{index}")


def _country(rng: random.Random) -> str:
    pick = rng.randrange(100)
    for code, weight in COUNTRY_WEIGHTS:
        if pick < weight:
            return code
        pick -= weight
    return "NO"


def _ascii(text: str) -> str:
    return text.lower().translate(str.maketrans({"æ": "ae", "ø": "o", "å": "a", "ä": "a", "ö": "o", " ": "", ",": ""}))


def address(rng: random.Random, country: str) -> dict:
    """A street address in ``country``; a second line now and then."""
    city, postal_code = rng.choice(CITIES[country])
    line2 = f"{rng.randint(1, 6)}. etasje" if rng.random() < 0.2 else None
    return {"line1": f"{rng.choice(STREETS[country])} {rng.randint(1, 120)}", "line2": line2, "city": city,
            "postal_code": postal_code, "country": country}


def company(seed: int, index: int) -> dict:
    """Company ``index``: name, organisation number, contact details, address and currency."""
    rng = _rng(seed, "company", index)
    country = _country(rng)
    name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_TRADES)} {COMPANY_FORMS[country]}"
    if index >= len(COMPANY_WORDS) * len(COMPANY_TRADES):
        first, second = rng.choice(COMPANY_WORDS), rng.choice(COMPANY_WORDS).lower()
        name = f"{first}{second} {rng.choice(COMPANY_TRADES)} {index} {COMPANY_FORMS[country]}"
    domain = _ascii(name.rsplit(" ", 1)[0]) + f"{index}.example"
    return {"name": name, "organization_number": str(900000000 + rng.randrange(99999999)),
            "email": f"post@{domain}", "phone": f"+47 {rng.randint(20000000, 99999999)}",
            "address": address(rng, country), "currency": CURRENCY[country]}


def person(seed: int, index: int) -> dict:
    """Private person ``index``: first and last name, contact details and address."""
    rng = _rng(seed, "person", index)
    country = _country(rng)
    first, last = rng.choice(FIRST_NAMES[country]), rng.choice(LAST_NAMES[country])
    return {"first_name": first, "last_name": last, "email": f"{_ascii(first)}.{_ascii(last)}{index}@example.com",
            "phone": f"+47 {rng.randint(40000000, 49999999)}", "address": address(rng, country),
            "currency": CURRENCY[country]}


def contact_person(seed: int, index: int) -> dict:
    """A contact person at a company."""
    rng = _rng(seed, "contact", index)
    first, last = rng.choice(FIRST_NAMES["NO"]), rng.choice(LAST_NAMES["NO"])
    return {"first_name": first, "last_name": last, "title": rng.choice(TITLES),
            "email": f"{_ascii(first)}.{_ascii(last)}{index}@example.com",
            "phone": f"+47 {rng.randint(90000000, 99999999)}"}


def order_lines(seed: int, index: int) -> list[dict]:
    """One to four order lines: description, quantity, unit price and VAT rate."""
    rng = _rng(seed, "order", index)
    lines = []
    for _ in range(rng.randint(1, 4)):
        description, price = rng.choice(PRODUCTS)
        lines.append({"description": description, "quantity": float(rng.randint(1, 10)), "unit_price": price,
                      "vat_rate": 0.25})
    return lines


def order_currency(seed: int, index: int, customer_currency: str) -> str:
    """Mostly the customer's currency, sometimes EUR or USD."""
    rng = _rng(seed, "currency", index)
    roll = rng.random()
    return "EUR" if roll < 0.1 else "USD" if roll < 0.15 else customer_currency
