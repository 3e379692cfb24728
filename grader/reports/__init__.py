"""Results out: the HTML pages of each submission and of the class, their plots, and the
CSV gradebooks. Inputs are plain results; nothing here runs a notebook."""

from pathlib import Path

# The published JSON Schema of results.json: the tests validate real outputs against it, and the
# documentation's reference of results.json is generated from it.
RESULTS_SCHEMA = Path(__file__).with_name("results.schema.json")
