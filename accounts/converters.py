"""URL and form ids: a positive integer the database can hold, anything else is 404."""

MAX_ID = 2**63 - 1


def parse_id(value) -> int | None:
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValueError("not an id")  # no match: the URL answers 404
        return number

    def to_url(self, value) -> str:
        return str(value)
