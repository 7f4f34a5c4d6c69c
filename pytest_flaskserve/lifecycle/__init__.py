"""How a server lives, without pytest: the start loop (:mod:`.supervisor`), the handle it
returns (:mod:`.handle`), the server's environment (:mod:`.environment`), the process and
its whole tree (:mod:`.process`, :mod:`.registry`, :mod:`.stopping`), HTTP readiness
(:mod:`.readiness`), ports and sockets (:mod:`.ports`, :mod:`.sockets`), log reading
(:mod:`.logs`) and plain-words startup diagnosis (:mod:`.diagnose`)."""
