"""The HTML report of a run or a study (``report.html``): the verdict (:mod:`.verdict`), the page writer
(:mod:`.html`), a run's page (:mod:`.run_page`) and a study's (:mod:`.study_page`)."""
