"""A faithful local sandbox of the PowerOffice Go v2 API (token endpoint, Customers, ContactPersons, SalesOrders)."""
