"""How a server lives, without pytest: start (:mod:`.supervisor`), the process and its whole
tree (:mod:`.process`), HTTP readiness (:mod:`.readiness`), free ports (:mod:`.ports`) and
plain-words startup diagnosis (:mod:`.diagnose`)."""
