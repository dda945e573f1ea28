"""Request and audit event ids never repeat, also across the forked workers of one server."""

import os

from hubproxy.ids import new_id


def test_a_forked_process_draws_ids_of_its_own() -> None:
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its first ids, to the parent
        try:
            os.write(write_end, " ".join(new_id() for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_ids = set(pipe.read().split())
    os.waitpid(child, 0)
    parent_ids = {new_id() for _ in range(3)}
    assert len(child_ids) == 3
    assert not child_ids & parent_ids
    assert {item[:8] for item in child_ids} != {item[:8] for item in parent_ids}
