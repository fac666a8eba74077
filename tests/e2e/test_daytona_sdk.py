"""The loopback Daytona of tests/daytona is faithful to the real API: driven
by Daytona's own TypeScript SDK (@daytonaio/sdk, tests/daytona/contract.mjs:
create, execute, session exec, poll, logs, file download, list by labels,
delete, and the refusals), with every request checked against the published
specs.  Without node and npm the test skips.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "daytona"))

from dagdtest import main  # noqa: E402
from daytonae2e import HERE, Server, daytona_test, node_env  # noqa: E402


@daytona_test(timeout=300)
def the_sdk_drives_the_loopback_server_and_every_request_and_answer_is_as_the_specs_say():
    s = Server()
    r = subprocess.run(["node", os.path.join(HERE, "contract.mjs"), s.url, s.key], env=node_env(),
                       capture_output=True, text=True, timeout=240)
    for line in (r.stdout + r.stderr).splitlines():
        print("# " + line)
    assert r.returncode == 0 and "not ok" not in r.stdout, "the SDK's contract test failed"


if __name__ == "__main__":
    main()
