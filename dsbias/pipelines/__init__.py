"""The mains behind the scripts, each a table of contents of stages (:mod:`.stages`): pretraining
(:mod:`.pretrain`), feature extraction (:mod:`.extract`) and dataset classification (:mod:`.classify`)."""
