"""Pure domain models and rules: no I/O, no boto3, no psycopg."""
