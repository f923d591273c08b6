"""The Gemini schema sanitiser (reference 4.4 and 5.5): one rule per test, literal in and out."""

from __future__ import annotations

import copy

from protocols.gemini.schema import gemini_parameters


def test_claude_code_schema_loses_every_keyword_gemini_rejects():
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "urn:tool",
        "$comment": "generated",
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "Glob", "examples": ["*.py"]},
            "limit": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 100},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "env": {"type": "object", "additionalProperties": {"type": "string"},
                    "propertyNames": {"pattern": "^[A-Z]+$"}},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }  # fmt: skip
    assert gemini_parameters(schema) == {
        "type": "OBJECT",
        "properties": {
            "pattern": {"type": "STRING", "description": "Glob"},
            "limit": {"type": "INTEGER"},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
            "env": {"type": "OBJECT"},
        },
        "required": ["pattern"],
    }


def test_refs_are_inlined_and_defs_removed():
    schema = {
        "type": "object",
        "properties": {
            "edit": {"$ref": "#/$defs/Edit", "description": "One edit"},
            "old": {"$ref": "#/definitions/Range"},
        },
        "$defs": {"Edit": {"type": "object", "properties": {"text": {"type": "string"}}}},
        "definitions": {"Range": {"type": "array", "items": {"type": "integer"}}},
    }
    assert gemini_parameters(schema) == {
        "type": "OBJECT",
        "properties": {
            "edit": {
                "type": "OBJECT",
                "properties": {"text": {"type": "STRING"}},
                "description": "One edit",
            },
            "old": {"type": "ARRAY", "items": {"type": "INTEGER"}},
        },
    }


def test_recursive_ref_is_cut_to_a_plain_object():
    schema = {
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/Node"}},
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                },
            }
        },
    }
    assert gemini_parameters(schema)["properties"]["root"] == {
        "type": "OBJECT",
        "properties": {
            "name": {"type": "STRING"},
            "children": {"type": "ARRAY", "items": {"type": "OBJECT"}},
        },
    }


def test_string_const_becomes_a_one_value_enum():
    assert gemini_parameters({"const": "sync"}) == {"type": "STRING", "enum": ["sync"]}


def test_non_string_const_is_dropped_and_described():
    schema = {"type": "integer", "const": 3, "description": "Version"}
    assert gemini_parameters(schema) == {"type": "INTEGER", "description": "Version (must be 3)"}


def test_nullable_type_union_becomes_nullable():
    assert gemini_parameters({"type": ["string", "null"]}) == {"type": "STRING", "nullable": True}


def test_type_union_without_null_becomes_any_of():
    assert gemini_parameters({"type": ["string", "integer"]}) == {
        "anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]
    }


def test_one_of_becomes_any_of_and_null_member_becomes_nullable():
    schema = {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]}
    assert gemini_parameters(schema) == {
        "anyOf": [{"type": "STRING"}, {"type": "NUMBER"}],
        "nullable": True,
    }


def test_any_of_with_one_schema_and_null_collapses_into_that_schema():
    schema = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
    assert gemini_parameters(schema) == {
        "nullable": True,
        "type": "STRING",
        "format": "date-time",
    }


def test_all_of_members_merge_properties_and_required():
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
        ]
    }
    assert gemini_parameters(schema) == {
        "type": "OBJECT",
        "properties": {"b": {"type": "BOOLEAN"}, "a": {"type": "STRING"}},
        "required": ["a", "b"],
    }


def test_enum_values_become_strings_on_a_string_type():
    schema = {"enum": ["fast", 2, True, None]}
    assert gemini_parameters(schema) == {"enum": ["fast", "2", "true"], "type": "STRING"}


def test_enum_on_a_number_is_dropped_and_described():
    schema = {"type": "integer", "enum": [1, 2, 3]}
    assert gemini_parameters(schema) == {"type": "INTEGER", "description": "one of 1, 2, 3"}


def test_only_supported_formats_survive():
    schema = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "format": "uri"},
            "at": {"type": "string", "format": "date-time"},
            "ratio": {"type": "number", "format": "double"},
            "count": {"type": "integer", "format": "uint8"},
        },
    }
    assert gemini_parameters(schema)["properties"] == {
        "url": {"type": "STRING"},
        "at": {"type": "STRING", "format": "date-time"},
        "ratio": {"type": "NUMBER", "format": "double"},
        "count": {"type": "INTEGER"},
    }


def test_required_entries_without_a_property_are_removed():
    schema = {"type": "object", "properties": {"a": {}}, "required": ["a", "ghost"]}
    assert gemini_parameters(schema)["required"] == ["a"]
    assert "required" not in gemini_parameters({"type": "object", "required": ["ghost"]})


def test_property_named_like_a_keyword_is_kept():
    schema = {"type": "object", "properties": {"const": {"type": "string"}, "$id": {}}}
    assert gemini_parameters(schema)["properties"] == {"const": {"type": "STRING"}, "$id": {}}


def test_input_schema_is_not_modified():
    schema = {
        "type": "object",
        "properties": {"x": {"$ref": "#/$defs/X"}, "y": {"type": ["string", "null"]}},
        "$defs": {"X": {"const": 1}},
        "additionalProperties": False,
    }
    before = copy.deepcopy(schema)
    gemini_parameters(schema)
    assert schema == before
