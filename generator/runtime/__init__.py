"""The intermittent runtime: layer-task checkpointing, QL-tagged STT-MRAM writes, fault injection.

:mod:`.quality` (the QL table) → :mod:`.inject` (the injector's Python twin) → :mod:`.layout`
(steps, NVM layout, schedules, decoding) → :mod:`.emit` / :mod:`.nvmtest` (the C tree) →
:mod:`.energy` (the research's energy model) and :mod:`.campaign` (power-failure runs).
"""
