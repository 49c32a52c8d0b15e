"""What the tests share: fixtures, helpers and the PostgreSQL provisioning. No test module imports
another; they import from here."""
