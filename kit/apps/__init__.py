"""Programs built on the kit: ``kit demo`` (:mod:`kit.apps.demo`) and the intersection service."""
