"""Subscribers: the list, double opt-in, signed tokens, consent, suppression and CSV.

This package imports nothing from `digest/`: what it needs (a way to send the confirmation
mail, the secret keys, the publication's languages) is passed in by the caller.

Modules, one noun each: `model` (tables), `addresses` (normalizing), `tokens` (signed links),
`suppression` (keyed hashes of addresses never to re-add), `registry` (the subscriber list)
and `csvio` (import and export).
"""
