import sys

from vgzoo.cli.commands import main

sys.exit(main())
