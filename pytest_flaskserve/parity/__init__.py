"""Does the app behave the same on every server? One HTTP exchange byte for byte
(:mod:`.wire`), pinning requests to workers (:mod:`.workers`), the app's URL map
(:mod:`.app_facts`) and the comparison (:mod:`.compare`). No pytest here."""
