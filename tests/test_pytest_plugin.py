"""The pytest plugin as a user's test suite sees it (a separate pytest run of a small test file)."""
import subprocess
import sys

USER_TESTS = '''
def test_that_makes_the_emulator_answer_500(sandbox):
    def broken(**_entry):
        raise RuntimeError("journal broke")
    sandbox.journal.record = broken
    with sandbox.segment_client() as client:
        client.post("/v1/track", json={"writeKey": "sandbox-write-key", "userId": "u", "event": "E"})


def test_that_is_fine(segment):
    assert segment.post("/v1/track", json={"writeKey": "sandbox-write-key", "userId": "u", "event": "E"}).status_code == 200
'''


def test_an_emulator_500_fails_the_test_that_caused_it_with_the_server_traceback(tmp_path):
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                             str(tmp_path / "test_user.py")], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    summary = result.stdout.strip().splitlines()[-1]
    assert "1 failed, 1 passed" in summary and "error" not in summary, result.stdout[-2000:]
    assert "FAILED test_user.py::test_that_makes_the_emulator_answer_500" in result.stdout
    assert "RuntimeError: journal broke" in result.stdout
