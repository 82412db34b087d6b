import pytest
from google.protobuf import field_mask_pb2

from broker.api.masks import changes_from_mask
from brokkr_common.errors import InvalidArgument
from brokkr_common.pb.brokkr.v1 import stack_pb2

READERS = {
    "name": lambda s: s.name,
    "description": lambda s: s.description,
    "labels": lambda s: dict(s.labels),
}


def test_empty_mask_takes_every_populated_updatable_field():
    stack = stack_pb2.Stack(id="x", name="web", labels={"env": "prod"})
    assert changes_from_mask(stack, field_mask_pb2.FieldMask(), READERS, field="stack") == {
        "name": "web",
        "labels": {"env": "prod"},
    }


def test_explicit_mask_can_clear_a_field():
    stack = stack_pb2.Stack(id="x", name="web")
    mask = field_mask_pb2.FieldMask(paths=["labels", "description"])
    assert changes_from_mask(stack, mask, READERS, field="stack") == {"labels": {}, "description": ""}


@pytest.mark.parametrize("path", ["id", "generator_id", "labels.env", "nope"])
def test_mask_naming_a_field_that_cannot_be_updated_is_refused(path):
    mask = field_mask_pb2.FieldMask(paths=["name", path])
    with pytest.raises(InvalidArgument) as raised:
        changes_from_mask(stack_pb2.Stack(), mask, READERS, field="stack")
    assert raised.value.reason == "INVALID_UPDATE_MASK"
    assert [v.field for v in raised.value.field_violations] == ["update_mask"]
    assert repr(path) in raised.value.field_violations[0].description
