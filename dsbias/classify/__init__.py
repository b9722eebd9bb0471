"""The source classifier's pieces: evaluation one image at a time (:mod:`.evaluate`), initialisation from a
pretraining run (:mod:`.finetune`), the "did the loss go down" check (:mod:`.loss_check`) and the ``classify``
section (:mod:`.config`). The main is :mod:`dsbias.pipelines.classify`."""
