"""The training engine every method runs on: the loop (:mod:`.loop`), the step-indexed data order
(:mod:`.order`), checkpoints (:mod:`.checkpoint`), optimiser and schedule (:mod:`.optim`), and its config
sections ``optim`` and ``train`` (:mod:`.config`)."""
