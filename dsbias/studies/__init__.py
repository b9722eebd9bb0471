"""Studies: named grids of ordinary runs after the papers' tables (:mod:`.catalogue`), run and resumed by
:mod:`.runner`, reported by :mod:`.report` with the published numbers of :mod:`.paper`."""
