"""Analysis functions named in the TLF catalogues (`analysis: <module>.<function>`)."""
