"""Data layer: sources (:mod:`.sources`) -> manifest (seeded, balanced, disjoint split, de-duplicated:
:mod:`.sampling`, :mod:`.dedup`, :mod:`.manifest`) -> mixed dataset (:mod:`.dataset`) -> loader (:mod:`.loader`);
the ``data`` section (:mod:`.config`), robust decoding (:mod:`.decode`), the eval view (:mod:`.views`) and the
shard writer (:mod:`.prepare`)."""
