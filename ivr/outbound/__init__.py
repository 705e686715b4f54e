"""Outbound calling (issue 19): campaigns (YAML), targets, calling windows, pacing, retries, do-not-call,
a scheduler with restart-safe state, answering-machine detection, and SIP result mapping.

Import from the modules (`ivr.outbound.scheduler`, `.loader`, `.amd`...): this package's own import
stays empty so `ivr --help` (which registers `ivr campaign`) does not load the flow language.
"""
