"""Contact persons in the PowerOffice Go sandbox."""
from __future__ import annotations


def add_person(pogo, contact_id: int, **fields):
    return pogo.post(f"/ContactPersons/{contact_id}", {"FirstName": "Ola", "LastName": "Nordmann", **fields})


def test_contact_person_is_created_under_a_company(pogo):
    company = pogo.create_customer()
    response = add_person(pogo, company["Id"], EmailAddress="ola@fjord.example")
    assert response.status_code == 201
    person = response.json()
    assert person["ContactId"] == company["Id"]
    assert person["IsActive"] is True
    assert pogo.get(f"/ContactPersons/{company['Id']}/{person['Id']}").json() == person


def test_contact_person_needs_first_and_last_name(pogo):
    company = pogo.create_customer()
    response = pogo.post(f"/ContactPersons/{company['Id']}", {"FirstName": "Ola"})
    assert response.status_code == 400
    assert response.json()["title"] == "ContactPerson validation error(s)"


def test_person_customers_cannot_have_contact_persons(pogo):
    person = pogo.create_customer(IsPerson=True, FirstName="Kari", LastName="Nordmann")
    assert add_person(pogo, person["Id"]).status_code == 400


def test_contact_person_under_an_unknown_contact_is_404(pogo):
    assert add_person(pogo, 999).status_code == 404


def test_contact_person_is_not_found_under_another_contact(pogo):
    first, second = pogo.create_customer(), pogo.create_customer(Name="Andre AS")
    person = add_person(pogo, first["Id"]).json()
    assert pogo.get(f"/ContactPersons/{second['Id']}/{person['Id']}").status_code == 404


def test_contact_persons_are_listed_by_contact_ids(pogo):
    first, second = pogo.create_customer(), pogo.create_customer(Name="Andre AS")
    add_person(pogo, first["Id"])
    wanted = add_person(pogo, second["Id"], FirstName="Kari").json()
    assert [p["Id"] for p in pogo.get("/ContactPersons", contactIds=str(second["Id"])).json()] == [wanted["Id"]]


def test_contact_ids_filter_refuses_ranges(pogo):
    assert pogo.get("/ContactPersons", contactIds="1-5").status_code == 400


def test_contact_person_list_is_204_when_nothing_matches(pogo):
    response = pogo.get("/ContactPersons")
    assert response.status_code == 204 and response.content == b""


def test_patching_a_contact_person_moves_its_own_timestamp_but_not_the_customers(pogo):
    company = pogo.create_customer()
    person = add_person(pogo, company["Id"]).json()
    patched = pogo.patch(f"/ContactPersons/{company['Id']}/{person['Id']}",
                         [{"op": "replace", "path": "/title", "value": "Daglig leder"}]).json()
    assert patched["Title"] == "Daglig leder"
    assert patched["LastChangedDateTimeOffset"] > person["LastChangedDateTimeOffset"]
    assert pogo.get(f"/Customers/{company['Id']}").json()["LastChangedDateTimeOffset"] == \
        company["LastChangedDateTimeOffset"]
    rows = pogo.get("/ContactPersons", lastChangedDateTimeOffsetGreaterThan=person["LastChangedDateTimeOffset"]).json()
    assert [r["Id"] for r in rows] == [person["Id"]]


def test_contact_person_patch_needs_json_patch(pogo):
    company = pogo.create_customer()
    person = add_person(pogo, company["Id"]).json()
    response = pogo.call("PATCH", f"/ContactPersons/{company['Id']}/{person['Id']}", json={"Title": "Sjef"})
    assert response.status_code == 415


def test_deleting_a_customer_removes_its_contact_persons(pogo):
    company = pogo.create_customer()
    add_person(pogo, company["Id"])
    pogo.delete(f"/Customers/{company['Id']}")
    assert pogo.get("/ContactPersons").status_code == 204
