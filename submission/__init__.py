"""Submission package: Define-XML 2.1 for SDTM and ADaM, eCTD module 5 layout, manifest."""
