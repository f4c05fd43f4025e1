"""Local, faithful stand-ins for the PowerOffice Go v2 and Invoiced APIs (development and tests only)."""
