"""FormFields: a config's verdict shown beside the field it names."""

from cocoseg.app.components.forms import FormFields
from cocoseg.errors import ConfigError

FIELDS = FormFields(
    {"size": "form-size", "labels": "form-labels", "epochs": "form-epochs"}, inputs=("size", "epochs")
)


def test_marks_flag_the_named_input_and_put_the_message_under_it():
    assert FIELDS.marks("size", "must be a multiple of 32") == [
        True,
        False,
        "must be a multiple of 32",
        "",
        "",
    ]
    assert FIELDS.marks("labels", "unknown preset") == [False, False, "", "unknown preset", ""]
    assert FIELDS.marks() == [False, False, "", "", ""]


def test_marks_for_a_config_error_use_its_field_and_message():
    assert FIELDS.marks_for(ConfigError("epochs", "from 1 to 1000")) == [
        False,
        True,
        "",
        "",
        "from 1 to 1000",
    ]
    assert FIELDS.marks_for(ConfigError("workers", "must be >= 0")) == [False, False, "", "", ""]


def test_outputs_match_the_marks_order():
    outputs = [(output.component_id, output.component_property) for output in FIELDS.outputs()]
    assert outputs == [
        ("form-size", "invalid"),
        ("form-epochs", "invalid"),
        ("form-size-feedback", "children"),
        ("form-labels-feedback", "children"),
        ("form-epochs-feedback", "children"),
    ]
    assert FIELDS.feedback("labels").id == "form-labels-feedback"
