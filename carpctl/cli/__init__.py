"""The ``carpctl`` command line: argv -> request -> rendering, and exit codes.

``main.py`` builds the parser from the command modules listed in
``main.COMMANDS``; each command module (``inspect.py`` ...) provides
``NAME``, ``HELP``, ``DESCRIPTION``, ``configure(parser)`` and ``run(args)``.
"""
