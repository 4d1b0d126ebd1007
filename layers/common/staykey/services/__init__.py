"""Domain services: each takes its collaborators as arguments; `staykey.wiring` builds real ones."""
