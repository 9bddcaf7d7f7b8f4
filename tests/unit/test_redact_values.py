"""Registered values are masked in every common encoding, whole when they overlap, alongside the
policy's patterns, in text, in nested data and in a stream written piece by piece."""

from __future__ import annotations

import base64
import io
import json
import random
import re
import string
from urllib.parse import quote, quote_plus

import pytest

from reconciler.redact import MASK, RedactingStream, Redactor
from reconciler.secretforms import MIN_ENCODED_BITS, forms

SECRET = "s3cr3t/Välue+x?&=~ "  # slash, non-ASCII, characters base64 and URLs treat apart
VALUE_BYTES = SECRET.encode()


def lower_escapes(text: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda match: match.group().lower(), text)


def encodings() -> dict[str, str]:
    """Every encoding of SECRET that must not pass, by name."""
    b64 = base64.b64encode(VALUE_BYTES).decode()
    url64 = base64.urlsafe_b64encode(VALUE_BYTES).decode()
    found = {
        "plain": SECRET,
        "base64": b64,
        "base64 unpadded": b64.rstrip("="),
        "urlsafe base64": url64,
        "urlsafe base64 unpadded": url64.rstrip("="),
        "quote": quote(SECRET, safe=""),
        "quote keeping /": quote(SECRET),
        "quote_plus": quote_plus(SECRET),
        "quote lower-case": lower_escapes(quote(SECRET, safe="")),
        "quote_plus lower-case": lower_escapes(quote_plus(SECRET)),
        "json ascii": json.dumps(SECRET)[1:-1],
        "json unicode": json.dumps(SECRET, ensure_ascii=False)[1:-1],
        "hex": VALUE_BYTES.hex(),
        "HEX": VALUE_BYTES.hex().upper(),
    }
    for before in range(3):
        for after in range(3):
            blob = b"\x01\xfe\x7f"[:before] + VALUE_BYTES + b"\x80\x00\xff"[:after]
            found[f"inside base64 +{before}/{after}"] = base64.b64encode(blob).decode()
            found[f"inside urlsafe +{before}/{after}"] = base64.urlsafe_b64encode(blob).decode()
    return found


def visible_bits(text: str) -> list[str]:
    """The pieces of SECRET's encodings (10+ characters) still in `text`."""
    return [form for form in forms(SECRET) if len(form) >= 10 and form in text]


@pytest.mark.parametrize("name", sorted(encodings()))
def test_each_encoding_is_masked_in_text(name: str) -> None:
    redactor = Redactor()
    redactor.register(SECRET)
    encoded = encodings()[name]

    masked = redactor.text(f"header {encoded} trailer")

    assert MASK in masked, name
    assert masked.startswith("header ") and masked.endswith(" trailer"), masked
    assert not visible_bits(masked), (name, masked)


def test_every_encoding_is_masked_in_nested_data() -> None:
    redactor = Redactor()
    redactor.register(SECRET)
    data = {
        "outer": [{"k": f"Basic {text}", text: [text, 1, None]} for text in encodings().values()]
    }

    dumped = json.dumps(redactor.data(data), ensure_ascii=False)

    assert not visible_bits(dumped), dumped
    assert dumped.count(MASK) == 3 * len(encodings())  # the value, the key, the list item


def test_a_base64_blob_with_the_value_inside_keeps_only_its_neighbours() -> None:
    redactor = Redactor()
    redactor.register("0123456789abcdef")
    blob = base64.b64encode(b"user=alice;token=0123456789abcdef;exp=1").decode()

    masked = redactor.text(blob)

    before, after = masked.split(MASK)
    # At most the two characters on each side that mix the value's bits with a neighbour's.
    assert blob.startswith(before) and blob.endswith(after)
    assert len(blob) - len(before) - len(after) >= 4 * 16 // 3 - 2


def test_innocent_text_and_short_encodings_are_left_alone() -> None:
    redactor = Redactor()
    redactor.register("abcd")  # 4 characters: its base64 cores and hex are too short to keep
    innocent = "digest 61626364 YWJj WJjZA plain words, base64 QUJDRA== and an abc"

    assert redactor.text(innocent) == innocent
    assert redactor.text("x abcd y") == f"x {MASK} y"
    kept = [form for form in forms("abcd") if form != "abcd"]
    assert all(form in ("abcd",) for form in kept)  # every escape of "abcd" is "abcd" itself
    long_forms = forms("abcdefgh")
    assert base64.b64encode(b"abcdefgh").decode() in long_forms
    assert b"abcdefgh".hex() in long_forms  # 16 hex characters: 64 bits
    cores = [
        base64.b64encode(bytes(n) + b"abcdefgh").decode()[-(-8 * n // 6) :][:10] for n in (1, 2)
    ]
    assert all(core in long_forms for core in cores)  # 10 base64 characters: 60 bits
    assert MIN_ENCODED_BITS == 60


def test_registering_is_idempotent_and_short_values_are_ignored() -> None:
    once, twice = Redactor(), Redactor()
    once.register(SECRET)
    for _ in range(3):
        twice.register(SECRET)
    twice.register("abc")
    text = " | ".join(encodings().values()) + " abc"

    assert once.text(text) == twice.text(text)
    assert twice.text("abc") == "abc"
    assert twice.longest == once.longest


def test_overlapping_and_nested_values_are_masked_whole() -> None:
    redactor = Redactor()
    for value in ("abcdefgh", "defghijk", "xyzxyzxyz", "zxyzxy"):
        redactor.register(value)

    assert redactor.text("<abcdefghijk>") == f"<{MASK}>"
    assert redactor.text("<defghijk> <abcdefgh>") == f"<{MASK}> <{MASK}>"
    assert redactor.text("1xyzxyzxyz2") == f"1{MASK}2"  # the nested value is inside it
    assert redactor.text("abcdefghabcdefgh") == f"{MASK}{MASK}"  # adjacent values stay two


def test_patterns_and_values_mask_together_on_the_original_text() -> None:
    redactor = Redactor(["key-[a-z0-9]+", "tok_[a-z0-9]{6}"])
    redactor.register("zq9secretvalue")

    # The value sits inside what the pattern matches: the whole match is masked, not just
    # the value (masking the value first would have cut the pattern's match short).
    assert redactor.text("a key-ab1zq9secretvalue7 b") == f"a {MASK} b"
    # A pattern match that overlaps the value's start: none of either stays.
    assert redactor.text("tok_zq9secretvalue!") == f"{MASK}!"
    # Both kinds side by side, and the value's base64.
    b64 = base64.b64encode(b"zq9secretvalue").decode()
    assert redactor.text(f"{b64} key-x tok_qwerty") == f"{MASK} {MASK} {MASK}"


def test_a_thousand_values_are_each_masked() -> None:
    rng = random.Random(13)
    alphabet = string.ascii_letters + string.digits
    values = ["".join(rng.choice(alphabet) for _ in range(32)) for _ in range(1000)]
    redactor = Redactor(["sk-[a-z]{8}"])
    for value in values:
        redactor.register(value)
    lines = [
        f"{n}: {value} {base64.b64encode(value.encode()).decode()}"
        for n, value in enumerate(values)
    ]

    masked = redactor.text("\n".join(lines) + "\nsk-abcdefgh innocent")

    assert masked.splitlines()[:3] == [
        f"0: {MASK} {MASK}",
        f"1: {MASK} {MASK}",
        f"2: {MASK} {MASK}",
    ]
    assert masked.count(MASK) == 2001
    assert masked.endswith(f"{MASK} innocent")
    assert not any(value in masked for value in values)


class Sink(io.StringIO):
    """What reaches the terminal, and how often the stream was flushed."""

    flushes = 0

    def flush(self) -> None:
        self.flushes += 1


def test_a_value_written_in_pieces_is_masked_whole() -> None:
    redactor = Redactor()
    redactor.register("hunter2-secret")
    sink = Sink()
    stream = RedactingStream(sink, redactor)

    for piece in ("token: hun", "ter2-", "secret", " done\n", "next "):
        stream.write(piece)
    assert sink.getvalue() == f"token: {MASK} done\n"
    stream.write("hunter2")
    stream.flush()  # a prompt shows, but a tail that could be the value's start waits
    assert sink.getvalue() == f"token: {MASK} done\nnext "
    stream.write("-secret\n")
    assert sink.getvalue() == f"token: {MASK} done\nnext {MASK}\n"


def test_a_flush_passes_on_an_unfinished_line_that_holds_no_secret_start() -> None:
    redactor = Redactor()
    redactor.register("hunter2-secret")
    sink = Sink()
    stream = RedactingStream(sink, redactor)

    stream.write("Continue? [y/N] ")
    assert sink.getvalue() == ""
    stream.flush()
    assert sink.getvalue() == "Continue? [y/N] " and sink.flushes == 1
    stream.write("hunter")
    stream.release()  # the command is over: whatever is held goes out
    assert sink.getvalue() == "Continue? [y/N] hunter"


def test_a_multi_line_value_printed_line_by_line_is_masked_whole() -> None:
    key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcN\nLYLI7RbiDeABCD\n-----END KEY-----"
    redactor = Redactor()
    redactor.register(key)
    sink = Sink()
    stream = RedactingStream(sink, redactor)

    for line in ["key:", *key.splitlines(), "after"]:
        stream.write(line + "\n")

    assert sink.getvalue() == f"key:\n{MASK}\nafter\n"
    stream.write("-----BEGIN KEY-----\nnot the key\n")  # a start that turns out innocent
    assert sink.getvalue().endswith("after\n-----BEGIN KEY-----\nnot the key\n")


def test_a_stream_with_nothing_registered_passes_text_straight_on() -> None:
    sink = Sink()
    stream = RedactingStream(sink, Redactor())

    stream.write("partial")

    assert sink.getvalue() == "partial"
