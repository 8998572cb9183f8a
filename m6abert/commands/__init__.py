"""The commands from files to files: what each console command runs after its flags are checked.

A notebook imports the compute rooms (``m6abert.attribution``, ``m6abert.ism``, ``m6abert.motifs``, ...)
or :mod:`m6abert.api`; a command line reaches these through ``m6abert/cli/``.
"""
