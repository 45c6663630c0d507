"""Migration revisions, applied in order by ivr.store.migrate."""
