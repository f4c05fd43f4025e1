"""A local, in-memory stand-in for the Invoiced REST API (customers, contacts, invoices)."""
