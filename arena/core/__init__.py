"""All of Arena's logic. Never imports Textual (enforced by tests/test_import_contract.py)."""
