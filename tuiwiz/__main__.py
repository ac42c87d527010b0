import sys

from tuiwiz.cli import main

sys.exit(main())
