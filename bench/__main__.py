"""Entry point of `python -m bench` (`make bench`): the scale benchmark, then the import-rate benchmark.

Arguments go to the scale benchmark (`python -m bench --help`); `python -m bench.scale` and
`python -m bench.import_rate` run one of them alone.
"""

import sys

from bench import import_rate, scale

status = scale.main(sys.argv[1:])
print(flush=True)
sys.exit(status or import_rate.main([]))
