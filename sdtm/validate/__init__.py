"""SDTM validation: schemas built from metadata, cross-dataset conformance rules, reports."""
