import sys

from vgzoo.cli import main

sys.exit(main())
