from conftest import MARK
def test_mark() -> None:
    assert MARK == "domain"
