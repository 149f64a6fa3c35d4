from __future__ import annotations

import sys

from grafana.build import main

sys.exit(main())
