import pytest

from brokkr_common import keys


def test_generated_keys_have_the_documented_shape_and_verify():
    new = keys.generate()
    prefix, short, long = new.plaintext.split("_")
    assert prefix == "brokkr"
    assert short == new.short_token and len(short) == 16
    assert len(long) == 43  # 256 bits in base62
    parsed = keys.parse(new.plaintext)
    assert keys.verify(parsed, new.long_hash)


def test_keys_are_unique_and_only_their_hash_is_kept():
    first, second = keys.generate(), keys.generate()
    assert first.plaintext != second.plaintext
    assert first.long_hash != second.long_hash
    assert keys.parse(first.plaintext).long_token not in first.long_hash


def test_a_key_does_not_verify_against_another_keys_hash():
    first, second = keys.generate(), keys.generate()
    assert not keys.verify(keys.parse(first.plaintext), second.long_hash)


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "brokkr",
        "brokkr__",
        "bearer brokkr_abc_def",
        "brokkr_UPPERCASE1_aaaaaaaaaaaaaaaaaaaaaaaa",
        "other_0123456789abcdef_aaaaaaaaaaaaaaaaaaaaaaaaaa",
        "brokkr_0123456789abcdef_short",
        "brokkr_0123456789abcdef_has-dash-aaaaaaaaaaaaaaaaaaaa",
    ],
)
def test_malformed_keys_are_rejected(presented):
    with pytest.raises(keys.MalformedKey):
        keys.parse(presented)


def test_hash_for_config_is_short_colon_sha256():
    new = keys.generate()
    assert keys.hash_for_config(new.plaintext) == f"{new.short_token}:{new.long_hash}"
