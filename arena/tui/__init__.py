"""The Textual app: displays core events and store queries, computes nothing itself."""
