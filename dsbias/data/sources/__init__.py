"""Sources: named image collections behind one small interface (:mod:`.base`), one module per kind
(``folder``, ``imagefolder``, ``webdataset``, ``list``, ``toy``) and an explicit registry (:mod:`.registry`)."""
